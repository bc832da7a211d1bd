//! `stockyard routing show|alias|unalias|group|ungroup|breakers|open|reset`, on the database
//! directly or through a running server's admin API (`--server`). Changes go through
//! `Admin::apply` either way, so each is validated and in the ledger.

use std::process::ExitCode;

use bytes::Bytes;
use hyper::Method;
use serde_json::{Value, json};

use super::args::{Cli, RoutingArgs, RoutingCommand};
use super::{CliError, admin_client, load_config, offline};
use crate::admin::AdminChange;
use crate::server::App;

pub async fn run(cli: &Cli, args: &RoutingArgs) -> Result<ExitCode, CliError> {
    let change = match &args.command {
        RoutingCommand::Show => return show(cli, args).await,
        RoutingCommand::Breakers => return breakers(args).await,
        RoutingCommand::Alias { name, target } => AdminChange::SetAlias {
            name: name.clone(),
            target: Some(target.clone()),
        },
        RoutingCommand::Unalias { name } => AdminChange::SetAlias {
            name: name.clone(),
            target: None,
        },
        RoutingCommand::Group { name, file } => {
            let text = std::fs::read_to_string(file)?;
            let group: Value = serde_json::from_str(&text)
                .map_err(|e| CliError::Failed(format!("{}: not JSON: {e}", file.display())))?;
            AdminChange::SetGroup {
                name: name.clone(),
                group: Some(group),
            }
        }
        RoutingCommand::Ungroup { name } => AdminChange::SetGroup {
            name: name.clone(),
            group: None,
        },
        RoutingCommand::Open { deployment, for_ms } => AdminChange::Breaker {
            deployment: deployment.clone(),
            open_for_ms: Some(*for_ms),
        },
        RoutingCommand::Reset { deployment } => AdminChange::Breaker {
            deployment: deployment.clone(),
            open_for_ms: None,
        },
    };
    let seq = match &args.server {
        Some(server) => {
            let (method, path, body) = http_call(&change);
            let answer =
                admin_client::call(server, args.admin_key.as_deref(), method, &path, body).await?;
            answer["ledger_seq"].as_i64().unwrap_or_default()
        }
        None => offline::apply(cli, change).await?.seq,
    };
    println!("done (ledger entry {seq})");
    Ok(ExitCode::SUCCESS)
}

/// The admin API call for a change.
fn http_call(change: &AdminChange) -> (Method, String, Bytes) {
    let body = |v: Value| Bytes::from(v.to_string());
    match change {
        AdminChange::SetAlias {
            name,
            target: Some(t),
        } => (
            Method::PUT,
            format!("/admin/aliases/{name}"),
            body(json!({"target": t})),
        ),
        AdminChange::SetAlias { name, target: None } => (
            Method::DELETE,
            format!("/admin/aliases/{name}"),
            Bytes::new(),
        ),
        AdminChange::SetGroup {
            name,
            group: Some(g),
        } => (
            Method::PUT,
            format!("/admin/groups/{name}"),
            body(g.clone()),
        ),
        AdminChange::SetGroup { name, group: None } => (
            Method::DELETE,
            format!("/admin/groups/{name}"),
            Bytes::new(),
        ),
        AdminChange::Breaker {
            deployment,
            open_for_ms: Some(ms),
        } => (
            Method::POST,
            format!("/admin/breakers/{deployment}/open"),
            body(json!({"for_ms": ms})),
        ),
        AdminChange::Breaker {
            deployment,
            open_for_ms: None,
        } => (
            Method::POST,
            format!("/admin/breakers/{deployment}/reset"),
            Bytes::new(),
        ),
        AdminChange::UpdateModule { name, .. } => {
            (Method::PUT, format!("/admin/modules/{name}"), Bytes::new())
        }
        AdminChange::LoadPrices { body: b } => {
            (Method::PUT, "/admin/prices".into(), Bytes::from(b.clone()))
        }
    }
}

async fn show(cli: &Cli, args: &RoutingArgs) -> Result<ExitCode, CliError> {
    let routing = match &args.server {
        Some(server) => admin_client::call(
            server,
            args.admin_key.as_deref(),
            Method::GET,
            "/admin/routing",
            Bytes::new(),
        )
        .await?["routing"]
            .clone(),
        None => {
            let app = App::open(load_config(cli)?)?;
            let chain = app.admin.chain().load_full();
            let config = chain
                .states()
                .iter()
                .find(|s| s.name == "routing")
                .map(|s| s.config.clone());
            app.writer.shutdown().await?;
            config.unwrap_or_else(|| json!({}))
        }
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&routing).unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

async fn breakers(args: &RoutingArgs) -> Result<ExitCode, CliError> {
    let Some(server) = &args.server else {
        return Err(CliError::Failed(
            "breaker state lives in the running server: pass --server URL".into(),
        ));
    };
    let answer = admin_client::call(
        server,
        args.admin_key.as_deref(),
        Method::GET,
        "/admin/breakers",
        Bytes::new(),
    )
    .await?;
    println!(
        "{:<40}  {:<10}  {:<16}  reason",
        "deployment", "phase", "until_ms"
    );
    for b in answer["breakers"].as_array().into_iter().flatten() {
        println!(
            "{:<40}  {:<10}  {:<16}  {}",
            b["deployment"].as_str().unwrap_or_default(),
            b["state"]["phase"].as_str().unwrap_or_default(),
            b["state"]["until_ms"]
                .as_i64()
                .map(|v| v.to_string())
                .unwrap_or_default(),
            b["reason"].as_str().unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
