//! Rule folders and reference tables changed on disk, taken up while the service runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::Running;
use crate::engine::{Due, Engine};
use crate::rule::rule_dirs;

/// A fingerprint of a folder's files: names, sizes and change times.
pub(super) fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                // Fixtures do not change what runs.
                if path.file_name().is_some_and(|name| name != crate::rule::TESTS_DIR) {
                    stack.push(path);
                }
            } else {
                out.push((path, meta.len(), meta.modified().ok()));
            }
        }
    }
    out.sort();
    out
}

impl Running {
    pub(super) fn current_fingerprints(&self) -> BTreeMap<PathBuf, Vec<(PathBuf, u64, Option<SystemTime>)>> {
        rule_dirs(&self.config.rules_dir)
            .unwrap_or_default()
            .into_iter()
            .map(|dir| {
                let print = fingerprint(&dir);
                (dir, print)
            })
            .collect()
    }

    /// Reloads the rule folders whose files changed (all of them when a reference
    /// table changed); removes rules whose folder is gone.
    pub(super) async fn reload_changed(&mut self) {
        let current = self.current_fingerprints();
        let reference_now = fingerprint(&self.config.reference_dir);
        let reference_changed = reference_now != self.reference_fingerprint;
        if reference_changed || current != self.fingerprints {
            // What rules hold (`evaluate_every`) is evaluated by the versions that held
            // it, as a rule that evaluates every burst already had, before any changes.
            self.evaluate_held(Due::All).await;
        }
        if reference_changed {
            match crate::reference::load_dir(&self.config.reference_dir) {
                Ok(reference) => {
                    self.reference_fingerprint = reference_now;
                    let config = self.engine.config().clone();
                    let mut engine = Engine::new(config, reference, self.metrics.clone());
                    std::mem::swap(&mut engine, &mut self.engine);
                    // Rules are recompiled against the new tables below; state restarts.
                    self.fingerprints.clear();
                    tracing::info!("reference tables changed; reloading every rule");
                }
                Err(error) => {
                    tracing::error!(%error, "reference tables not reloaded; the rules keep the last good tables");
                    self.reference_fingerprint = reference_now;
                }
            }
        }
        let mut changed = false;
        for (dir, print) in &current {
            if self.fingerprints.get(dir) == Some(print) {
                continue;
            }
            changed = true;
            let id = dir
                .file_name()
                .map(|name| name.to_string_lossy().to_string())
                .unwrap_or_default();
            match self.engine.compile(dir).await {
                Ok(Some(compiled)) => {
                    self.engine.install(compiled);
                    self.load_errors.remove(&id);
                    tracing::info!(rule = %id, "rule loaded");
                }
                Ok(None) => {
                    self.engine.remove(&id);
                    self.load_errors.remove(&id);
                    tracing::info!(rule = %id, "rule disabled");
                }
                Err(error) => {
                    self.metrics.rule_load_errors.inc();
                    tracing::error!(rule = %id, error = %error, "rule edit does not load; the last good version keeps running");
                    self.load_errors.insert(id, error.to_string());
                }
            }
        }
        for id in self.engine.rule_ids() {
            if !current
                .keys()
                .any(|dir| dir.file_name().is_some_and(|name| name.to_string_lossy() == id))
            {
                changed = true;
                self.engine.remove(&id);
                self.load_errors.remove(&id);
                tracing::info!(rule = %id, "rule folder removed; rule stopped");
            }
        }
        self.fingerprints = current;
        // Also when nothing changed: the data-health report may be waiting on its pace.
        let _ = changed;
        self.publish();
    }
}
