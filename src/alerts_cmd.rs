//! `cordon alerts list`: the alert API from the command line.

use cordon_detections::alerts::Alert;

use crate::api::alerts::AlertList;
use crate::api_client::ApiClientArgs;

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
            alert.last_seen
        ));
    }
    out.push_str(&format!("{} alert(s)", alerts.len()));
    out
}
