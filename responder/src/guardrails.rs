//! Limits on automatic containment: protected hosts and a cap on isolations per
//! window. An action they stop is not dropped: it waits for a responder's approval.

use cordon_detections::udf::glob_match;

use crate::actions::ResponseAction;
use crate::config::GuardrailConfig;
use crate::model::Target;

/// Whether an automatic action may go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Proceed,
    /// Wait for approval, for this reason.
    Hold(String),
}

/// Checks an automatic action. `recent_isolations` counts the automatic isolations
/// already let through in the current window.
pub fn check(
    action: &dyn ResponseAction,
    target: &Target,
    config: &GuardrailConfig,
    recent_isolations: u32,
) -> Verdict {
    if !action.isolates() {
        return Verdict::Proceed;
    }
    if let Some(host) = &target.host_id
        && let Some(pattern) = config.protected_hosts.iter().find(|pattern| glob_match(host, pattern))
    {
        return Verdict::Hold(format!(
            "host {host} is protected (responder.guardrails.protected_hosts: {pattern})"
        ));
    }
    if recent_isolations >= config.isolation_cap {
        return Verdict::Hold(format!(
            "isolation cap reached: {recent_isolations} automatic isolations in the last {} (responder.guardrails.isolation_cap = {})",
            humantime_serde::re::humantime::format_duration(config.isolation_window),
            config.isolation_cap
        ));
    }
    Verdict::Proceed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::find;

    fn host(name: &str) -> Target {
        Target {
            host_id: Some(name.into()),
            ..Target::default()
        }
    }

    #[test]
    fn protected_hosts_and_the_cap_hold_isolations_only() {
        let config = GuardrailConfig {
            isolation_cap: 2,
            protected_hosts: vec!["dc-*".into(), "build-0?".into()],
            ..GuardrailConfig::default()
        };
        let isolate = find("isolate_host").unwrap();
        assert_eq!(check(isolate, &host("wks-1"), &config, 1), Verdict::Proceed);
        assert!(matches!(check(isolate, &host("dc-01"), &config, 0), Verdict::Hold(why) if why.contains("protected")));
        assert!(matches!(
            check(isolate, &host("BUILD-07"), &config, 0),
            Verdict::Hold(_)
        ));
        assert_eq!(check(isolate, &host("build-107"), &config, 0), Verdict::Proceed);
        assert!(matches!(check(isolate, &host("wks-1"), &config, 2), Verdict::Hold(why) if why.contains("cap")));
        let revoke = find("revoke_token").unwrap();
        assert_eq!(check(revoke, &host("dc-01"), &config, 99), Verdict::Proceed);
    }
}
