//! The import's fixture check, run for every converted rule at once: each rule is
//! written to a scratch folder of its own under the destination and its generated
//! fixtures run there (blessing the expected files), as many side by side as there are
//! cores. Only then are ids assigned, in the rules' order, and the rules that passed
//! moved into place: a rule's files do not name its folder, so the move changes nothing
//! the check saw.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::folder::{self, RuleFiles};
use crate::engine::EngineConfig;
use crate::error::RuleError;
use crate::reference::ReferenceTable;

/// Where the checks run: hidden, and two levels down, so no rule loader lists it.
const SCRATCH: &str = ".sigma-import-check";

/// A rule's fixture check: its checked folder, or why it failed.
pub type Checked = Result<PathBuf, String>;

/// The scratch folder the checks ran in; removed when dropped (whatever the import did).
pub struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Checks every rule in `rules` under `into`, at most one per core at a time; each rule
/// comes back, in its order, with its check.
pub async fn check_all(
    rules: Vec<RuleFiles>,
    into: &Path,
    reference: &BTreeMap<String, ReferenceTable>,
    config: &EngineConfig,
) -> Result<(Scratch, Vec<(RuleFiles, Checked)>), RuleError> {
    let scratch = Scratch(into.join(SCRATCH));
    // What a stopped import left behind.
    if scratch.0.exists() {
        std::fs::remove_dir_all(&scratch.0).map_err(|error| RuleError::io(&scratch.0, error))?;
    }
    let shared = Arc::new((reference.clone(), config.clone()));
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    let permits = Arc::new(Semaphore::new(cores));
    let mut running = JoinSet::new();
    // Each task's rule, so that one whose check panicked is reported, not lost.
    let mut spawned = HashMap::new();
    for (index, files) in rules.into_iter().enumerate() {
        let (root, shared, permits) = (scratch.0.join(index.to_string()), shared.clone(), permits.clone());
        let task_files = files.clone();
        let task = running.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("the semaphore is never closed");
            let checked = check_one(&task_files, &root, &shared.0, &shared.1).await;
            (index, task_files, checked)
        });
        spawned.insert(task.id(), (index, files));
    }
    // An error returns early, dropping (so aborting) the checks still running.
    let mut results = Vec::with_capacity(running.len());
    while let Some(joined) = running.join_next_with_id().await {
        match joined {
            Ok((_, (index, files, checked))) => results.push((index, files, checked?)),
            Err(error) => {
                let Some((index, files)) = spawned.remove(&error.id()) else {
                    continue;
                };
                results.push((index, files, Err(stopped(error))));
            }
        }
    }
    results.sort_by_key(|(index, _, _)| *index);
    let results = results
        .into_iter()
        .map(|(_, files, checked)| (files, checked))
        .collect();
    Ok((scratch, results))
}

/// Why a rule's check stopped without a result: the rule is not imported, the others are.
fn stopped(error: tokio::task::JoinError) -> String {
    let reason = if error.is_panic() {
        let payload = error.into_panic();
        payload
            .downcast_ref::<&str>()
            .map(|text| text.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into())
    } else {
        "it was cancelled".into()
    };
    format!("its fixture check stopped ({reason}); this is a bug in Cordon: please report it with the Sigma rule")
}

/// Writes `files` under `root` and runs its generated fixtures, blessing the expected
/// files. The outer error is the import's (a folder that cannot be written); the inner
/// one the rule's.
async fn check_one(
    files: &RuleFiles,
    root: &Path,
    reference: &BTreeMap<String, ReferenceTable>,
    config: &EngineConfig,
) -> Result<Checked, RuleError> {
    let dir = folder::write(files, root).map_err(|error| RuleError::io(root, error))?;
    let results = crate::fixtures::run_all(root, reference, config, Some(&files.id), true).await?;
    let failure = results.iter().find_map(|result| {
        result
            .failure
            .as_ref()
            .map(|failure| format!("{}: {failure}", result.case))
    });
    Ok(match failure {
        Some(failure) => Err(failure),
        None => Ok(dir),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_check_that_panics_is_that_rules_failure_with_its_reason() {
        let mut running = JoinSet::new();
        running.spawn(async { panic!("planner lost its way") });
        let error = running.join_next().await.unwrap().unwrap_err();
        let message = stopped(error);
        assert!(message.contains("planner lost its way"), "{message}");
        assert!(message.contains("report it"), "{message}");
    }
}
