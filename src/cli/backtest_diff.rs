//! `cordon rules backtest --diff`: what the rules as they are now would raise over
//! stored history, against what the server raised then (its alert store). A detection
//! engineer sees, before a changed rule goes live, which alerts it would add and which
//! it would no longer raise.

use chrono::{DateTime, Utc};
use cordon_detections::alerts::{Alert, AlertFilter, AlertStore};
use serde::Serialize;

use super::alerts::ListFormat;

#[derive(Debug, Default, Serialize)]
pub struct BacktestDiff {
    /// Raised then and would be raised now (same rule and entity, overlapping times).
    pub kept: Vec<Alert>,
    /// Would be raised now; the server did not raise them.
    pub added: Vec<Alert>,
    /// The server raised them; the rules now would not.
    pub removed: Vec<Alert>,
}

/// The alerts the server stored for `rule` (or every rule) whose first event is in
/// [from, to).
pub fn stored_alerts(
    config: &crate::Config,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    rule: Option<&str>,
) -> anyhow::Result<Vec<Alert>> {
    let path = config.alerts_db();
    if !path.exists() {
        anyhow::bail!(
            "no alert store at {}: --diff compares with the alerts a server raised over this data dir",
            path.display()
        );
    }
    let store = AlertStore::open(&path, config.detections.evidence_cap)?;
    let alerts = store.list(&AlertFilter {
        rule_id: rule.map(str::to_string),
        limit: 1_000_000,
        ..AlertFilter::default()
    })?;
    Ok(alerts
        .into_iter()
        .filter(|alert| time(&alert.first_seen).is_some_and(|first| first >= from && first < to))
        .collect())
}

fn time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

fn same(a: &Alert, b: &Alert) -> bool {
    let overlap = match (
        time(&a.first_seen),
        time(&a.last_seen),
        time(&b.first_seen),
        time(&b.last_seen),
    ) {
        (Some(a_first), Some(a_last), Some(b_first), Some(b_last)) => a_first <= b_last && b_first <= a_last,
        _ => false,
    };
    a.rule_id == b.rule_id && a.entity == b.entity && overlap
}

pub fn diff(raised: &[Alert], backtested: &[Alert]) -> BacktestDiff {
    let mut diff = BacktestDiff::default();
    let mut matched = vec![false; raised.len()];
    for alert in backtested {
        match raised
            .iter()
            .enumerate()
            .find(|(index, old)| !matched[*index] && same(old, alert))
        {
            Some((index, _)) => {
                matched[index] = true;
                diff.kept.push(alert.clone());
            }
            None => diff.added.push(alert.clone()),
        }
    }
    diff.removed = raised
        .iter()
        .zip(matched)
        .filter(|(_, matched)| !matched)
        .map(|(alert, _)| alert.clone())
        .collect();
    diff
}

fn entity(alert: &Alert) -> String {
    alert
        .entity
        .iter()
        .map(|(name, value)| format!("{name}={}", value.as_deref().unwrap_or("-")))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn render(diff: &BacktestDiff) -> String {
    let mut out = String::new();
    for (sign, alerts) in [("+", &diff.added), ("-", &diff.removed), ("=", &diff.kept)] {
        for alert in alerts {
            out.push_str(&format!(
                "{sign} {:<32} {:<40} {} .. {}  {}\n",
                alert.rule_id,
                entity(alert),
                alert.first_seen,
                alert.last_seen,
                alert.title
            ));
        }
    }
    out.push_str(&format!(
        "{} would be new (+), {} would no longer be raised (-), {} unchanged (=)\n",
        diff.added.len(),
        diff.removed.len(),
        diff.kept.len()
    ));
    out
}

pub fn print(diff: &BacktestDiff, format: ListFormat) -> anyhow::Result<()> {
    match format {
        ListFormat::Table => print!("{}", render(diff)),
        ListFormat::Json => println!("{}", serde_json::to_string_pretty(diff)?),
    }
    Ok(())
}
