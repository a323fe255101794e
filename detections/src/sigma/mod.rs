//! `cordon rules import-sigma`: Sigma detection and correlation rules as Cordon rule
//! folders. Sigma is parsed by the `rsigma-parser` crate; the field mapping
//! (`mapping.rs`, a file like a pySigma pipeline) says which events and columns Sigma's
//! log sources and fields are. Each converted rule gets fixtures built from its own
//! detection values, run once at import (their expected files blessed; every rule's
//! at once, `check.rs`): a rule whose generated events do not fire it is not written. What cannot be converted is
//! reported per rule with the reason; nothing is dropped silently.

mod boolean;
mod check;
mod correlation;
mod detection;
mod example;
mod folder;
mod item;
pub mod mapping;
mod single;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rsigma_parser::SigmaRule;

use crate::engine::EngineConfig;
use crate::error::RuleError;
use crate::reference::ReferenceTable;
pub use folder::RuleFiles;
pub use mapping::SigmaMapping;
pub use single::{FIRE_CASE, QUIET_CASE};

/// A rule folder written by the import.
#[derive(Debug)]
pub struct Imported {
    pub id: String,
    pub title: String,
    pub source: String,
    pub correlation: bool,
    /// The mapping's log source a detection rule reads (empty for a correlation).
    pub logsource: String,
    pub notes: Vec<String>,
    /// The Sigma-side events (Sigma's field names) the fixtures were made from, for a
    /// detection rule: what another Sigma engine can be asked about.
    pub fire_event: Option<BTreeMap<String, serde_json::Value>>,
    pub quiet_event: Option<BTreeMap<String, serde_json::Value>>,
}

/// A Sigma document that was not converted, and why.
#[derive(Debug)]
pub struct Skipped {
    pub title: String,
    pub source: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct ImportReport {
    pub imported: Vec<Imported>,
    pub skipped: Vec<Skipped>,
    /// Rules only a correlation uses (`generate: false`): folded into it, (title,
    /// source, correlation id).
    pub folded: Vec<(String, String, String)>,
}

/// The `.yml`/`.yaml` files under `paths` (files as given, folders recursively), sorted.
pub fn sigma_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, RuleError> {
    fn walk(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), RuleError> {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).map_err(|error| RuleError::io(path, error))? {
                walk(&entry.map_err(|error| RuleError::io(path, error))?.path(), out)?;
            }
        } else if path.extension().is_some_and(|ext| ext == "yml" || ext == "yaml") {
            out.push(path.to_path_buf());
        }
        Ok(())
    }
    let mut files = Vec::new();
    for path in paths {
        if !path.exists() {
            return Err(RuleError::in_file(path, "no such Sigma file or folder"));
        }
        walk(path, &mut files)?;
    }
    files.sort();
    Ok(files)
}

/// Converts the Sigma rules under `paths` into rule folders under `into`.
pub async fn import(
    paths: &[PathBuf],
    into: &Path,
    mapping: &SigmaMapping,
    reference: &BTreeMap<String, ReferenceTable>,
    config: &EngineConfig,
) -> Result<ImportReport, RuleError> {
    let mut report = ImportReport::default();
    let mut rules: Vec<(String, SigmaRule, String)> = Vec::new();
    let mut correlations = Vec::new();
    for file in sigma_files(paths)? {
        let source = file
            .file_name()
            .map(|name| name.to_string_lossy().to_string())
            .unwrap_or_default();
        let collection = match rsigma_parser::parse_sigma_file(&file) {
            Ok(collection) => collection,
            Err(error) => {
                report.skipped.push(Skipped {
                    title: "-".into(),
                    source,
                    reason: format!("does not parse as Sigma: {error}"),
                });
                continue;
            }
        };
        for error in &collection.errors {
            report.skipped.push(Skipped {
                title: "-".into(),
                source: source.clone(),
                reason: format!("does not parse as Sigma: {error}"),
            });
        }
        for filter in &collection.filters {
            report.skipped.push(Skipped {
                title: filter.title.clone(),
                source: source.clone(),
                reason: "Sigma filter rules are not supported: add the exclusion to the rule's input.sql".into(),
            });
        }
        for rule in collection.rules {
            let name = rule
                .name
                .clone()
                .or_else(|| rule.id.clone())
                .unwrap_or_else(|| rule.title.clone());
            rules.push((name, rule, source.clone()));
        }
        correlations.extend(collection.correlations.into_iter().map(|rule| (rule, source.clone())));
    }
    let mut folded_into: BTreeMap<String, String> = BTreeMap::new();
    for (correlation, _) in &correlations {
        if !correlation.generate {
            for reference in &correlation.rules {
                folded_into.insert(reference.clone(), folder::slug(&correlation.title));
            }
        }
    }
    let mut written = BTreeSet::new();
    // Each converted rule's files, and a single-event rule's example (none for correlations).
    let mut pending: Vec<(RuleFiles, Option<single::Example>)> = Vec::new();
    for (name, rule, source) in &rules {
        let folded = folded_into
            .get(name)
            .or_else(|| rule.id.as_ref().and_then(|id| folded_into.get(id)));
        if let Some(correlation) = folded {
            report
                .folded
                .push((rule.title.clone(), source.clone(), correlation.clone()));
            continue;
        }
        match single::convert(rule, source, mapping) {
            Ok(single::ConvertedDetection { files, example }) => pending.push((files, Some(example))),
            Err(reason) => report.skipped.push(Skipped {
                title: rule.title.clone(),
                source: source.clone(),
                reason,
            }),
        }
    }
    let named: Vec<(String, &SigmaRule)> = rules.iter().map(|(name, rule, _)| (name.clone(), rule)).collect();
    for (rule, source) in &correlations {
        match correlation::convert(rule, source, &named, mapping) {
            Ok(files) => pending.push((files, None)),
            Err(reason) => report.skipped.push(Skipped {
                title: rule.title.clone(),
                source: source.clone(),
                reason,
            }),
        }
    }
    std::fs::create_dir_all(into).map_err(|error| RuleError::io(into, error))?;
    let (candidates, examples): (Vec<RuleFiles>, Vec<_>) = pending.into_iter().unzip();
    let (_scratch, checks) = check::check_all(candidates, into, reference, config).await?;
    for ((mut files, checked), example) in checks.into_iter().zip(examples) {
        let checked_dir = match checked {
            Ok(dir) => dir,
            Err(failure) => {
                report.skipped.push(Skipped {
                    title: files.meta.title.clone(),
                    source: files.meta.source.clone(),
                    reason: format!(
                        "the converted rule failed its generated fixture, so it was not written ({failure})"
                    ),
                });
                continue;
            }
        };
        files.id = free_id(into, &files, &written);
        let dir = into.join(&files.id);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|error| RuleError::io(&dir, error))?;
        }
        std::fs::rename(&checked_dir, &dir).map_err(|error| RuleError::io(&dir, error))?;
        written.insert(files.id.clone());
        let correlation = example.is_none();
        let (logsource, fire_event, quiet_event) = match example {
            Some(single::Example {
                logsource,
                fire_event,
                quiet_event,
            }) => (logsource, Some(fire_event), Some(quiet_event)),
            None => (String::new(), None, None),
        };
        report.imported.push(Imported {
            id: files.id.clone(),
            title: files.meta.title.clone(),
            source: files.meta.source.clone(),
            correlation,
            logsource,
            notes: files.notes.clone(),
            fire_event,
            quiet_event,
        });
    }
    Ok(report)
}

/// A Sigma-side event (Sigma's field names) as the flat contract event a producer of
/// `logsource` would send, as the generated fixtures are made.
pub fn contract_event(
    sigma_event: &BTreeMap<String, serde_json::Value>,
    logsource: &str,
    mapping: &SigmaMapping,
    id: &str,
) -> serde_json::Value {
    let base = folder::EventBase {
        time: single::base_time(),
        host: "wks-sigma-1",
        user: "sigma-user",
        id: id.to_string(),
    };
    folder::flat_event(sigma_event, logsource, mapping, &base)
}

/// The folder id to write: the slug, unless a rule of another origin (or one written
/// earlier in this import) has it, then `<slug>-2`, `-3`...
fn free_id(into: &Path, files: &RuleFiles, written: &BTreeSet<String>) -> String {
    let ours = |id: &str| {
        let settings = into.join(id).join(crate::rule::SETTINGS_FILE);
        if !settings.exists() {
            return !written.contains(id);
        }
        let same_sigma = crate::settings::RuleSettings::load(&settings)
            .ok()
            .and_then(|settings| settings.sigma)
            .is_some_and(|origin| origin.id.is_some() && origin.id == files.meta.id);
        same_sigma && !written.contains(id)
    };
    if ours(&files.id) {
        return files.id.clone();
    }
    (2..)
        .map(|n| format!("{}-{n}", files.id))
        .find(|id| ours(id))
        .expect("some suffix is free")
}
