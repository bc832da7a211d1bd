//! Tests of the ledger's sealing and verification (`mod.rs`).

use super::*;

fn key() -> LedgerKey {
    LedgerKey::from_env_value("00112233445566778899aabbccddeeff").unwrap_or_else(|e| panic!("{e}"))
}

fn chain(n: usize) -> Vec<LedgerEntry> {
    let mut entries: Vec<LedgerEntry> = Vec::new();
    for i in 0..n {
        let draft = LedgerDraft {
            actor: "admin".into(),
            action: "module.update".into(),
            target: format!("m{i}"),
            details: json!({"enabled": i % 2 == 0}),
        };
        let prev = entries.last().map(|e| (e.seq, e.hash.as_str()));
        let entry = LedgerEntry::seal(&draft, prev, 1_700_000_000_000 + i as i64, &key());
        entries.push(entry);
    }
    entries
}

#[test]
fn intact_chain_verifies_to_its_head() {
    let entries = chain(5);
    let verified = verify(&entries, Some(&key())).map(|v| v.head);
    assert_eq!(
        verified,
        Ok(Head {
            seq: 5,
            hash: entries[4].hash.clone()
        })
    );
    assert_eq!(
        verify(&[], None).map(|v| v.head.hash),
        Ok(GENESIS_HASH.to_string())
    );
}

#[test]
fn edited_entry_is_named() {
    let mut entries = chain(5);
    entries[2].details = json!({"enabled": false, "sneaky": true});
    assert_eq!(
        verify(&entries, Some(&key())),
        Err(VerifyError::Altered { seq: 3 })
    );
}

#[test]
fn deleted_entry_is_named() {
    let mut entries = chain(5);
    entries.remove(1);
    assert_eq!(
        verify(&entries, Some(&key())),
        Err(VerifyError::Missing {
            expected: 2,
            found: 3
        })
    );
}

#[test]
fn reordered_entries_are_named() {
    let mut entries = chain(5);
    entries.swap(1, 2);
    assert_eq!(
        verify(&entries, Some(&key())),
        Err(VerifyError::Missing {
            expected: 2,
            found: 3
        })
    );
    // Renumbering the swapped rows to hide the gap breaks their hashes instead.
    let mut entries = chain(5);
    entries.swap(1, 2);
    entries[1].seq = 2;
    entries[2].seq = 3;
    assert_eq!(
        verify(&entries, Some(&key())),
        Err(VerifyError::Altered { seq: 2 })
    );
}

#[test]
fn forged_insertion_with_a_valid_own_hash_is_named() {
    let mut entries = chain(3);
    // A forger appends a well-formed entry, but chains it to the wrong predecessor.
    let draft = LedgerDraft {
        actor: "x".into(),
        action: "y".into(),
        target: "z".into(),
        details: json!({}),
    };
    let forged = LedgerEntry::seal(&draft, Some((3, &entries[0].hash)), 1, &key());
    entries.push(forged);
    assert_eq!(
        verify(&entries, Some(&key())),
        Err(VerifyError::OutOfPlace { seq: 4, prev: 3 })
    );
}

/// Re-seals every entry from `from` on, as a forger with database access but no key would.
fn recompute_from(entries: &mut [LedgerEntry], from: usize, forger_key: Option<&LedgerKey>) {
    for i in from..entries.len() {
        let prev_hash = if i == 0 {
            GENESIS_HASH.to_string()
        } else {
            entries[i - 1].hash.clone()
        };
        entries[i].prev_hash = prev_hash.clone();
        entries[i].hash = entries[i].recompute_hash(&prev_hash);
        if let Some(k) = forger_key {
            entries[i].mac = Some(k.mac(&entries[i].hash));
        }
    }
}

#[test]
fn issue_9_recomputed_chain_without_the_key_names_the_first_rewritten_entry() {
    let mut entries = chain(5);
    entries[1].details = json!({"enabled": true, "rewritten": true});
    recompute_from(&mut entries, 1, None);
    assert_eq!(
        verify(&entries, Some(&key())),
        Err(VerifyError::BadMac { seq: 2 })
    );
    let mut entries = chain(5);
    entries[2].actor = "someone-else".into();
    let wrong = LedgerKey::from_env_value("ffffffffffffffffffffffffffffffff")
        .unwrap_or_else(|e| panic!("{e}"));
    recompute_from(&mut entries, 2, Some(&wrong));
    assert_eq!(
        verify(&entries, Some(&key())),
        Err(VerifyError::BadMac { seq: 3 })
    );
}

#[test]
fn with_a_key_every_entry_needs_a_mac_and_without_one_a_macless_ledger_only_chains() {
    let mut entries = chain(4);
    entries[0].mac = None;
    assert_eq!(
        verify(&entries, Some(&key())),
        Err(VerifyError::MacMissing { seq: 1 })
    );
    entries[0].mac = Some(key().mac(&entries[0].hash));
    entries[3].mac = None;
    assert_eq!(
        verify(&entries, Some(&key())),
        Err(VerifyError::MacMissing { seq: 4 })
    );
    for e in &mut entries {
        e.mac = None;
    }
    assert_eq!(verify(&entries, None).map(|v| v.unanchored), Ok(4));
    assert_eq!(verify(&chain(2), None), Err(VerifyError::NoKey { seq: 1 }));
}

#[test]
fn every_mac_cleared_and_the_chain_recomputed_fails_under_the_key() {
    let mut entries = chain(4);
    entries[1].actor = "forger".into();
    for e in &mut entries {
        e.mac = None;
    }
    recompute_from(&mut entries, 0, None);
    assert_eq!(
        verify(&entries, Some(&key())),
        Err(VerifyError::MacMissing { seq: 1 })
    );
    // Nor is such a ledger re-anchored by a writing open once a head was published.
    assert_eq!(to_anchor(&entries, &key(), true), Vec::<i64>::new());
}

#[test]
fn entries_from_before_anchoring_are_anchored_once_and_only_when_vouched_for() {
    // A build that MACed only new entries: the MAC-less prefix is covered by entry 3's MAC.
    let mut entries = chain(4);
    for e in &mut entries[..2] {
        e.mac = None;
    }
    assert_eq!(to_anchor(&entries, &key(), true), vec![1, 2]);
    // Under another key, entry 3 vouches for nothing.
    let other = LedgerKey::from_env_value("ffffffffffffffffffffffffffffffff")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(to_anchor(&entries, &other, true), Vec::<i64>::new());
    // A removed MAC after an anchored entry is tampering, not history.
    let mut gap = chain(4);
    gap[2].mac = None;
    assert_eq!(to_anchor(&gap, &key(), true), Vec::<i64>::new());
    // A ledger from before MACs, never published: all of it, if it chains.
    let mut old = chain(3);
    for e in &mut old {
        e.mac = None;
    }
    assert_eq!(to_anchor(&old, &key(), false), vec![1, 2, 3]);
    old[1].target = "edited".into();
    assert_eq!(to_anchor(&old, &key(), false), Vec::<i64>::new());
}

#[test]
fn a_missing_or_unauthenticated_head_file_fails_an_anchored_ledger() {
    let entries = chain(3);
    let path = std::path::Path::new("s.db.ledger-head");
    let head = Head {
        seq: 3,
        hash: entries[2].hash.clone(),
    };
    let unsigned = PublishedHead {
        head: head.clone(),
        mac: None,
    };
    assert_eq!(
        check_published(&entries, None, Some(&key()), path),
        Err(VerifyError::HeadMissing {
            path: "s.db.ledger-head".into()
        })
    );
    assert_eq!(
        check_published(&entries, Some(&unsigned), Some(&key()), path),
        Err(VerifyError::HeadUnauthenticated {
            path: "s.db.ledger-head".into()
        })
    );
    let line = format!("{head}:{}", key().mac(&format!("head|3|{}", head.hash)));
    let signed: PublishedHead = line.parse().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        check_published(&entries, Some(&signed), Some(&key()), path),
        Ok(true)
    );
    assert_eq!(check_published(&[], None, Some(&key()), path), Ok(false));
}

#[test]
fn issue_9_a_cut_tail_is_named_by_the_published_head() {
    let entries = chain(6);
    let published = Head {
        seq: 6,
        hash: entries[5].hash.clone(),
    };
    assert_eq!(check_head(&entries, &published), Ok(()));
    assert_eq!(
        check_head(&entries[..4], &published),
        Err(VerifyError::Cut {
            missing: 2,
            after: 4,
            head_seq: 6
        })
    );
    assert_eq!(
        VerifyError::Cut {
            missing: 2,
            after: 4,
            head_seq: 6
        }
        .to_string(),
        "2 entries missing after 4 (the published head is entry 6)"
    );
    // An older published head still holds once more entries were appended...
    let older = Head {
        seq: 3,
        hash: entries[2].hash.clone(),
    };
    assert_eq!(check_head(&entries, &older), Ok(()));
    // ...but not if its entry was replaced.
    let forged = Head {
        seq: 3,
        hash: entries[1].hash.clone(),
    };
    assert_eq!(
        check_head(&entries, &forged),
        Err(VerifyError::HeadMismatch { seq: 3 })
    );
}

#[test]
fn stored_details_read_back_only_in_the_form_the_writer_stores() {
    let details = json!({"name": "ci", "limits": {"rpm": 5}});
    let stored = details.to_string();
    assert_eq!(details_from_stored(stored.clone()), details);
    // The same value spelled another way was altered: a duplicated key that a reader taking the
    // first occurrence would see, or added white space.
    let duplicated = stored.replacen('{', r#"{"name":"evil","#, 1);
    assert_eq!(
        serde_json::from_str::<Value>(&duplicated).ok(),
        Some(details.clone()),
        "serde_json reads the last occurrence"
    );
    assert_eq!(
        details_from_stored(duplicated.clone()),
        Value::String(duplicated)
    );
    let spaced = serde_json::to_string_pretty(&details).unwrap_or_default();
    assert_eq!(details_from_stored(spaced.clone()), Value::String(spaced));

    // An entry whose stored details were rewritten so fails verification.
    let mut entries = chain(3);
    let text = entries[1]
        .details
        .to_string()
        .replacen('{', r#"{"who":"evil","#, 1);
    entries[1].details = details_from_stored(text);
    assert_eq!(
        verify(&entries, Some(&key())),
        Err(VerifyError::Altered { seq: 2 })
    );
}
