//! Limits on automatic containment: protected hosts, and caps per window on isolations
//! and on token revocations, fleet-wide and per user. An action they stop is not
//! dropped: it waits for a responder's approval.

use cordon_schemas::glob::glob_match;

use crate::actions::ResponseAction;
use crate::config::GuardrailConfig;
use crate::model::Target;

/// Whether an automatic action may go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Proceed,
    /// Wait for approval, for this reason.
    Hold(String),
}

/// Automatic actions of the same kind already let through in the current window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recent {
    /// Fleet-wide.
    pub fleet: u32,
    /// For the target's user (0 when it names none).
    pub user: u32,
}

/// Checks an automatic action against the protected hosts and the caps of its kind.
pub fn check(action: &dyn ResponseAction, target: &Target, config: &GuardrailConfig, recent: Recent) -> Decision {
    let window = |window| humantime_serde::re::humantime::format_duration(window).to_string();
    let (what, fleet_cap, user_cap, window, setting) = if action.isolates() {
        if let Some(host) = &target.host_id
            && let Some(pattern) = config.protected_hosts.iter().find(|pattern| glob_match(host, pattern))
        {
            return Decision::Hold(format!(
                "host {host} is protected (responder.guardrails.protected_hosts: {pattern})"
            ));
        }
        let window = window(config.isolation_window);
        (
            "isolation",
            config.isolation_cap,
            config.isolation_cap_per_user,
            window,
            "isolation_cap",
        )
    } else if action.revokes() {
        let window = window(config.revocation_window);
        (
            "revocation",
            config.revocation_cap,
            config.revocation_cap_per_user,
            window,
            "revocation_cap",
        )
    } else {
        return Decision::Proceed;
    };
    if recent.fleet >= fleet_cap {
        return Decision::Hold(format!(
            "{what} cap reached: {} automatic {what}s in the last {window} (responder.guardrails.{setting} = {fleet_cap})",
            recent.fleet
        ));
    }
    if let Some(user) = &target.user_name
        && recent.user >= user_cap
    {
        return Decision::Hold(format!(
            "{what} cap for {user} reached: {} automatic {what}s of theirs in the last {window} (responder.guardrails.{setting}_per_user = {user_cap})",
            recent.user
        ));
    }
    Decision::Proceed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::for_kind;
    use cordon_schemas::ActionKind;

    fn host(name: &str) -> Target {
        Target {
            host_id: Some(name.into()),
            ..Target::default()
        }
    }

    fn of(host_name: &str, user: &str) -> Target {
        Target {
            host_id: Some(host_name.into()),
            user_name: Some(user.into()),
            ..Target::default()
        }
    }

    fn fleet(count: u32) -> Recent {
        Recent { fleet: count, user: 0 }
    }

    #[test]
    fn protected_hosts_and_the_caps_hold_isolations() {
        let config = GuardrailConfig {
            isolation_cap: 2,
            protected_hosts: vec!["dc-*".into(), "build-0?".into()],
            ..GuardrailConfig::default()
        };
        let isolate = for_kind(ActionKind::IsolateHost);
        assert_eq!(check(isolate, &host("wks-1"), &config, fleet(1)), Decision::Proceed);
        assert!(
            matches!(check(isolate, &host("dc-01"), &config, fleet(0)), Decision::Hold(why) if why.contains("protected"))
        );
        assert!(matches!(
            check(isolate, &host("BUILD-07"), &config, fleet(0)),
            Decision::Hold(_)
        ));
        assert_eq!(check(isolate, &host("build-107"), &config, fleet(0)), Decision::Proceed);
        assert!(
            matches!(check(isolate, &host("wks-1"), &config, fleet(2)), Decision::Hold(why) if why.contains("cap"))
        );
        let user_full = Recent { fleet: 1, user: 2 };
        assert!(matches!(
            check(isolate, &of("wks-1", "alice"), &config, user_full),
            Decision::Hold(why) if why.contains("isolation cap for alice") && why.contains("isolation_cap_per_user = 2")
        ));
        let notify = for_kind(ActionKind::Notify);
        assert_eq!(check(notify, &host("dc-01"), &config, fleet(99)), Decision::Proceed);
    }

    #[test]
    fn revocations_have_caps_of_their_own_but_no_protected_hosts() {
        let config = GuardrailConfig {
            protected_hosts: vec!["dc-*".into()],
            ..GuardrailConfig::default()
        };
        let revoke = for_kind(ActionKind::RevokeToken);
        assert_eq!(
            check(revoke, &of("dc-01", "alice"), &config, Recent { fleet: 9, user: 2 }),
            Decision::Proceed
        );
        assert!(matches!(
            check(revoke, &of("wks-1", "alice"), &config, fleet(10)),
            Decision::Hold(why) if why.contains("revocation cap reached: 10") && why.contains("revocation_cap = 10")
        ));
        assert!(matches!(
            check(revoke, &of("wks-1", "alice"), &config, Recent { fleet: 3, user: 3 }),
            Decision::Hold(why) if why.contains("revocation cap for alice")
        ));
    }
}
