//! An alert as analysts and the API see it (contract section 8).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::settings::Severity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Open,
    Acknowledged,
    Closed,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Open => "open",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<AlertStatus> {
        [AlertStatus::Open, AlertStatus::Acknowledged, AlertStatus::Closed]
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

/// One event an alert rests on: by `event.id`, with its time and kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub event_id: String,
    /// RFC 3339, when known.
    pub time: Option<String>,
    pub kind: Option<String>,
    pub host_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: String,
    pub rule_id: String,
    pub title: String,
    pub severity: Severity,
    pub status: AlertStatus,
    pub host_id: Option<String>,
    pub user_name: Option<String>,
    pub agent_id: Option<String>,
    /// The rule's entity columns and their values.
    pub entity: BTreeMap<String, Option<String>>,
    pub first_seen: String,
    pub last_seen: String,
    /// Matches folded into this alert.
    pub count: u64,
    /// 0-100: the severity's base, raised by repeated matches and more evidence.
    pub risk: f64,
    /// MITRE ATT&CK technique ids.
    pub attack: Vec<String>,
    /// The rule's extra output columns, from the latest match.
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// Evidence, oldest first, up to the store's cap.
    pub evidence: Vec<Evidence>,
    /// All evidence events seen, including those past the cap.
    pub evidence_total: u64,
    pub created_at: String,
    pub updated_at: String,
    /// Who works on it (a token's name), if anyone.
    #[serde(default)]
    pub assignee: Option<String>,
    /// Why it was closed: `true_positive`, `false_positive`, `benign`, `duplicate`.
    #[serde(default)]
    pub close_reason: Option<CloseReason>,
    /// Seconds from the alert's last event to the arrival of the event that completed
    /// it: near 0 when live, hours for a laptop's buffered upload. None for alerts
    /// raised before Cordon recorded it.
    #[serde(default)]
    pub detected_after: Option<f64>,
    /// Analysts' notes and every triage change, oldest first (alert detail only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<AlertNote>,
}

impl Alert {
    /// `detected_after` as a duration.
    pub fn detection_delay(&self) -> Option<std::time::Duration> {
        self.detected_after
            .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
            .map(std::time::Duration::from_secs_f64)
    }
}

/// Why an alert was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    TruePositive,
    FalsePositive,
    Benign,
    Duplicate,
}

impl CloseReason {
    pub const ALL: [CloseReason; 4] = [
        CloseReason::TruePositive,
        CloseReason::FalsePositive,
        CloseReason::Benign,
        CloseReason::Duplicate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::TruePositive => "true_positive",
            CloseReason::FalsePositive => "false_positive",
            CloseReason::Benign => "benign",
            CloseReason::Duplicate => "duplicate",
        }
    }

    pub fn parse(text: &str) -> Option<CloseReason> {
        CloseReason::ALL.into_iter().find(|reason| reason.as_str() == text)
    }
}

/// A note on an alert, or a record of a triage change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertNote {
    pub at: String,
    pub author: String,
    /// `note` or `change`.
    pub kind: String,
    pub text: String,
}

/// A triage request: any of a new status, close reason, assignee, note.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Triage {
    #[serde(default)]
    pub status: Option<AlertStatus>,
    #[serde(default)]
    pub close_reason: Option<CloseReason>,
    /// A name, or "" to unassign.
    #[serde(default)]
    pub assignee: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// The risk score of an alert (0-100).
pub fn risk_score(severity: Severity, count: u64, evidence: u64) -> f64 {
    let score = severity.base_risk() + 5.0 * (count.max(1) as f64).log2() + 2.0 * (evidence.max(1) as f64).log2();
    (score.min(100.0) * 10.0).round() / 10.0
}

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339(nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(nanos).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risk_grows_with_repeats_and_is_capped() {
        let once = risk_score(Severity::Medium, 1, 5);
        let many = risk_score(Severity::Medium, 8, 40);
        assert!(many > once, "{many} > {once}");
        assert_eq!(risk_score(Severity::Critical, 1 << 20, 1 << 20), 100.0);
    }
}
