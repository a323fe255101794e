//! `cordon alerts list|show|update`: the alert API from the command line.

use clap::{Subcommand, ValueEnum};
use cordon_schemas::alert::Alert;

use crate::api::alerts::AlertList;
use crate::api_client::ApiClientArgs;

#[derive(Subcommand)]
pub enum AlertsCommand {
    /// One alert: evidence and notes.
    Show {
        #[command(flatten)]
        client: crate::api_client::ApiClientArgs,
        id: String,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Acknowledge, close (with a reason), reopen, assign, or add a note.
    Update {
        #[command(flatten)]
        client: crate::api_client::ApiClientArgs,
        id: String,
        #[command(flatten)]
        triage: TriageArgs,
    },
    /// Alerts, newest activity first.
    List {
        #[command(flatten)]
        client: crate::api_client::ApiClientArgs,
        #[command(flatten)]
        filters: AlertFilters,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

pub fn print_alerts(alerts: &[Alert], format: ListFormat) -> anyhow::Result<()> {
    match format {
        ListFormat::Table => println!("{}", render_alerts(alerts)),
        ListFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "alerts": alerts }))?
        ),
    }
    Ok(())
}

/// Runs a `cordon alerts` command.
pub async fn run(command: AlertsCommand) -> anyhow::Result<()> {
    match command {
        AlertsCommand::List {
            client,
            filters,
            format,
        } => print_alerts(&list(&client, &filters).await?, format),
        AlertsCommand::Show { client, id, format } => {
            let alert: Alert = client.get(&format!("/api/v1/alerts/{id}"), &[]).await?;
            match format {
                ListFormat::Table => println!("{}", render_alert(&alert)),
                ListFormat::Json => println!("{}", serde_json::to_string_pretty(&alert)?),
            }
            Ok(())
        }
        AlertsCommand::Update { client, id, triage } => {
            println!("{}", render_alert(&update(&client, &id, &triage).await?));
            Ok(())
        }
    }
}

/// Filters of `cordon alerts list`, as the API takes them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AlertFilters {
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long = "rule")]
    pub rule_id: Option<String>,
    #[arg(long = "host")]
    pub host_id: Option<String>,
    #[arg(long = "user")]
    pub user_name: Option<String>,
    /// RFC 3339 time or a duration back from now (15m, 24h).
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

pub async fn list(client: &ApiClientArgs, filters: &AlertFilters) -> anyhow::Result<Vec<Alert>> {
    let mut query = vec![("limit", filters.limit.to_string())];
    for (name, value) in [
        ("status", &filters.status),
        ("rule_id", &filters.rule_id),
        ("host_id", &filters.host_id),
        ("user_name", &filters.user_name),
        ("since", &filters.since),
    ] {
        if let Some(value) = value {
            query.push((name, value.clone()));
        }
    }
    let list: AlertList = client.get("/api/v1/alerts", &query).await?;
    Ok(list.alerts)
}

/// Alerts as a table: newest first, one line each.
pub fn render_alerts(alerts: &[Alert]) -> String {
    let mut out = format!(
        "{:<36} {:<8} {:<12} {:<32} {:<10} {:<12} {:>5} {:>5}  {}\n",
        "id", "severity", "status", "rule", "host", "user", "count", "risk", "last_seen"
    );
    for alert in alerts {
        out.push_str(&format!(
            "{:<36} {:<8} {:<12} {:<32} {:<10} {:<12} {:>5} {:>5}  {}\n",
            alert.id,
            alert.severity.as_str(),
            alert.status.as_str(),
            alert.rule_id,
            alert.host_id.as_deref().unwrap_or("-"),
            alert.user_name.as_deref().unwrap_or("-"),
            alert.count,
            alert.risk,
            alert.last_seen,
        ));
        // An alert detected well after the fact (a laptop's buffered upload) says so.
        if let Some(delay) = alert.detection_delay().filter(|delay| delay.as_secs() > 300) {
            out.pop();
            out.push_str(&format!(
                "  (late: detected {} after)\n",
                humantime::format_duration(std::time::Duration::from_secs(delay.as_secs()))
            ));
        }
    }
    out.push_str(&format!("{} alert(s)", alerts.len()));
    out
}

/// What `cordon alerts update` changes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TriageArgs {
    /// open, acknowledged or closed
    #[arg(long)]
    pub status: Option<String>,
    /// With --status closed: true_positive, false_positive, benign or duplicate.
    #[arg(long)]
    pub reason: Option<String>,
    /// Who works on it ("" unassigns).
    #[arg(long)]
    pub assign: Option<String>,
    #[arg(long)]
    pub note: Option<String>,
}

/// Sends a triage request; bad values are refused before the call, naming what is valid.
pub async fn update(client: &ApiClientArgs, id: &str, args: &TriageArgs) -> anyhow::Result<Alert> {
    use cordon_detections::alerts::{AlertStatus, CloseReason, Triage};
    let status = args
        .status
        .as_deref()
        .map(|text| {
            AlertStatus::parse(text)
                .ok_or_else(|| anyhow::anyhow!("--status must be open, acknowledged or closed, not {text:?}"))
        })
        .transpose()?;
    let close_reason = args
        .reason
        .as_deref()
        .map(|text| {
            CloseReason::parse(text).ok_or_else(|| {
                anyhow::anyhow!("--reason must be true_positive, false_positive, benign or duplicate, not {text:?}")
            })
        })
        .transpose()?;
    let triage = Triage {
        status,
        close_reason,
        assignee: args.assign.clone(),
        note: args.note.clone(),
    };
    client.patch(&format!("/api/v1/alerts/{id}"), &triage).await
}

/// One alert in full: the table line, its evidence and its notes.
pub fn render_alert(alert: &Alert) -> String {
    let mut out = render_alerts(std::slice::from_ref(alert));
    out.push_str(&format!(
        "\n{}\nassignee: {}  close reason: {}\nevidence ({} of {}):\n",
        alert.title,
        alert.assignee.as_deref().unwrap_or("-"),
        alert.close_reason.map_or("-", |reason| reason.as_str()),
        alert.evidence.len(),
        alert.evidence_total
    ));
    for evidence in &alert.evidence {
        out.push_str(&format!(
            "  {}  {:<24} {:<12} {}\n",
            evidence.time.as_deref().unwrap_or("-"),
            evidence.kind.as_deref().unwrap_or("-"),
            evidence.host_id.as_deref().unwrap_or("-"),
            evidence.event_id
        ));
    }
    if !alert.notes.is_empty() {
        out.push_str("notes:\n");
        for note in &alert.notes {
            out.push_str(&format!(
                "  {}  {:<20} {:<7} {}\n",
                note.at, note.author, note.kind, note.text
            ));
        }
    }
    out
}
