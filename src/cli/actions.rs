//! `cordon actions list|show|approve|deny|retry|audit` and `cordon respond ...`: the
//! responder's commands, through the same API the console uses.

use clap::{Args, Subcommand, ValueEnum};
use cordon_responder::Action;
use cordon_responder::model::AuditEntry;
use cordon_responder::service::ManualRequest;
use cordon_schemas::ActionKind;

use crate::api::actions::{ActionDetail, ActionList, AuditList, Decision};
use crate::api_client::ApiClientArgs;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Subcommand)]
pub enum ActionsCommand {
    /// Actions, newest first.
    List {
        #[command(flatten)]
        client: ApiClientArgs,
        /// pending, awaiting_approval, in_flight, succeeded, failed, denied, dry_run
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        action: Option<String>,
        #[arg(long = "alert")]
        alert_id: Option<String>,
        #[arg(long = "host")]
        host_id: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// One action: what it sends and its audit trail.
    Show {
        #[command(flatten)]
        client: ApiClientArgs,
        id: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Let an action that waits for approval go ahead.
    Approve(DecisionArgs),
    /// Refuse an action that waits for approval; it is never sent.
    Deny(DecisionArgs),
    /// Send a failed action again, under the same id.
    Retry(DecisionArgs),
    /// The audit log: every request, decision and try.
    Audit {
        #[command(flatten)]
        client: ApiClientArgs,
        /// Only this action.
        #[arg(long = "action-id")]
        action_id: Option<String>,
        /// RFC 3339 time or a duration back from now (15m, 24h).
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 200)]
        limit: usize,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Args)]
pub struct DecisionArgs {
    #[command(flatten)]
    client: ApiClientArgs,
    id: String,
    /// Why; kept in the audit log.
    #[arg(long)]
    note: Option<String>,
}

#[derive(Subcommand)]
pub enum RespondCommand {
    /// Isolate a host from the network.
    IsolateHost {
        #[command(flatten)]
        target: RespondArgs,
    },
    /// Release an isolated host.
    ReleaseHost {
        #[command(flatten)]
        target: RespondArgs,
    },
    /// Revoke an agent's token (by id, or the user's tokens).
    RevokeToken {
        #[command(flatten)]
        target: RespondArgs,
    },
    /// Notify the configured channel.
    Notify {
        #[command(flatten)]
        target: RespondArgs,
    },
}

#[derive(Args)]
pub struct RespondArgs {
    #[command(flatten)]
    client: ApiClientArgs,
    #[arg(long = "host")]
    host_id: Option<String>,
    #[arg(long = "user")]
    user_name: Option<String>,
    /// The token's id (`credential.token_id`), not the token itself.
    #[arg(long = "token-id")]
    token_id: Option<String>,
    /// The alert this answers; missing target fields are taken from it.
    #[arg(long = "alert")]
    alert_id: Option<String>,
    /// Why (required): it goes to the receiver and the audit log.
    #[arg(long)]
    reason: String,
}

pub async fn run(command: ActionsCommand) -> anyhow::Result<()> {
    match command {
        ActionsCommand::List {
            client,
            state,
            action,
            alert_id,
            host_id,
            limit,
            format,
        } => {
            let mut query = vec![("limit", limit.to_string())];
            for (name, value) in [
                ("state", state),
                ("action", action),
                ("alert_id", alert_id),
                ("host_id", host_id),
            ] {
                if let Some(value) = value {
                    query.push((name, value));
                }
            }
            let list: ActionList = client.get("/api/v1/actions", &query).await?;
            match format {
                Format::Table => println!("{}", render_actions(&list.actions)),
                Format::Json => println!("{}", serde_json::to_string_pretty(&list)?),
            }
        }
        ActionsCommand::Show { client, id, format } => {
            let detail: ActionDetail = client.get(&format!("/api/v1/actions/{id}"), &[]).await?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&detail)?),
                Format::Table => {
                    println!("{}", render_actions(std::slice::from_ref(&detail.action)));
                    println!("body:\n{}", serde_json::to_string_pretty(&detail.body)?);
                    println!("audit:\n{}", render_audit(&detail.audit));
                }
            }
        }
        ActionsCommand::Approve(args) => decide(args, "approve").await?,
        ActionsCommand::Deny(args) => decide(args, "deny").await?,
        ActionsCommand::Retry(args) => decide(args, "retry").await?,
        ActionsCommand::Audit {
            client,
            action_id,
            since,
            limit,
            format,
        } => {
            let mut query = vec![("limit", limit.to_string())];
            for (name, value) in [("action_id", action_id), ("since", since)] {
                if let Some(value) = value {
                    query.push((name, value));
                }
            }
            let list: AuditList = client.get("/api/v1/audit", &query).await?;
            match format {
                Format::Table => println!("{}", render_audit(&list.audit)),
                Format::Json => println!("{}", serde_json::to_string_pretty(&list)?),
            }
        }
    }
    Ok(())
}

async fn decide(args: DecisionArgs, verb: &str) -> anyhow::Result<()> {
    let action: Action = args
        .client
        .post(
            &format!("/api/v1/actions/{}/{verb}", args.id),
            &Decision { note: args.note },
        )
        .await?;
    println!("{}", render_actions(std::slice::from_ref(&action)));
    Ok(())
}

pub async fn respond(command: RespondCommand) -> anyhow::Result<()> {
    let (action, args) = match command {
        RespondCommand::IsolateHost { target } => (ActionKind::IsolateHost, target),
        RespondCommand::ReleaseHost { target } => (ActionKind::ReleaseHost, target),
        RespondCommand::RevokeToken { target } => (ActionKind::RevokeToken, target),
        RespondCommand::Notify { target } => (ActionKind::Notify, target),
    };
    let request = ManualRequest {
        action,
        host_id: args.host_id,
        user_name: args.user_name,
        token_id: args.token_id,
        reason: args.reason,
        alert_id: args.alert_id,
    };
    let created: Action = args.client.post("/api/v1/respond", &request).await?;
    println!("{}", render_actions(std::slice::from_ref(&created)));
    println!("follow it: cordon actions show {}", created.id);
    Ok(())
}

/// Actions as a table, one line each.
pub fn render_actions(actions: &[Action]) -> String {
    let mut out = format!(
        "{:<36} {:<13} {:<18} {:<12} {:<10} {:>5}  {}\n",
        "id", "action", "state", "host", "user", "tries", "note"
    );
    for action in actions {
        let note = match action.state {
            cordon_responder::ActionState::AwaitingApproval => action.approval_reason.clone(),
            _ => action
                .last_error
                .clone()
                .or_else(|| action.decided_by.as_ref().map(|who| format!("decided by {who}"))),
        }
        .unwrap_or_default();
        out.push_str(&format!(
            "{:<36} {:<13} {:<18} {:<12} {:<10} {:>5}  {}\n",
            action.id,
            action.action,
            action.state.as_str(),
            action.target.host_id.as_deref().unwrap_or("-"),
            action.target.user_name.as_deref().unwrap_or("-"),
            action.attempts,
            note
        ));
    }
    out.push_str(&format!("{} action(s)", actions.len()));
    out
}

/// Audit entries as a table, oldest first.
pub fn render_audit(entries: &[AuditEntry]) -> String {
    let mut out = format!(
        "{:<24} {:<36} {:<13} {:<16} {:<20} {:>4} {:>6} {:>8}  {}\n",
        "at", "action_id", "action", "event", "actor", "try", "status", "ms", "detail"
    );
    for entry in entries {
        let detail = [entry.error.as_deref(), entry.detail.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; ");
        out.push_str(&format!(
            "{:<24} {:<36} {:<13} {:<16} {:<20} {:>4} {:>6} {:>8}  {}\n",
            entry.at,
            entry.action_id,
            entry.action,
            entry.event,
            entry.actor,
            entry.attempt.map(|n| n.to_string()).unwrap_or_default(),
            entry.status_code.map(|n| n.to_string()).unwrap_or_default(),
            entry.latency_ms.map(|n| n.to_string()).unwrap_or_default(),
            detail
        ));
    }
    out.push_str(&format!("{} entries", entries.len()));
    out
}
