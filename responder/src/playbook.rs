//! Which actions a rule's alert leads to: the responder's override for that rule if
//! it has one, else the rule's own `[[response]]` steps.

pub use cordon_schemas::PlaybookSource;
use cordon_schemas::ResponseStep;

use crate::config::ResponderConfig;

/// The steps to run for an alert of `rule_id`.
pub fn steps_for(config: &ResponderConfig, source: &dyn PlaybookSource, rule_id: &str) -> Option<Vec<ResponseStep>> {
    config.playbooks.get(rule_id).cloned().or_else(|| source.steps(rule_id))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use cordon_schemas::{ActionKind, ResponseMode};

    use super::*;

    fn step(action: ActionKind, mode: ResponseMode) -> ResponseStep {
        ResponseStep::new(action, mode)
    }

    #[test]
    fn the_responder_override_wins_and_can_turn_responses_off() {
        let rules: BTreeMap<String, Vec<ResponseStep>> = [
            ("a".to_string(), vec![step(ActionKind::IsolateHost, ResponseMode::Auto)]),
            ("b".to_string(), vec![step(ActionKind::Notify, ResponseMode::Auto)]),
        ]
        .into();
        let mut config = ResponderConfig::default();
        config
            .playbooks
            .insert("a".into(), vec![step(ActionKind::IsolateHost, ResponseMode::Approval)]);
        config.playbooks.insert("b".into(), vec![]);
        assert_eq!(steps_for(&config, &rules, "a").unwrap()[0].mode, ResponseMode::Approval);
        assert_eq!(steps_for(&config, &rules, "b"), Some(vec![]));
        assert_eq!(steps_for(&config, &rules, "c"), None);
    }
}
