//! Which actions a rule's alert leads to: the responder's override for that rule if
//! it has one, else the rule's own `[[response]]` steps.

use cordon_detections::service::Shared;
use cordon_detections::settings::ResponseStep;

use crate::config::ResponderConfig;

/// Where the rules' own playbooks come from (the running detection service).
pub trait PlaybookSource: Send + Sync {
    /// The rule's `[[response]]` steps; None when no such rule is loaded.
    fn steps(&self, rule_id: &str) -> Option<Vec<ResponseStep>>;
}

impl PlaybookSource for Shared {
    fn steps(&self, rule_id: &str) -> Option<Vec<ResponseStep>> {
        let rules = self.rules.read().expect("rules lock");
        rules
            .get(rule_id)
            .filter(|view| view.loaded)
            .map(|view| view.response.clone())
    }
}

/// A fixed map, for tests and tools.
impl PlaybookSource for std::collections::BTreeMap<String, Vec<ResponseStep>> {
    fn steps(&self, rule_id: &str) -> Option<Vec<ResponseStep>> {
        self.get(rule_id).cloned()
    }
}

/// The steps to run for an alert of `rule_id`.
pub fn steps_for(config: &ResponderConfig, source: &dyn PlaybookSource, rule_id: &str) -> Option<Vec<ResponseStep>> {
    config.playbooks.get(rule_id).cloned().or_else(|| source.steps(rule_id))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use cordon_detections::settings::ResponseMode;

    use super::*;

    fn step(action: &str, mode: ResponseMode) -> ResponseStep {
        ResponseStep::new(action, mode)
    }

    #[test]
    fn the_responder_override_wins_and_can_turn_responses_off() {
        let rules: BTreeMap<String, Vec<ResponseStep>> = [
            ("a".to_string(), vec![step("isolate_host", ResponseMode::Auto)]),
            ("b".to_string(), vec![step("notify", ResponseMode::Auto)]),
        ]
        .into();
        let mut config = ResponderConfig::default();
        config
            .playbooks
            .insert("a".into(), vec![step("isolate_host", ResponseMode::Approval)]);
        config.playbooks.insert("b".into(), vec![]);
        assert_eq!(steps_for(&config, &rules, "a").unwrap()[0].mode, ResponseMode::Approval);
        assert_eq!(steps_for(&config, &rules, "b"), Some(vec![]));
        assert_eq!(steps_for(&config, &rules, "c"), None);
    }
}
