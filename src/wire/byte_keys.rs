//! Objects read with their keys as bytes, for the small structs read out of every answer (its
//! `usage` and what holds it).
//!
//! A derived `Deserialize` asks serde_json for each key as a `str`, and serde_json checks every
//! such key for valid UTF-8: some hundred instructions a key, about twenty keys an answer. Asked
//! for bytes instead, serde_json unescapes the key without that check; a key only has to equal
//! one of a few ASCII names, and anything else is skipped. Everything else is read as a derived
//! struct reads it: the values, a key given twice (refused), an array in place of the object (its
//! fields in order), so a body that is not JSON, or a count that is not a number, is refused
//! exactly as before. (A key that is not UTF-8 is no longer refused; skipped values never were
//! checked.)

use serde::de::{Deserialize, Deserializer, Error, Visitor};

/// The longest key kept; a longer one matches no field of these structs.
const KEY_CAP: usize = 32;

/// One object key, unescaped, as bytes.
pub struct Key {
    len: usize,
    bytes: [u8; KEY_CAP],
}

impl Key {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_bytes(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Key, E> {
        let mut key = Key {
            len: 0,
            bytes: [0; KEY_CAP],
        };
        // Too long for any field: left empty, which no field is named.
        if v.len() <= KEY_CAP {
            key.bytes[..v.len()].copy_from_slice(v);
            key.len = v.len();
        }
        Ok(key)
    }

    // Deserializers other than serde_json's reader (a `serde_json::Value`) give keys as strings.
    fn visit_str<E: Error>(self, v: &str) -> Result<Key, E> {
        self.visit_bytes(v.as_bytes())
    }
}

/// Implements `Deserialize` for a struct of `Default` fields read from a JSON object whose keys
/// are [`Key`]s: each listed key sets its field (a value of the field's type, `null` included
/// where the field is an `Option`); every other key's value is skipped.
macro_rules! deserialize_with_byte_keys {
    ($ty:ty, $expecting:literal, { $($key:literal => $field:ident),* $(,)? }) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct ObjectVisitor;

                impl<'de> serde::de::Visitor<'de> for ObjectVisitor {
                    type Value = $ty;

                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expecting)
                    }

                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$ty, A::Error> {
                        const KEYS: &[&[u8]] = &[$($key),*];
                        let mut value = <$ty>::default();
                        // A key given twice is refused, as a derived struct refuses it.
                        let mut seen = [false; KEYS.len()];
                        let mut first = |key: &[u8]| {
                            let at = KEYS.iter().position(|k| *k == key).unwrap_or_default();
                            !std::mem::replace(&mut seen[at], true)
                        };
                        while let Some(key) = map.next_key::<$crate::wire::byte_keys::Key>()? {
                            match key.as_bytes() {
                                $($key => {
                                    if !first($key) {
                                        return Err(<A::Error as serde::de::Error>::duplicate_field(
                                            stringify!($field),
                                        ));
                                    }
                                    value.$field = map.next_value()?;
                                })*
                                _ => {
                                    map.next_value::<serde::de::IgnoredAny>()?;
                                }
                            }
                        }
                        Ok(value)
                    }

                    // A derived struct also takes its fields in order from an array, as some
                    // servers write an empty object (`[]`, PHP's `json_encode`).
                    fn visit_seq<S: serde::de::SeqAccess<'de>>(
                        self,
                        mut seq: S,
                    ) -> Result<$ty, S::Error> {
                        let mut value = <$ty>::default();
                        $(
                            match seq.next_element()? {
                                Some(v) => value.$field = v,
                                None => return Ok(value),
                            }
                        )*
                        Ok(value)
                    }
                }

                // `deserialize_struct`, as a derived struct asks, so a deserializer may hand over
                // a map or an array.
                deserializer.deserialize_struct(
                    $expecting,
                    &[$(stringify!($field)),*],
                    ObjectVisitor,
                )
            }
        }
    };
}
pub(crate) use deserialize_with_byte_keys;

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Default, PartialEq)]
    struct Inner {
        n: Option<u64>,
    }
    deserialize_with_byte_keys!(Inner, "an inner object", { b"n" => n });

    #[derive(Debug, Default, PartialEq)]
    struct Outer {
        count: u64,
        inner: Option<Inner>,
    }
    deserialize_with_byte_keys!(Outer, "an outer object", { b"count" => count, b"inner" => inner });

    /// What a derived struct of the same fields reads: the reference.
    #[derive(Debug, Default, PartialEq, Deserialize)]
    struct DerivedInner {
        #[serde(default)]
        n: Option<u64>,
    }

    #[derive(Debug, Default, PartialEq, Deserialize)]
    struct DerivedOuter {
        #[serde(default)]
        count: u64,
        #[serde(default)]
        inner: Option<DerivedInner>,
    }

    fn both(json: &str) -> (Result<Outer, String>, Result<DerivedOuter, String>) {
        (
            serde_json::from_str::<Outer>(json).map_err(|e| e.to_string()),
            serde_json::from_str::<DerivedOuter>(json).map_err(|e| e.to_string()),
        )
    }

    fn same(outer: &Outer, derived: &DerivedOuter) -> bool {
        outer.count == derived.count
            && outer.inner.as_ref().map(|i| i.n) == derived.inner.as_ref().map(|i| i.n)
    }

    #[test]
    fn reads_what_a_derived_struct_reads_and_refuses_what_it_refuses() {
        let read = [
            r#"{"count": 3, "inner": {"n": 4}}"#,
            r#"{"inner": {"n": null, "other": [1, {"n": 9}]}, "count": 3}"#,
            r#"{"count": 3, "inner": null}"#,
            r#"{"other": {"count": 99}, "count": 1, "tail": "x\"count\": 7"}"#,
            // Escaped keys are unescaped before they are compared.
            r#"{"c\u006funt": 5, "in\u006eer": {"\u006e": 6}}"#,
            r#"{"a_key_far_longer_than_any_field_of_these_structs": {"count": 2}, "count": 8}"#,
            r#"{"é": 1, "count": 2}"#,
            r#"{}"#,
            // Arrays, taken in field order (`[]` is how PHP writes an empty object).
            r#"{"count": 4, "inner": []}"#,
            r#"[]"#,
            r#"[7, [8]]"#,
            r#"[7, null]"#,
        ];
        for json in read {
            match both(json) {
                (Ok(outer), Ok(derived)) => assert!(same(&outer, &derived), "{json}"),
                other => panic!("{json}: {other:?}"),
            }
        }
        let refused = [
            r#"{"count": 3, "inner": {"n": 4}"#,
            r#"{"count": "3"}"#,
            r#"{"count": null}"#,
            r#"{"count": -1}"#,
            r#"{"inner": {"n": "x"}}"#,
            r#"{"count": 1, "other": [1, 2}"#,
            r#"{"count": 1,}"#,
            r#"{"count": 1, "count": 2}"#,
            r#"{"inner": {"n": 1, "n": 2}}"#,
            r#"[1, [2], 3]"#,
            r#"["1"]"#,
            r#"nope"#,
        ];
        for json in refused {
            let (outer, derived) = both(json);
            assert!(
                outer.is_err() && derived.is_err(),
                "{json}: {outer:?} {derived:?}"
            );
        }
    }

    #[test]
    fn reads_from_a_parsed_value_too() {
        let value = serde_json::json!({"count": 2, "inner": {"n": 3}, "x": [1]});
        let outer: Result<Outer, _> = serde_json::from_value(value);
        assert_eq!(
            outer.ok(),
            Some(Outer {
                count: 2,
                inner: Some(Inner { n: Some(3) })
            })
        );
    }
}
