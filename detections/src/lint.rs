//! `cordon rules lint`: what a reviewer would say about a rule that loads and passes
//! its fixtures but is not yet ready: no fixtures or no quiet case, a param the SQL never
//! uses, an input.sql that keeps every event, no ATT&CK or ATLAS ids, a window shorter
//! than the lateness bound. Each warning names its file and line.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::rule::{COMPACT_FILE, INPUT_FILE, MATCH_FILE, SETTINGS_FILE, TESTS_DIR};
use crate::settings::RuleSettings;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintWarning {
    pub path: PathBuf,
    pub line: u64,
    /// A stable name for the check (`no-quiet-case`), to grep and to discuss.
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for LintWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: warning[{}]: {}",
            self.path.display(),
            self.line,
            self.code,
            self.message
        )
    }
}

/// The 1-based line of the first line of `text` that starts with `key` (after spaces).
fn line_of(text: &str, key: &str) -> u64 {
    text.lines()
        .position(|line| line.trim_start().starts_with(key))
        .map_or(1, |index| index as u64 + 1)
}

/// SQL without its `--` comments, so a word in a comment is not a use.
fn without_comments(sql: &str) -> String {
    sql.lines()
        .map(|line| line.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Lints one rule folder; a folder that does not load yields no warnings (`cordon
/// rules check` reports why).
pub fn lint_rule(dir: &Path, lateness: Duration) -> Vec<LintWarning> {
    let settings_path = dir.join(SETTINGS_FILE);
    let Ok(text) = std::fs::read_to_string(&settings_path) else {
        return Vec::new();
    };
    let Ok(settings) = RuleSettings::parse(&text, &settings_path) else {
        return Vec::new();
    };
    let mut warnings = Vec::new();
    let mut warn = |path: PathBuf, line: u64, code: &'static str, message: String| {
        warnings.push(LintWarning {
            path,
            line,
            code,
            message,
        })
    };

    let cases = crate::fixtures::cases(dir);
    let named = |prefix: &str| {
        cases.iter().any(|case| {
            case.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(prefix))
        })
    };
    if cases.is_empty() {
        warn(
            settings_path.clone(),
            1,
            "no-fixtures",
            format!("the rule has no fixtures: add {TESTS_DIR}/fire-*.jsonl and {TESTS_DIR}/quiet-*.jsonl"),
        );
    } else {
        if !named("quiet-") {
            warn(
                dir.join(TESTS_DIR),
                1,
                "no-quiet-case",
                "no quiet-* case: add the closest benign activity the rule must not fire on".into(),
            );
        }
        if !named("fire-") {
            warn(
                dir.join(TESTS_DIR),
                1,
                "no-fire-case",
                "no fire-* case: add the activity the rule exists to catch".into(),
            );
        }
    }

    if settings.attack.is_empty() && settings.atlas.is_empty() {
        warn(
            settings_path.clone(),
            line_of(&text, "title"),
            "no-technique",
            "no ATT&CK or ATLAS technique: add `attack = [\"T....\"]` (or `atlas`) so coverage and analysts can place it".into(),
        );
    }

    if !settings.window.is_zero() && settings.window < lateness {
        warn(
            settings_path.clone(),
            line_of(&text, "window"),
            "window-shorter-than-lateness",
            format!(
                "window {:?} is shorter than the lateness bound {:?}: events that arrive late but in time can still miss each other",
                settings.window, lateness
            ),
        );
    }

    let sql: String = [INPUT_FILE, MATCH_FILE, COMPACT_FILE]
        .iter()
        .filter_map(|file| std::fs::read_to_string(dir.join(file)).ok())
        .map(|sql| without_comments(&sql))
        .collect::<Vec<_>>()
        .join("\n");
    for name in settings.params.keys() {
        if !sql.contains(&format!("${{{name}}}")) {
            warn(
                settings_path.clone(),
                line_of(&text, name),
                "unused-param",
                format!("param `{name}` is not used by the SQL (`${{{name}}}`): a threshold that changes nothing"),
            );
        }
    }

    let input_path = dir.join(INPUT_FILE);
    if let Ok(input) = std::fs::read_to_string(&input_path) {
        let code = without_comments(&input).to_ascii_lowercase();
        let filters = [" where ", "\nwhere ", " having ", "\nhaving ", " join ", "\njoin "]
            .iter()
            .any(|word| code.contains(word));
        if !filters {
            warn(
                input_path.clone(),
                input.lines().position(|line| line.to_ascii_lowercase().contains("from")).map_or(1, |i| i as u64 + 1),
                "input-keeps-everything",
                "input.sql keeps every event (no WHERE): every event is held for the window; keep only what the match needs".into(),
            );
        }
    }
    warnings
}

/// Lints every rule folder under `rules_dir` (or only `only`), in folder order.
pub fn lint_all(
    rules_dir: &Path,
    lateness: Duration,
    only: Option<&str>,
) -> Result<Vec<LintWarning>, crate::RuleError> {
    let mut warnings = Vec::new();
    for dir in crate::rule::rule_dirs(rules_dir)? {
        let id = dir.file_name().and_then(|name| name.to_str()).unwrap_or_default();
        if only.is_some_and(|only| only != id) {
            continue;
        }
        warnings.extend(lint_rule(&dir, lateness));
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: &str = r#"title = "Lint me"
description = "d"
severity = "low"
window = "1m"
partition_by = ["host_id"]
suppression = "1h"

[params]
min_count = 3
unused_threshold = 10
"#;

    fn rule(input: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let rule = dir.path().join("lint-me");
        std::fs::create_dir_all(rule.join(TESTS_DIR)).unwrap();
        std::fs::write(rule.join(SETTINGS_FILE), SETTINGS).unwrap();
        std::fs::write(rule.join(INPUT_FILE), input).unwrap();
        std::fs::write(
            rule.join(MATCH_FILE),
            "-- ${unused_threshold} only in a comment\nSELECT host_id FROM kept GROUP BY host_id HAVING count(*) >= ${min_count}\n",
        )
        .unwrap();
        std::fs::write(rule.join(TESTS_DIR).join("fire-one.jsonl"), "").unwrap();
        dir
    }

    #[test]
    fn a_reviewers_warnings_with_file_and_line() {
        let dir = rule("-- everything\nSELECT *\nFROM events\n");
        let warnings = lint_all(dir.path(), Duration::from_secs(300), None).unwrap();
        let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        let has = |code: &str, suffix: &str| {
            assert!(
                text.iter()
                    .any(|line| line.contains(&format!("warning[{code}]")) && line.contains(suffix)),
                "{code} at {suffix} in {text:#?}"
            )
        };
        has("no-quiet-case", "lint-me/tests:1:");
        has("no-technique", "rule.toml:1:");
        has("window-shorter-than-lateness", "rule.toml:4:");
        has("unused-param", "rule.toml:10:");
        has("input-keeps-everything", "input.sql:3:");
        assert_eq!(warnings.len(), 5, "{text:#?}");
    }

    #[test]
    fn a_ready_rule_has_nothing_to_say() {
        let dir = rule("SELECT * FROM events WHERE event_name = 'process.start'\n");
        let rule = dir.path().join("lint-me");
        std::fs::write(
            rule.join(SETTINGS_FILE),
            SETTINGS
                .replace("window = \"1m\"", "window = \"10m\"")
                .replace("severity = \"low\"", "severity = \"low\"\nattack = [\"T1059\"]")
                .replace("unused_threshold = 10\n", ""),
        )
        .unwrap();
        std::fs::write(
            rule.join(MATCH_FILE),
            "SELECT host_id FROM kept HAVING count(*) >= ${min_count}\n",
        )
        .unwrap();
        std::fs::write(rule.join(TESTS_DIR).join("quiet-one.jsonl"), "").unwrap();
        let warnings = lint_all(dir.path(), Duration::from_secs(300), None).unwrap();
        assert!(warnings.is_empty(), "{warnings:#?}");
    }
}
