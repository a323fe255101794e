//! The built-in rules as DuckDB runs them: each rule's input.sql and match.sql with
//! its params filled in exactly as Cordon fills them, written to a manifest the DuckDB
//! driver (`bench/peers/duckdb_peer.py`) reads. The driver supplies what DuckDB lacks
//! (Cordon's functions, as macros) and what the engine supplies (`kept`, `is_new`,
//! `is_due`, the alert fold); the only rewrites of the SQL text are the function names
//! DataFusion and DuckDB spell differently, listed here.

use std::path::Path;
use std::time::Duration;

use cordon_detections::rule::{RuleDefinition, rule_dirs};
use cordon_schemas::EventKind;
use serde_json::{Value, json};

/// DataFusion spelling -> DuckDB spelling (whole words before `(`).
const RENAMES: &[(&str, &str)] = &[
    ("regexp_like", "regexp_matches"),
    ("make_array", "list_value"),
    ("to_unixtime", "epoch"),
    // As an aggregate (`first_value(x ORDER BY y)`): DuckDB's first_value is a window
    // function only; its `first` / `last` are both.
    ("first_value", "first"),
    ("last_value", "last"),
];

/// Rules that read events Cordon derives from its own matches (signals, risk): the
/// peers see only the producers' stream, so these run in Cordon alone.
pub const CHAINED: &[&str] = &["agent-building-blocks", "entity-risk"];

pub fn translate(sql: &str) -> String {
    let mut out = sql.to_string();
    for (from, to) in RENAMES {
        let pattern = regex::Regex::new(&format!(r"\b{from}\s*\(")).expect("a valid pattern");
        out = pattern.replace_all(&out, format!("{to}(").as_str()).into_owned();
    }
    out
}

/// Writes `manifest.json` under `dir`: the event-kind views and every rule DuckDB runs.
pub fn write_manifest(rules_dir: &Path, lateness: Duration, dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut rules = Vec::new();
    let mut skipped = Vec::new();
    for rule_dir in rule_dirs(rules_dir)? {
        let definition = RuleDefinition::load(&rule_dir, lateness)?;
        if definition.settings.disabled {
            continue;
        }
        if CHAINED.contains(&definition.id.as_str()) {
            skipped.push(definition.id.clone());
            continue;
        }
        let settings = &definition.settings;
        rules.push(json!({
            "id": definition.id,
            "input": translate(&definition.input.substituted.sql),
            "match": translate(&definition.matcher.substituted.sql),
            "window_seconds": settings.window.as_secs_f64(),
            "entity": settings.entity,
            "suppress_by": settings.suppress_by,
            "suppress_missing_never": matches!(settings.suppress_missing, cordon_detections::settings::MissingField::Never),
            "suppression_seconds": settings.suppression.as_secs_f64(),
            "signal": !settings.alert,
        }));
    }
    let views: Vec<Value> = EventKind::ALL
        .iter()
        .map(|kind| json!({"view": kind.table_name(), "kind": kind.as_str()}))
        .collect();
    let manifest = json!({
        "lateness_seconds": lateness.as_secs_f64(),
        "views": views,
        "rules": rules,
    });
    std::fs::write(dir.join("manifest.json"), serde_json::to_vec_pretty(&manifest)?)?;
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_only_whole_function_names() {
        assert_eq!(
            translate("regexp_like(lower(x), 'a') AND my_regexp_like(y) OR make_array (a, b)"),
            "regexp_matches(lower(x), 'a') AND my_regexp_like(y) OR list_value(a, b)"
        );
        assert_eq!(
            translate("first_value(t ORDER BY n), last_value(t ORDER BY n)"),
            "first(t ORDER BY n), last(t ORDER BY n)"
        );
    }
}
