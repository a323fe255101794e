//! The event kinds of contract section 4.

use serde::{Deserialize, Serialize};

/// An event's kind, from its `event.name`. Names not in the contract are `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr)]
pub enum EventKind {
    #[serde(rename = "agent.broker.request")]
    #[strum(serialize = "agent.broker.request")]
    BrokerRequest,
    #[serde(rename = "policy.decision")]
    #[strum(serialize = "policy.decision")]
    PolicyDecision,
    #[serde(rename = "file.access")]
    #[strum(serialize = "file.access")]
    FileAccess,
    #[serde(rename = "network.flow")]
    #[strum(serialize = "network.flow")]
    NetworkFlow,
    #[serde(rename = "process.start")]
    #[strum(serialize = "process.start")]
    ProcessStart,
    #[serde(rename = "clipboard.write")]
    #[strum(serialize = "clipboard.write")]
    ClipboardWrite,
    #[serde(rename = "dlp.match")]
    #[strum(serialize = "dlp.match")]
    DlpMatch,
    #[serde(rename = "credential.token")]
    #[strum(serialize = "credential.token")]
    CredentialToken,
    #[serde(rename = "credential.pop_failure")]
    #[strum(serialize = "credential.pop_failure")]
    CredentialPopFailure,
    /// A tool call an agent made or was refused, as the agent reports it, when no
    /// other kind fits (contract section 4).
    #[serde(rename = "agent.tool_call")]
    #[strum(serialize = "agent.tool_call")]
    AgentToolCall,
    /// An agent session's start or settings (its permission mode, its MCP servers).
    #[serde(rename = "agent.session")]
    #[strum(serialize = "agent.session")]
    AgentSession,
    /// Cordon's own: the outcome of one of its responses. Only Cordon writes these.
    #[serde(rename = "cordon.response")]
    #[strum(serialize = "cordon.response")]
    CordonResponse,
    /// Cordon's own: a match of a rule with `alert = false` (a building block), for
    /// other rules to read (`signals`) and analysts to see on the entity view.
    #[serde(rename = "cordon.signal")]
    #[strum(serialize = "cordon.signal")]
    CordonSignal,
    /// Cordon's own: the risk a new alert adds to one of its entities (host, user,
    /// agent, session), for the entity-risk rule.
    #[serde(rename = "cordon.risk")]
    #[strum(serialize = "cordon.risk")]
    CordonRisk,
    /// Cordon's own: a producer sent events for a host its credential does not cover.
    #[serde(rename = "cordon.spoofing")]
    #[strum(serialize = "cordon.spoofing")]
    CordonSpoofing,
    #[serde(rename = "other")]
    #[strum(serialize = "other")]
    Other,
}

impl EventKind {
    /// Every kind, `Other` last.
    pub const ALL: [EventKind; 16] = [
        EventKind::BrokerRequest,
        EventKind::PolicyDecision,
        EventKind::FileAccess,
        EventKind::NetworkFlow,
        EventKind::ProcessStart,
        EventKind::ClipboardWrite,
        EventKind::DlpMatch,
        EventKind::CredentialToken,
        EventKind::CredentialPopFailure,
        EventKind::AgentToolCall,
        EventKind::AgentSession,
        EventKind::CordonResponse,
        EventKind::CordonSignal,
        EventKind::CordonRisk,
        EventKind::CordonSpoofing,
        EventKind::Other,
    ];

    /// The contract's `event.name` for this kind.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether only Cordon writes this kind (a producer's is refused: `reserved_kind`).
    pub fn is_cordons_own(self) -> bool {
        matches!(
            self,
            EventKind::CordonResponse | EventKind::CordonSignal | EventKind::CordonRisk | EventKind::CordonSpoofing
        )
    }

    /// The kind for an `event.name`; unknown names are `Other`.
    pub fn from_name(name: &str) -> EventKind {
        EventKind::ALL
            .into_iter()
            .find(|kind| *kind != EventKind::Other && kind.as_str() == name)
            .unwrap_or(EventKind::Other)
    }

    /// A SQL-friendly table name for the kind's view (`network_flow`, ...).
    pub fn table_name(self) -> &'static str {
        match self {
            EventKind::BrokerRequest => "agent_broker_request",
            EventKind::PolicyDecision => "policy_decision",
            EventKind::FileAccess => "file_access",
            EventKind::NetworkFlow => "network_flow",
            EventKind::ProcessStart => "process_start",
            EventKind::ClipboardWrite => "clipboard_write",
            EventKind::DlpMatch => "dlp_match",
            EventKind::CredentialToken => "credential_token",
            EventKind::CredentialPopFailure => "credential_pop_failure",
            EventKind::AgentToolCall => "agent_tool_call",
            EventKind::AgentSession => "agent_session",
            EventKind::CordonResponse => "cordon_response",
            EventKind::CordonSignal => "cordon_signal",
            EventKind::CordonRisk => "cordon_risk",
            EventKind::CordonSpoofing => "cordon_spoofing",
            EventKind::Other => "other_events",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serde_names() {
        for kind in EventKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }

    #[test]
    fn names_round_trip_and_unknown_is_other() {
        for kind in EventKind::ALL {
            if kind != EventKind::Other {
                assert_eq!(EventKind::from_name(kind.as_str()), kind);
            }
        }
        assert_eq!(EventKind::from_name("made.up"), EventKind::Other);
        assert_eq!(EventKind::from_name("other"), EventKind::Other);
    }

    #[test]
    fn table_names_are_the_kind_with_underscores() {
        for kind in EventKind::ALL.into_iter().filter(|k| *k != EventKind::Other) {
            assert_eq!(kind.table_name(), kind.as_str().replace('.', "_"));
        }
    }
}
