//! The token of an `Authorization: Bearer <token>` header. The scheme is case-insensitive and
//! may be followed by more than one space (RFC 9110, section 11.1), so `bearer`, `BEARER` and
//! `Bearer  sk-...` all present the same token; client keys and admin keys read it alike.

/// The token after a `Bearer` scheme, trimmed; `None` for another scheme or an empty token.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    Some(rest.trim()).filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_scheme_is_case_insensitive_and_spaces_are_trimmed() {
        for header in [
            "Bearer sk-1",
            "bearer sk-1",
            "BEARER sk-1",
            "Bearer  sk-1",
            "Bearer sk-1 ",
        ] {
            assert_eq!(bearer_token(header), Some("sk-1"), "{header:?}");
        }
        for header in ["Basic sk-1", "Bearer", "Bearer ", "Bearersk-1", "sk-1", ""] {
            assert_eq!(bearer_token(header), None, "{header:?}");
        }
    }
}
