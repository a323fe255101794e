//! Where the engine's time went while the latency phase was live, rule by rule: each
//! rule's evaluation time (`evaluation_seconds` of the rules API) between two
//! snapshots, so a figure that misses its target names the rules to look at first.

use cordon_detections::service::Shared;

/// Each rule's total evaluation time so far, in seconds.
pub(crate) fn snapshot(shared: &Shared) -> Vec<(String, f64)> {
    let rules = shared.rules.read().expect("rules lock");
    rules
        .values()
        .map(|view| (view.id.clone(), view.status.evaluation_seconds))
        .collect()
}

/// The time each rule took between two snapshots, longest first.
pub(crate) fn between(before: &[(String, f64)], after: &[(String, f64)]) -> Vec<(String, f64)> {
    let mut spent: Vec<(String, f64)> = after
        .iter()
        .map(|(rule, seconds)| {
            let earlier = before.iter().find(|(other, _)| other == rule).map_or(0.0, |(_, s)| *s);
            (rule.clone(), seconds - earlier)
        })
        .collect();
    spent.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    spent
}

/// "rule evaluation time while live (...): 41.2 s in all; longest: a 9.1 s, ..." (the
/// `top` longest). Different rules evaluate side by side, so the sum can pass the live
/// phase's wall time.
pub(crate) fn line(spent: &[(String, f64)], top: usize) -> String {
    let total: f64 = spent.iter().map(|(_, seconds)| seconds).sum();
    let named: Vec<String> = spent
        .iter()
        .take(top)
        .map(|(rule, seconds)| format!("{rule} {seconds:.1} s"))
        .collect();
    format!(
        "rule evaluation time while live (wall time of each evaluation, summed; rules run side by side): {total:.1} s in all; longest: {}",
        named.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_between_snapshots_is_per_rule_and_longest_first() {
        let before = vec![("a".to_string(), 1.0), ("b".to_string(), 2.0)];
        let after = vec![("a".to_string(), 4.0), ("b".to_string(), 3.0), ("c".to_string(), 0.5)];
        let spent = between(&before, &after);
        assert_eq!(
            spent,
            vec![("a".to_string(), 3.0), ("b".to_string(), 1.0), ("c".to_string(), 0.5)]
        );
        assert_eq!(
            line(&spent, 2),
            "rule evaluation time while live (wall time of each evaluation, summed; rules run side by side): 4.5 s in all; longest: a 3.0 s, b 1.0 s"
        );
    }
}
