//! The demo's Sigma rules: a copy of the rules folder with three SigmaHQ rules imported
//! into it by `cordon rules import-sigma` (curl uploads, wget into a temporary folder,
//! a netcat reverse shell), so the alert queue shows community rules running beside the
//! built-in ones. Skipped, and said so, when the Sigma folder is not beside the rules.

use std::path::{Path, PathBuf};

use cordon_detections::sigma::{self, SigmaMapping};

/// The SigmaHQ rules the demo imports (detections/sigma/sigmahq).
const DEMO_RULES: &[&str] = &[
    "proc_creation_lnx_susp_curl_fileupload.yml",
    "proc_creation_lnx_wget_download_suspicious_directory.yml",
    "proc_creation_lnx_netcat_reverse_shell.yml",
];

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Points the config at `<data_dir>/rules`: the rules plus the imported Sigma rules.
pub async fn with_sigma_rules(config: &mut crate::Config) -> anyhow::Result<()> {
    let rules = config.detections.rules_dir.clone();
    let sigmahq: PathBuf = rules
        .parent()
        .map(|detections| detections.join("sigma/sigmahq"))
        .unwrap_or_default();
    if !sigmahq.is_dir() {
        println!(
            "  (no {} beside the rules: the demo runs without Sigma rules)",
            sigmahq.display()
        );
        return Ok(());
    }
    let into = config.storage.data_dir.join("rules");
    copy_dir(&rules, &into)?;
    let files: Vec<PathBuf> = DEMO_RULES.iter().map(|file| sigmahq.join(file)).collect();
    let reference = cordon_detections::reference::load_dir(&config.detections.reference_dir)?;
    let report = sigma::import(
        &files,
        &into,
        &SigmaMapping::builtin(),
        &reference,
        &config.detections.engine_config(),
    )
    .await?;
    let names: Vec<&str> = report.imported.iter().map(|imported| imported.id.as_str()).collect();
    println!(
        "Sigma: {} SigmaHQ rules imported with `cordon rules import-sigma` into {} ({}); {} not converted",
        report.imported.len(),
        into.display(),
        names.join(", "),
        report.skipped.len()
    );
    config.detections.rules_dir = into;
    Ok(())
}
