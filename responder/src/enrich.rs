//! What an alert does not name but the stored events do. A rule about reads and
//! uploads has no token id, yet the IdP revokes best by id: the agent's latest token
//! on that host and for that user is looked up when the action is created.

/// Looks up facts about a target in the stored events.
pub trait TargetEnricher: Send + Sync {
    /// The id of the newest token issued or refreshed on `host_id` for `user_name`.
    fn latest_token(&self, host_id: &str, user_name: Option<&str>) -> Option<String>;
}
