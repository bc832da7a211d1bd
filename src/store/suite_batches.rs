//! The store suite's case for files and batches held upstream (listed in `suite.rs`'s
//! `store_suite!`, so every backend runs it).

use super::batches::BatchObject;
use super::*;

/// A record saves and reads back whole; saving it again keeps its creator, takes the first
/// `costed_ms`, and a deletion sticks.
pub fn batch_objects_save_and_keep_their_first_costing(url: &StoreUrl) {
    let opened = open(url, super::suite::key()).unwrap_or_else(|e| panic!("open {url}: {e}"));
    let (store, mut writes) = (opened.store, opened.writes);
    let batch = BatchObject {
        id: "batch_1".into(),
        kind: "batch".into(),
        provider: "openai".into(),
        credential: Some("config".into()),
        key_id: Some("k1".into()),
        team_id: Some("t1".into()),
        created_ms: 1_000,
        ..BatchObject::default()
    };
    writes
        .save_batch_object(&batch)
        .unwrap_or_else(|e| panic!("{e}"));
    let read = store.batches.batch_object("batch_1");
    assert_eq!(read.ok().flatten().as_ref(), Some(&batch));
    assert!(matches!(store.batches.batch_object("batch_2"), Ok(None)));

    let costed = BatchObject {
        costed_ms: Some(2_000),
        key_id: Some("k2".into()),
        ..batch.clone()
    };
    writes
        .save_batch_object(&costed)
        .unwrap_or_else(|e| panic!("{e}"));
    let again = BatchObject {
        costed_ms: Some(3_000),
        deleted: true,
        ..batch.clone()
    };
    writes
        .save_batch_object(&again)
        .unwrap_or_else(|e| panic!("{e}"));
    let read = store
        .batches
        .batch_object("batch_1")
        .ok()
        .flatten()
        .unwrap_or_default();
    assert_eq!(read.costed_ms, Some(2_000));
    assert_eq!(read.key_id.as_deref(), Some("k1"));
    assert!(read.deleted);

    let output = BatchObject {
        id: "file-out".into(),
        kind: "file".into(),
        batch_id: Some("batch_1".into()),
        ..batch
    };
    writes
        .save_batch_object(&output)
        .unwrap_or_else(|e| panic!("{e}"));
    let read = store.batches.batch_object("file-out").ok().flatten();
    assert_eq!(read.and_then(|r| r.batch_id).as_deref(), Some("batch_1"));
}
