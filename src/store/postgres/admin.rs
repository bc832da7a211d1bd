//! What an administrative change persists on PostgreSQL, inside the transaction that also
//! appends its ledger entry (`write.rs`): module state, prices, breakers forced by an operator,
//! keys (`keys.rs`), credentials and their re-sealing, prompt templates.

use tokio_postgres::{GenericClient, Transaction};

use crate::store::changes::Changed;
use crate::store::prompts::PromptWrite;
use crate::store::{BreakerRecord, ModuleState, Persist, StoreError};

/// Persists `change`, and tells the other nodes which concern changed: `pg_notify` inside the
/// transaction is delivered when it commits, and never if it rolls back (`listen.rs`).
pub(super) async fn persist(
    tx: &Transaction<'_>,
    change: &Persist,
    ts_ms: i64,
) -> Result<(), StoreError> {
    write(tx, change, ts_ms).await?;
    let concern = match change {
        Persist::Keys(_) => Changed::Keys,
        Persist::ModuleState(_) | Persist::Prices { .. } | Persist::Prompt(_) => Changed::Modules,
        Persist::AddCredential { .. } | Persist::RemoveCredentials { .. } => Changed::Credentials,
        Persist::Breaker(_) => Changed::Breakers,
        Persist::Reseal { .. } => Changed::All,
    };
    tx.execute(
        &format!("SELECT pg_notify({}, $1)", super::listen::CHANNEL_SQL),
        &[&concern.as_str()],
    )
    .await?;
    Ok(())
}

async fn write(tx: &Transaction<'_>, change: &Persist, ts_ms: i64) -> Result<(), StoreError> {
    match change {
        Persist::ModuleState(state) => save_module_state(tx, state, ts_ms).await,
        Persist::Breaker(record) => save_breaker(tx, record).await,
        Persist::Prompt(write) => save_prompt(tx, write, ts_ms).await,
        Persist::Keys(writes) => super::keys::write(tx, writes).await,
        Persist::Prices { body } => {
            tx.execute(
                "INSERT INTO price_files (loaded_ms, body) VALUES ($1, $2)",
                &[&ts_ms, body],
            )
            .await?;
            Ok(())
        }
        Persist::AddCredential { record, check } => {
            tx.execute(
                "INSERT INTO secrets_meta (name, value) VALUES ('check', $1) \
                 ON CONFLICT (name) DO NOTHING",
                &[check],
            )
            .await?;
            tx.execute(
                "INSERT INTO provider_credentials (id, provider, kind, base_url, sealed, \
                 fingerprint, label, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &record.id,
                    &record.provider,
                    &record.kind,
                    &record.base_url,
                    &record.sealed,
                    &record.fingerprint,
                    &record.label,
                    &record.created_ms,
                ],
            )
            .await?;
            Ok(())
        }
        Persist::RemoveCredentials { ids } => {
            for id in ids {
                let removed = tx
                    .execute("DELETE FROM provider_credentials WHERE id = $1", &[id])
                    .await?;
                if removed != 1 {
                    return Err(StoreError::Constraint(format!("no credential {id}")));
                }
            }
            Ok(())
        }
        Persist::Reseal {
            records,
            check,
            modules,
        } => {
            reseal(tx, records, check).await?;
            for state in modules {
                save_module_state(tx, state, ts_ms).await?;
            }
            Ok(())
        }
    }
}

async fn save_module_state(
    tx: &Transaction<'_>,
    state: &ModuleState,
    ts_ms: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO module_state (name, scope, enabled, config, updated_ms) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name, scope) DO UPDATE SET \
         enabled = excluded.enabled, config = excluded.config, updated_ms = excluded.updated_ms",
        &[
            &state.name,
            &state.scope,
            &state.enabled,
            &state.config.to_string(),
            &ts_ms,
        ],
    )
    .await?;
    Ok(())
}

/// Every record under the new key, or nothing: a record the caller did not re-seal would be left
/// under a key that is about to be gone.
async fn reseal(
    tx: &Transaction<'_>,
    records: &[(String, Vec<u8>)],
    check: &[u8],
) -> Result<(), StoreError> {
    let stored: i64 = super::read::get(
        &tx.query_one("SELECT COUNT(*) FROM provider_credentials", &[])
            .await?,
        0,
    )?;
    if stored != records.len() as i64 {
        return Err(StoreError::Constraint(format!(
            "re-sealing {} credentials, but {stored} are stored",
            records.len()
        )));
    }
    for (id, sealed) in records {
        let updated = tx
            .execute(
                "UPDATE provider_credentials SET sealed = $1 WHERE id = $2",
                &[sealed, id],
            )
            .await?;
        if updated != 1 {
            return Err(StoreError::Constraint(format!("no credential {id}")));
        }
    }
    tx.execute(
        "INSERT INTO secrets_meta (name, value) VALUES ('check', $1) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        &[&check],
    )
    .await?;
    Ok(())
}

pub(super) async fn save_breaker(
    tx: &impl GenericClient,
    record: &BreakerRecord,
) -> Result<(), StoreError> {
    let phase = serde_json::to_string(&record.phase).map_err(|e| StoreError::Corrupt {
        table: "breakers",
        detail: e.to_string(),
    })?;
    tx.execute(
        "INSERT INTO breakers (deployment, phase, reason, updated_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (deployment) DO UPDATE SET phase = excluded.phase, reason = excluded.reason, \
         updated_ms = excluded.updated_ms WHERE breakers.updated_ms <= excluded.updated_ms",
        &[
            &record.deployment,
            &phase,
            &record.reason,
            &record.updated_ms,
        ],
    )
    .await?;
    Ok(())
}

async fn save_prompt(
    tx: &Transaction<'_>,
    write: &PromptWrite,
    ts_ms: i64,
) -> Result<(), StoreError> {
    match write {
        PromptWrite::Put(v) => {
            let version = i64::from(v.version);
            tx.execute(
                "INSERT INTO prompt_versions (name, version, body, created_ms) \
                 VALUES ($1, $2, $3, $4)",
                &[&v.name, &version, &v.body, &v.created_ms],
            )
            .await?;
            tx.execute(
                "INSERT INTO prompt_templates (name, active, updated_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET active = excluded.active, \
                 updated_ms = excluded.updated_ms",
                &[&v.name, &version, &ts_ms],
            )
            .await?;
        }
        PromptWrite::Activate { name, version } => {
            let version = i64::from(*version);
            let exists: i64 = super::read::get(
                &tx.query_one(
                    "SELECT COUNT(*) FROM prompt_versions WHERE name = $1 AND version = $2",
                    &[name, &version],
                )
                .await?,
                0,
            )?;
            if exists != 1 {
                return Err(StoreError::Constraint(format!(
                    "no version {version} of prompt {name:?}"
                )));
            }
            tx.execute(
                "UPDATE prompt_templates SET active = $2, updated_ms = $3 WHERE name = $1",
                &[name, &version, &ts_ms],
            )
            .await?;
        }
    }
    Ok(())
}
