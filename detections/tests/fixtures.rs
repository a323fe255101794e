//! Every case of every built-in rule (`detections/rules/<rule>/tests/<case>.jsonl`) as
//! its own test, found by walking the folders: `cargo test -p cordon-detections --test
//! fixtures -- exfil` runs one rule's cases, and a failure names its case. The worked
//! example of the absence shape (detections/README.md, "Absence") under
//! `tests/absence/` runs the same way, its cases named `absence::<rule>::<case>`: it
//! fires when a PoP failure is not followed by a revocation within the window, once the
//! host's clock has passed the window's end by the lateness, and never before.

use std::path::PathBuf;

use cordon_detections::EngineConfig;
use cordon_detections::fixtures::{cases, run_case};
use libtest_mimic::{Arguments, Failed, Trial};

/// Read at run time: `env!` would bake in the folder the test was built in, and a
/// target directory shared between checkouts (CI's cache) then points at another one.
fn detections_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests"))
}

/// One trial per case of every rule folder under `rules`, named `<prefix><rule>::<case>`.
fn trials_in(rules: &std::path::Path, prefix: &str, trials: &mut Vec<Trial>) {
    let dir = detections_dir();
    for rule in cordon_detections::rule::rule_dirs(rules).expect("the rules folder reads") {
        let id = format!("{prefix}{}", rule.file_name().unwrap().to_string_lossy());
        let found = cases(&rule);
        if found.is_empty() {
            trials.push(Trial::test(format!("{id}::fixtures"), || {
                Err("the rule has no fixtures: add tests/fire-*.jsonl and tests/quiet-*.jsonl".into())
            }));
        }
        for case in found {
            let name = case.file_stem().unwrap().to_string_lossy().to_string();
            let (rule, reference) = (rule.clone(), dir.join("reference"));
            trials.push(Trial::test(format!("{id}::{name}"), move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime builds");
                let reference =
                    cordon_detections::reference::load_dir(&reference).map_err(|error| error.to_string())?;
                let result = runtime.block_on(run_case(&rule, &case, &reference, &EngineConfig::default(), false));
                match result.failure {
                    None => Ok(()),
                    Some(failure) => Err(Failed::from(format!("{}: {failure}", result.file.display()))),
                }
            }));
        }
    }
}

fn main() {
    let dir = detections_dir();
    let mut trials = Vec::new();
    trials_in(&dir.join("rules"), "", &mut trials);
    trials_in(&dir.join("tests/absence"), "absence::", &mut trials);
    libtest_mimic::run(&Arguments::from_args(), trials).exit();
}
