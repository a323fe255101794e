//! An alert as analysts and the API see it (contract section 8): written by the
//! detections stage, read by the responder, the API and the alert publisher.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How bad an alert is; orders low < critical.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(text: &str) -> Option<Severity> {
        text.parse().ok()
    }

    /// The risk score an alert of this severity starts at (0-100).
    pub fn base_risk(self) -> f64 {
        match self {
            Severity::Low => 20.0,
            Severity::Medium => 45.0,
            Severity::High => 70.0,
            Severity::Critical => 85.0,
        }
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum AlertStatus {
    Open,
    Acknowledged,
    Closed,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(text: &str) -> Option<AlertStatus> {
        text.parse().ok()
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
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum CloseReason {
    TruePositive,
    FalsePositive,
    Benign,
    Duplicate,
}

impl CloseReason {
    pub const ALL: &[CloseReason] = <CloseReason as strum::VariantArray>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(text: &str) -> Option<CloseReason> {
        text.parse().ok()
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

pub use crate::time::rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_names_match_their_serde_names() {
        use strum::VariantArray;
        for severity in Severity::VARIANTS {
            assert_eq!(serde_json::to_value(severity).unwrap(), severity.as_str());
            assert_eq!(Severity::parse(severity.as_str()), Some(*severity));
        }
        for status in AlertStatus::VARIANTS {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
            assert_eq!(AlertStatus::parse(status.as_str()), Some(*status));
        }
        for reason in CloseReason::ALL {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
            assert_eq!(CloseReason::parse(reason.as_str()), Some(*reason));
        }
        assert_eq!(CloseReason::parse("TruePositive"), None);
    }

    #[test]
    fn risk_grows_with_repeats_and_is_capped() {
        let once = risk_score(Severity::Medium, 1, 5);
        let many = risk_score(Severity::Medium, 8, 40);
        assert!(many > once, "{many} > {once}");
        assert_eq!(risk_score(Severity::Critical, 1 << 20, 1 << 20), 100.0);
    }
}
