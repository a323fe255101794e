//! `cordon alerts list`: the alert API from the command line.

use anyhow::Context;
use cordon_detections::alerts::Alert;

use crate::api::alerts::AlertList;

/// Where the CLI finds the API and how it signs in.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiClientArgs {
    /// The server's API.
    #[arg(long, env = "CORDON_API_URL", default_value = "http://127.0.0.1:8080")]
    pub api_url: String,
    /// A bearer token (or CORDON_TOKEN).
    #[arg(long, env = "CORDON_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl ApiClientArgs {
    fn token(&self) -> anyhow::Result<String> {
        self.token
            .clone()
            .or_else(|| std::env::var(crate::api::auth::ADMIN_TOKEN_ENV).ok())
            .context("no API token: pass --token or set CORDON_TOKEN")
    }

    /// GETs `path` with `query` and decodes the JSON answer; API errors become messages.
    pub async fn get<T: serde::de::DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<T> {
        let base = format!("{}{path}", self.api_url.trim_end_matches('/'));
        let url =
            reqwest::Url::parse_with_params(&base, query).with_context(|| format!("{} is not a URL", self.api_url))?;
        let response = reqwest::Client::new()
            .get(url.clone())
            .bearer_auth(self.token()?)
            .send()
            .await
            .with_context(|| format!("cannot reach the Cordon API at {}", self.api_url))?;
        let status = response.status();
        let body: String = response.text().await?;
        if !status.is_success() {
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|value| value.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or(body);
            anyhow::bail!("the API answered {status}: {message}");
        }
        serde_json::from_str(&body).with_context(|| format!("unexpected answer from {url}"))
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
            alert.last_seen
        ));
    }
    out.push_str(&format!("{} alert(s)", alerts.len()));
    out
}
