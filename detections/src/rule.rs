//! A rule folder, loaded and checked: `rule.toml`, `input.sql` (which events the rule
//! keeps, run on each new batch), `match.sql` (run over the kept rows of the
//! partitions that just received some) and, optionally, `compact.sql` (rewrites those
//! kept rows after the match, so a rule's state stays small however events were
//! batched: `telemetry-gap` merges runs of numbers that meet).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::RuleError;
use crate::params::{self, Substituted};
use crate::settings::RuleSettings;

pub const SETTINGS_FILE: &str = "rule.toml";
pub const INPUT_FILE: &str = "input.sql";
pub const MATCH_FILE: &str = "match.sql";
pub const COMPACT_FILE: &str = "compact.sql";
pub const TESTS_DIR: &str = "tests";

/// The SQL stages of a rule (compact is optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Input,
    Match,
    Compact,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Input => "input",
            Stage::Match => "match",
            Stage::Compact => "compact",
        }
    }

    pub fn file(self) -> &'static str {
        match self {
            Stage::Input => INPUT_FILE,
            Stage::Match => MATCH_FILE,
            Stage::Compact => COMPACT_FILE,
        }
    }
}

/// One stage's SQL: the file, the text as written and with its parameters filled in.
#[derive(Debug, Clone)]
pub struct StageSql {
    pub path: PathBuf,
    pub written: String,
    pub substituted: Substituted,
}

impl StageSql {
    /// An error at `line`/`column` of the substituted SQL, placed in the file.
    pub fn error_at(&self, line: Option<u64>, column: Option<u64>, message: impl Into<String>) -> RuleError {
        let column = match (line, column) {
            (Some(line), Some(column)) => Some(self.substituted.original_column(line, column)),
            _ => column,
        };
        RuleError::at(&self.path, line, column, message)
    }
}

/// A rule as read from its folder, before it is planned.
#[derive(Debug, Clone)]
pub struct RuleDefinition {
    pub id: String,
    pub dir: PathBuf,
    pub settings: RuleSettings,
    pub input: StageSql,
    pub matcher: StageSql,
    pub compact: Option<StageSql>,
}

impl RuleDefinition {
    /// Reads `dir`; the folder's name is the rule id. `lateness` is the engine's.
    pub fn load(dir: &Path, lateness: Duration) -> Result<RuleDefinition, RuleError> {
        RuleDefinition::load_with_window(dir, lateness, None)
    }

    /// Like `load`, with every non-zero window replaced by `window` (benchmarks, what-ifs).
    pub fn load_with_window(
        dir: &Path,
        lateness: Duration,
        window: Option<Duration>,
    ) -> Result<RuleDefinition, RuleError> {
        let id = dir
            .file_name()
            .and_then(|name| name.to_str())
            .filter(|name| {
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            })
            .ok_or_else(|| RuleError::in_file(dir, "a rule folder's name is its id: use a-z, 0-9 and -"))?
            .to_string();
        let mut settings = RuleSettings::load(&dir.join(SETTINGS_FILE))?;
        if let Some(window) = window
            && !settings.window.is_zero()
        {
            settings.window = window;
        }
        let values = param_values(&settings, lateness);
        let read = |stage: Stage| -> Result<StageSql, RuleError> {
            let path = dir.join(stage.file());
            let written = std::fs::read_to_string(&path).map_err(|error| RuleError::io(&path, error))?;
            let substituted = params::substitute(&written, &values).map_err(|unknown| {
                RuleError::at(
                    &path,
                    Some(unknown.line),
                    Some(unknown.column),
                    format!(
                        "`${{{}}}` is not a param of this rule; add it under [params] in {SETTINGS_FILE} (known: {})",
                        unknown.name,
                        values.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )
            })?;
            Ok(StageSql {
                path,
                written,
                substituted,
            })
        };
        Ok(RuleDefinition {
            id,
            dir: dir.to_path_buf(),
            input: read(Stage::Input)?,
            matcher: read(Stage::Match)?,
            compact: if dir.join(COMPACT_FILE).exists() {
                Some(read(Stage::Compact)?)
            } else {
                None
            },
            settings,
        })
    }

    pub fn stage(&self, stage: Stage) -> &StageSql {
        match stage {
            Stage::Input => &self.input,
            Stage::Match => &self.matcher,
            Stage::Compact => self
                .compact
                .as_ref()
                .expect("the compact stage is asked for only when the rule has compact.sql"),
        }
    }
}

/// What each `${name}` of a rule's SQL becomes: its params, `window` and `lateness`.
pub fn param_values(settings: &RuleSettings, lateness: Duration) -> BTreeMap<String, String> {
    let mut values: BTreeMap<String, String> = settings
        .params
        .iter()
        .map(|(name, param)| (name.clone(), params::literal(param)))
        .collect();
    values.insert("window".into(), params::interval(settings.window));
    values.insert("lateness".into(), params::interval(lateness));
    values
}

/// The rule folders under `rules_dir` (each sub-folder with a `rule.toml`), sorted.
pub fn rule_dirs(rules_dir: &Path) -> Result<Vec<PathBuf>, RuleError> {
    let entries = std::fs::read_dir(rules_dir).map_err(|error| RuleError::io(rules_dir, error))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.join(SETTINGS_FILE).is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}
