//! What an alert does not name but the stored events do. A rule about reads and
//! uploads has no token id, yet the IdP revokes best by id: the agent's latest token
//! on that host and for that user is looked up when the action is created.

/// Looks up facts about a target and its evidence in the stored events.
pub trait TargetEnricher: Send + Sync {
    /// The id of the newest token issued or refreshed on `host_id` for `user_name`.
    fn latest_token(&self, host_id: &str, user_name: Option<&str>) -> Option<String>;

    /// How the alert's evidence events arrived, one entry per event found; `None`
    /// when the store cannot be read (a response that needs trusted evidence then
    /// waits for a person).
    fn evidence_provenance(&self, evidence: &[cordon_schemas::alert::Evidence]) -> Option<Vec<EvidenceProvenance>> {
        let _ = evidence;
        None
    }
}

/// How one evidence event arrived (its stored provenance columns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceProvenance {
    pub event_id: String,
    /// The credential that vouched for it; `None`: unauthenticated.
    pub producer: Option<String>,
    /// `valid`, `missing` or `bad`.
    pub signature_status: String,
}
