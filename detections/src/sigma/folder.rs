//! A converted Sigma rule as a Cordon rule folder: `rule.toml` (with the Sigma id,
//! level, tags and source under `[sigma]`), `input.sql`, `match.sql` and the fixtures
//! built from the rule's own values.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use cordon_schemas::Severity;
use cordon_schemas::fields::ATTR_FIELDS;

use super::mapping::{Resolved, SigmaMapping};

/// What a Sigma document says about itself, carried into `rule.toml`.
#[derive(Debug, Clone)]
pub struct SigmaMeta {
    pub id: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub level: Option<String>,
    pub status: Option<String>,
    pub tags: Vec<String>,
    pub author: Option<String>,
    pub references: Vec<String>,
    pub falsepositives: Vec<String>,
    pub source: String,
}

impl SigmaMeta {
    pub fn severity(&self) -> Severity {
        match self.level.as_deref() {
            Some("critical") => Severity::Critical,
            Some("high") => Severity::High,
            Some("medium") => Severity::Medium,
            _ => Severity::Low,
        }
    }

    /// ATT&CK technique ids from `attack.t1105`, `attack.t1059.001` tags.
    pub fn attack(&self) -> Vec<String> {
        self.tags
            .iter()
            .filter_map(|tag| tag.strip_prefix("attack.t"))
            .filter(|id| id.chars().next().is_some_and(|c| c.is_ascii_digit()))
            .map(|id| format!("T{}", id.to_ascii_uppercase()))
            .collect()
    }
}

/// The `SigmaMeta` of a Sigma detection or correlation rule (the parser's two types
/// share these field names, not a trait).
macro_rules! meta_of {
    ($rule:expr, $source:expr) => {{
        let rule = $rule;
        super::folder::SigmaMeta {
            id: rule.id.clone(),
            title: rule.title.clone(),
            description: rule.description.clone(),
            level: rule.level.as_ref().map(|level| level.as_str().to_string()),
            status: rule.status.as_ref().map(|status| format!("{status:?}").to_lowercase()),
            tags: rule.tags.clone(),
            author: rule.author.clone(),
            references: rule.references.clone(),
            falsepositives: rule.falsepositives.clone(),
            source: $source.to_string(),
        }
    }};
}
pub(super) use meta_of;

/// A folder's files, written by `write`.
#[derive(Debug, Clone)]
pub struct RuleFiles {
    pub id: String,
    pub meta: SigmaMeta,
    pub window: Duration,
    pub partition_by: Vec<String>,
    pub entity: Vec<String>,
    pub input_sql: String,
    pub match_sql: String,
    /// Case name (`fire-sigma-values`) -> its event lines.
    pub cases: BTreeMap<String, Vec<serde_json::Value>>,
    pub notes: Vec<String>,
}

/// A folder name (the rule id) from a Sigma title: lower-case words joined by `-`.
pub fn slug(title: &str) -> String {
    let mut slug = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let mut slug = slug.trim_end_matches('-').to_string();
    if slug.len() > 64 {
        slug.truncate(64);
        slug = slug.trim_end_matches('-').to_string();
    }
    if slug.is_empty() { "sigma-rule".into() } else { slug }
}

fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn list(items: &[String]) -> String {
    format!(
        "[{}]",
        items.iter().map(|item| quoted(item)).collect::<Vec<_>>().join(", ")
    )
}

fn settings_text(files: &RuleFiles) -> String {
    let meta = &files.meta;
    let mut description = meta.description.clone().unwrap_or_else(|| meta.title.clone());
    if !meta.falsepositives.is_empty() {
        description.push_str(&format!("\nFalse positives: {}.", meta.falsepositives.join("; ")));
    }
    for note in &files.notes {
        description.push_str(&format!("\nImport note: {note}."));
    }
    let mut text = format!(
        "# Imported from Sigma ({}) by `cordon rules import-sigma`. Review it like any rule:\n\
         # the SQL is yours to edit, and `cordon rules test` runs its fixtures.\n\
         title = {}\ndescription = {}\nseverity = \"{}\"\nattack = {}\n",
        meta.source,
        quoted(&meta.title),
        toml::Value::String(description.trim().to_string()),
        files.meta.severity().as_str(),
        list(&meta.attack()),
    );
    if !files.window.is_zero() {
        text.push_str(&format!("window = \"{}\"\n", duration_text(files.window)));
    }
    text.push_str(&format!(
        "partition_by = {}\nentity = {}\nsuppression = \"1h\"\n\n[sigma]\n",
        list(&files.partition_by),
        list(&files.entity)
    ));
    if let Some(id) = &meta.id {
        text.push_str(&format!("id = {}\n", quoted(id)));
    }
    for (key, value) in [
        ("level", &meta.level),
        ("status", &meta.status),
        ("author", &meta.author),
    ] {
        if let Some(value) = value {
            text.push_str(&format!("{key} = {}\n", quoted(value)));
        }
    }
    text.push_str(&format!(
        "tags = {}\nsource = {}\n",
        list(&meta.tags),
        quoted(&meta.source)
    ));
    if !meta.references.is_empty() {
        text.push_str(&format!("references = {}\n", list(&meta.references)));
    }
    text.push_str("\n[[response]]\naction = \"notify\"\nmode = \"auto\"\n");
    text
}

/// `5m`, `2h`, `90s`: how rule.toml writes durations.
pub fn duration_text(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds.is_multiple_of(3600) {
        format!("{}h", seconds / 3600)
    } else if seconds.is_multiple_of(60) {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

/// Writes the folder (replacing one of the same id); the expected files are left to
/// the caller's first fixture run.
pub fn write(files: &RuleFiles, into: &Path) -> std::io::Result<std::path::PathBuf> {
    let dir = into.join(&files.id);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(dir.join(crate::rule::TESTS_DIR))?;
    std::fs::write(dir.join(crate::rule::SETTINGS_FILE), settings_text(files))?;
    std::fs::write(dir.join(crate::rule::INPUT_FILE), &files.input_sql)?;
    std::fs::write(dir.join(crate::rule::MATCH_FILE), &files.match_sql)?;
    for (case, events) in &files.cases {
        let mut text = format!(
            "# Generated by `cordon rules import-sigma` from the Sigma rule's own detection values ({}).\n",
            if case.starts_with("fire") {
                "it must raise an alert"
            } else {
                "it must not"
            }
        );
        for event in events {
            text.push_str(&serde_json::to_string(event).expect("JSON values serialize"));
            text.push('\n');
        }
        std::fs::write(dir.join(crate::rule::TESTS_DIR).join(format!("{case}.jsonl")), text)?;
    }
    Ok(dir)
}

/// The contract attribute of a column (`process_command_line` -> `process.command_line`).
pub fn attribute_of(column: &str) -> Option<&'static str> {
    match column {
        "host_id" => Some("host.id"),
        "host_name" => Some("host.name"),
        "event_name" => Some("event.name"),
        "event_id" => Some("event.id"),
        "service_name" => Some("service.name"),
        _ => ATTR_FIELDS
            .iter()
            .find(|field| field.column == column)
            .map(|field| field.attr),
    }
}

/// Where and when a generated event happens.
pub struct EventBase<'a> {
    pub time: chrono::DateTime<chrono::Utc>,
    pub host: &'a str,
    pub user: &'a str,
    pub id: String,
}

/// A Sigma-side event (Sigma field names) as a flat contract event for a fixture.
pub fn flat_event(
    sigma: &BTreeMap<String, serde_json::Value>,
    logsource: &str,
    mapping: &SigmaMapping,
    base: &EventBase,
) -> serde_json::Value {
    let mut event = serde_json::Map::new();
    event.insert(
        "time".into(),
        base.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true).into(),
    );
    event.insert("host.id".into(), base.host.into());
    event.insert("event.id".into(), base.id.clone().into());
    event.insert("user.name".into(), base.user.into());
    if let Some(fixture) = mapping.fixture(logsource) {
        for (attribute, value) in fixture {
            event.insert(attribute.clone(), value.clone().into());
        }
    }
    for (field, value) in sigma {
        let Some(Resolved::Column {
            column, ty, basename, ..
        }) = mapping.resolve(logsource, field)
        else {
            continue;
        };
        let Some(attribute) = attribute_of(&column) else {
            continue;
        };
        let value = match (value, ty) {
            (serde_json::Value::String(text), _) if basename => text.rsplit(['\\', '/']).next().unwrap_or(text).into(),
            (serde_json::Value::String(text), cordon_schemas::fields::FieldType::Int) => {
                text.trim().parse::<i64>().map_or(value.clone(), Into::into)
            }
            _ => value.clone(),
        };
        event.insert(attribute.to_string(), value);
    }
    serde_json::Value::Object(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_rule_ids() {
        assert_eq!(
            slug("Suspicious Curl File Upload - Linux"),
            "suspicious-curl-file-upload-linux"
        );
        assert_eq!(slug("  PowerShell: IEX (Download) "), "powershell-iex-download");
        assert_eq!(slug("!!!"), "sigma-rule");
    }

    #[test]
    fn attack_ids_come_from_technique_tags_only() {
        let meta = SigmaMeta {
            id: None,
            title: "t".into(),
            description: None,
            level: Some("high".into()),
            status: None,
            tags: vec![
                "attack.exfiltration".into(),
                "attack.t1567".into(),
                "attack.t1059.001".into(),
            ],
            author: None,
            references: vec![],
            falsepositives: vec![],
            source: "x.yml".into(),
        };
        assert_eq!(meta.attack(), vec!["T1567", "T1059.001"]);
        assert_eq!(meta.severity(), Severity::High);
    }
}
