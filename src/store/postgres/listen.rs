//! LISTEN/NOTIFY between the nodes of one PostgreSQL store. An admin change sends
//! `pg_notify('stockyard_<schema>', concern)` inside its own transaction (`admin.rs`), so the
//! notice goes out exactly when the change commits and never for one rolled back; each node's
//! watch thread listens on its own connection and calls back with the concern (see
//! `store/changes.rs`). A lost connection is re-made and reported as [`Changed::All`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use postgres::Client;
use postgres::fallible_iterator::FallibleIterator;

use super::conn::Target;
use super::read::get;
use crate::store::changes::{Changed, OnChange, Watch};
use crate::store::{StoreError, StoreUrl};

/// How often the watch looks at its stop flag while no notice comes.
const POLL: Duration = Duration::from_millis(500);

/// The channel of the connection's schema (schemas share a database's notifications).
pub(super) const CHANNEL_SQL: &str = "'stockyard_' || current_schema()";

pub fn watch(url: &StoreUrl, on_change: OnChange) -> Result<Watch, StoreError> {
    let target = Target::parse(url)?;
    // The first LISTEN is made before returning, so no change committed after this call is
    // missed; later reconnects happen on the thread.
    let first = super::conn::off_runtime(|| listen(&target))?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("pg-watch".into())
        .spawn(move || run(target, first, on_change, &flag))
        .map_err(|e| StoreError::Backend(format!("cannot start the change watch: {e}")))?;
    Ok(Watch::new(stop))
}

fn listen(target: &Target) -> Result<Client, StoreError> {
    let mut client = target.connect()?;
    let channel: String = get(&client.query_one(&format!("SELECT {CHANNEL_SQL}"), &[])?, 0)?;
    // The schema name is an identifier already; quoting keeps it one.
    client.batch_execute(&format!("LISTEN \"{}\"", channel.replace('"', "\"\"")))?;
    Ok(client)
}

fn run(target: Target, first: Client, on_change: OnChange, stop: &AtomicBool) {
    let mut client = Some(first);
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = client.as_mut() else {
            match listen(&target) {
                Ok(fresh) => {
                    tracing::info!(store = %target.shown, "change watch reconnected");
                    client = Some(fresh);
                    on_change(Changed::All);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "change watch cannot reach the store; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            continue;
        };
        // Each notice is acted on as it arrives; the iterator waits at most POLL for the next.
        let mut broken = false;
        {
            let mut notices = c.notifications();
            let mut iter = notices.timeout_iter(POLL);
            loop {
                match iter.next() {
                    Ok(Some(n)) => on_change(Changed::parse(n.payload())),
                    Ok(None) => break,
                    Err(_) => {
                        broken = true;
                        break;
                    }
                }
            }
        }
        if broken || c.is_closed() {
            client = None;
        }
    }
}
