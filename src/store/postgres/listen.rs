//! LISTEN/NOTIFY between the nodes of one PostgreSQL store. An admin change sends
//! `pg_notify('stockyard_<schema>', concern)` inside its own transaction (`admin.rs`), so the
//! notice goes out exactly when the change commits and never for one rolled back; each node's
//! watch listens on its own connection and calls back with the concern (see
//! `store/changes.rs`). A lost connection is re-made and reported as [`Changed::All`].
//!
//! With `tokio-postgres` a notice arrives through the connection's `poll_message`, so a task
//! drives the connection and forwards its messages. The watch runs on a thread of its own with a
//! current-thread runtime, not on the backend's runtime: the callback reloads from the store
//! with synchronous reads and blocking locks, which must run outside any runtime (see [`run`]),
//! and a `pg-io` thread blocked in the callback would be one fewer to answer those reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio_postgres::{AsyncMessage, Client};

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
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // The first LISTEN is made before returning, so no change committed after this call is
    // missed; later reconnects happen on the thread.
    let (started, first) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("pg-watch".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| {
                    StoreError::Backend(format!("cannot start the change watch's runtime: {e}"))
                });
            let listening = runtime
                .and_then(|runtime| Ok((runtime.block_on(listen(&target, false))?, runtime)));
            match listening {
                Ok((listening, runtime)) => {
                    let _ = started.send(Ok(()));
                    run(&runtime, &target, listening, &on_change, &flag);
                }
                Err(e) => {
                    let _ = started.send(Err(e));
                }
            }
        })
        .map_err(|e| StoreError::Backend(format!("cannot start the change watch: {e}")))?;
    first
        .recv()
        .map_err(|_| StoreError::Backend("the change watch stopped while starting".into()))??;
    Ok(Watch::new(stop))
}

/// A connection listening on the schema's channel, and the messages its task forwards.
struct Listening {
    /// Kept for the connection's sake: dropping the client ends it.
    _client: Client,
    messages: UnboundedReceiver<Result<AsyncMessage, tokio_postgres::Error>>,
}

/// Connects and listens; `again` says the store was reached before (a failure is then
/// [`StoreError::Unreachable`] rather than a start-up error).
async fn listen(target: &Target, again: bool) -> Result<Listening, StoreError> {
    let (client, mut connection) = target.connect_raw().await.map_err(|e| {
        if again {
            StoreError::Unreachable(format!("cannot connect to {}: {e}", target.shown))
        } else {
            StoreError::Open {
                path: target.shown.clone(),
                detail: e,
            }
        }
    })?;
    let (forward, messages) = unbounded_channel();
    tokio::spawn(async move {
        // Ends with the connection (an error is forwarded first) or once the watch is gone.
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            let failed = message.is_err();
            if forward.send(message).is_err() || failed {
                return;
            }
        }
    });
    let channel: String = get(
        &client
            .query_one(&format!("SELECT {CHANNEL_SQL}"), &[])
            .await?,
        0,
    )?;
    // The schema name is an identifier already; quoting keeps it one.
    client
        .batch_execute(&format!("LISTEN \"{}\"", channel.replace('"', "\"\"")))
        .await?;
    Ok(Listening {
        _client: client,
        messages,
    })
}

/// The watch's loop. The callback runs between turns of the runtime, never inside one: it reloads
/// with synchronous reads and takes blocking locks (`server/follow.rs`), which panic inside a
/// runtime. Notices that arrive meanwhile wait in the socket and the forwarding channel.
fn run(
    runtime: &tokio::runtime::Runtime,
    target: &Target,
    first: Listening,
    on_change: &OnChange,
    stop: &AtomicBool,
) {
    let mut listening = Some(first);
    while !stop.load(Ordering::Relaxed) {
        if let Some(changed) = runtime.block_on(next(target, &mut listening)) {
            on_change(changed);
        }
    }
}

/// Waits at most about [`POLL`] (so the stop flag is looked at) for the next change to report,
/// re-making a lost connection first.
async fn next(target: &Target, listening: &mut Option<Listening>) -> Option<Changed> {
    let Some(l) = listening.as_mut() else {
        return match listen(target, true).await {
            Ok(fresh) => {
                tracing::info!(store = %target.shown, "change watch reconnected");
                *listening = Some(fresh);
                Some(Changed::All)
            }
            Err(e) => {
                tracing::warn!(error = %e, "change watch cannot reach the store; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                None
            }
        };
    };
    match tokio::time::timeout(POLL, l.messages.recv()).await {
        Err(_quiet) => None,
        Ok(Some(Ok(AsyncMessage::Notification(n)))) => Some(Changed::parse(n.payload())),
        Ok(Some(Ok(_notice))) => None,
        // The connection failed or ended: made again on the next turn.
        Ok(Some(Err(_)) | None) => {
            *listening = None;
            None
        }
    }
}
