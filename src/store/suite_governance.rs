//! The store suite's cases for governance: virtual keys, teams and admin keys, and sealed
//! provider credentials (listed in `suite.rs`'s `store_suite!`, so every backend runs them).

use super::suite::{draft, opened};
use super::*;

pub fn keys_teams_and_admin_keys_save_and_load(url: &StoreUrl) {
    use crate::request::grant::{Budget, Limits, Period};
    let Opened { store, mut writes } = opened(url);
    assert_eq!(store.keys.teams().ok(), Some(vec![]));
    assert_eq!(store.keys.virtual_keys().ok(), Some(vec![]));
    let team = TeamRecord {
        name: "ml".into(),
        limits: Limits {
            rpm: Some(60),
            models: vec!["gpt-4o*".into()],
            ..Limits::default()
        },
        created_ms: 1,
        updated_ms: 1,
    };
    let key = VirtualKeyRecord {
        id: "vk_1".into(),
        name: "ci".into(),
        prefix: "sk-sy-abcd".into(),
        hash: "ab".repeat(32),
        team: Some("ml".into()),
        limits: Limits {
            budget: Some(Budget {
                limit_nanos: 12_500_000_000,
                period: Period::Month,
                alert_percents: vec![80],
            }),
            tpm: Some(1000),
            ..Limits::default()
        },
        metadata: [("owner".to_string(), "ana".to_string())].into(),
        expires_ms: Some(99),
        revoked_ms: None,
        created_ms: 2,
        updated_ms: 2,
        rotated_from: None,
    };
    let admin = AdminKeyRecord {
        id: "ak_1".into(),
        name: "ops".into(),
        role: AdminRole::ReadOnly,
        prefix: "sk-sy-admin-x".into(),
        hash: "cd".repeat(32),
        created_ms: 3,
        revoked_ms: None,
    };
    let writes_1 = vec![
        KeyWrite::Team(team.clone()),
        KeyWrite::Key(key.clone()),
        KeyWrite::AdminKey(admin.clone()),
    ];
    writes
        .apply_admin(
            Some(&Persist::Keys(writes_1)),
            &draft("key.create", "vk_1"),
            2,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.keys.teams().ok(), Some(vec![team.clone()]));
    assert_eq!(store.keys.virtual_keys().ok(), Some(vec![key.clone()]));
    assert_eq!(store.keys.admin_keys().ok(), Some(vec![admin.clone()]));

    // A rotation: the old key revoked and its successor, in one change; the team updated.
    let revoked = VirtualKeyRecord {
        revoked_ms: Some(5),
        updated_ms: 5,
        ..key.clone()
    };
    let successor = VirtualKeyRecord {
        id: "vk_2".into(),
        hash: "ef".repeat(32),
        created_ms: 5,
        updated_ms: 5,
        rotated_from: Some("vk_1".into()),
        ..key.clone()
    };
    let team_2 = TeamRecord {
        limits: Limits::default(),
        updated_ms: 5,
        ..team.clone()
    };
    let admin_revoked = AdminKeyRecord {
        revoked_ms: Some(5),
        ..admin.clone()
    };
    let writes_2 = vec![
        KeyWrite::Key(revoked.clone()),
        KeyWrite::Key(successor.clone()),
        KeyWrite::Team(team_2.clone()),
        KeyWrite::AdminKey(admin_revoked.clone()),
    ];
    writes
        .apply_admin(
            Some(&Persist::Keys(writes_2)),
            &draft("key.rotate", "vk_1"),
            5,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        store.keys.virtual_keys().ok(),
        Some(vec![revoked, successor])
    );
    assert_eq!(store.keys.teams().ok(), Some(vec![team_2]));
    assert_eq!(store.keys.admin_keys().ok(), Some(vec![admin_revoked]));

    // A second key with the same hash is refused, and nothing of that change is kept.
    let clash = VirtualKeyRecord {
        id: "vk_3".into(),
        ..key
    };
    let writes_3 = vec![
        KeyWrite::DeleteTeam { name: "ml".into() },
        KeyWrite::Key(clash),
    ];
    let refused = writes.apply_admin(
        Some(&Persist::Keys(writes_3)),
        &draft("key.create", "vk_3"),
        6,
    );
    assert!(
        matches!(refused, Err(StoreError::Constraint(_))),
        "{refused:?}"
    );
    assert_eq!(store.keys.teams().map(|t| t.len()).ok(), Some(1));
    assert_eq!(store.ledger.ledger().map(|e| e.len()).ok(), Some(2));
    writes
        .apply_admin(
            Some(&Persist::Keys(vec![KeyWrite::DeleteTeam {
                name: "ml".into(),
            }])),
            &draft("team.delete", "ml"),
            7,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.keys.teams().ok(), Some(vec![]));
}

pub fn credentials_add_remove_and_reseal_in_one_transaction(url: &StoreUrl) {
    let Opened { store, mut writes } = opened(url);
    let creds = &store.credentials;
    assert_eq!(creds.credentials().ok(), Some(vec![]));
    assert_eq!(creds.secrets_check().ok(), Some(None));
    assert_eq!(secrets_check(url).ok(), Some(None));
    let record = |id: &str, provider: &str, created_ms: i64| StoredCredential {
        id: id.into(),
        provider: provider.into(),
        kind: "openai_compatible".into(),
        base_url: Some("http://127.0.0.1:9/v1".into()),
        sealed: vec![1, 2, 3, created_ms as u8],
        fingerprint: format!("sha256:{id}"),
        label: None,
        created_ms,
    };
    for (id, provider, ts) in [
        ("cred_a", "p1", 1),
        ("cred_b", "p1", 2),
        ("cred_c", "p2", 3),
    ] {
        let change = Persist::AddCredential {
            record: Box::new(record(id, provider, ts)),
            check: vec![ts as u8],
        };
        writes
            .apply_admin(
                Some(&change),
                &draft("provider.credential.add", provider),
                ts,
            )
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(
        creds.credentials().unwrap_or_default(),
        [
            record("cred_a", "p1", 1),
            record("cred_b", "p1", 2),
            record("cred_c", "p2", 3)
        ]
    );
    assert_eq!(
        creds.secrets_check().ok(),
        Some(Some(vec![1])),
        "the first seal's check stays"
    );
    assert_eq!(secrets_check(url).ok(), Some(Some(vec![1])));

    // A re-seal that misses a record changes nothing, ledger included.
    let partial = Persist::Reseal {
        records: vec![("cred_a".into(), vec![9]), ("cred_b".into(), vec![9])],
        check: vec![9],
        modules: Vec::new(),
    };
    assert!(
        writes
            .apply_admin(Some(&partial), &draft("secrets.rotate", "secrets"), 4)
            .is_err()
    );
    assert_eq!(creds.secrets_check().ok(), Some(Some(vec![1])));
    assert_eq!(store.ledger.ledger().map(|e| e.len()).ok(), Some(3));

    let whole = Persist::Reseal {
        records: ["cred_a", "cred_b", "cred_c"]
            .iter()
            .map(|id| (id.to_string(), vec![7, 7]))
            .collect(),
        check: vec![7],
        modules: Vec::new(),
    };
    writes
        .apply_admin(Some(&whole), &draft("secrets.rotate", "secrets"), 5)
        .unwrap_or_else(|e| panic!("{e}"));
    let all = creds.credentials().unwrap_or_default();
    assert!(all.iter().all(|c| c.sealed == [7, 7]), "{all:?}");
    assert_eq!(creds.secrets_check().ok(), Some(Some(vec![7])));

    let remove = |ids: &[&str]| Persist::RemoveCredentials {
        ids: ids.iter().map(|s| s.to_string()).collect(),
    };
    writes
        .apply_admin(
            Some(&remove(&["cred_a"])),
            &draft("provider.credential.remove", "p1"),
            6,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        writes
            .apply_admin(Some(&remove(&["cred_b", "cred_zz"])), &draft("x", "p1"), 7)
            .is_err(),
        "an unknown id refuses the whole removal"
    );
    let ids: Vec<String> = creds
        .credentials()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, ["cred_b", "cred_c"]);
}
