//! `cordon rules import-sigma`: Sigma rules in, rule folders out, and a report of
//! what was converted, folded into a correlation, or not converted and why.

use std::path::PathBuf;

use cordon_detections::reference;
use cordon_detections::sigma::{self, ImportReport, SigmaMapping};

use super::ServerArgs;

#[derive(clap::Args)]
pub struct ImportSigmaArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Sigma files or folders (searched for .yml and .yaml).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Where to write the rule folders; default the server's rules folder.
    #[arg(long)]
    pub into: Option<PathBuf>,
    /// The field mapping (log sources and fields to contract columns); default the
    /// built-in one (detections/sigma/mapping.toml).
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Fail (exit 1) when any rule is not converted.
    #[arg(long)]
    pub strict: bool,
}

pub async fn run(args: ImportSigmaArgs) -> anyhow::Result<()> {
    let config = args.server.load_unchecked()?;
    let detections = &config.detections;
    let mapping = match &args.mapping {
        Some(path) => SigmaMapping::load(path)?,
        None => SigmaMapping::builtin(),
    };
    let into = args.into.unwrap_or_else(|| detections.rules_dir.clone());
    let reference = reference::load_dir(&detections.reference_dir)?;
    let report = sigma::import(&args.paths, &into, &mapping, &reference, &detections.engine_config()).await?;
    print!("{}", render(&report, &into));
    if args.strict && !report.skipped.is_empty() {
        anyhow::bail!("{} Sigma rule(s) not converted (listed above)", report.skipped.len());
    }
    Ok(())
}

/// The report as analysts read it: one line a rule, reasons and notes indented.
pub fn render(report: &ImportReport, into: &std::path::Path) -> String {
    let mut out = String::new();
    for imported in &report.imported {
        let kind = if imported.correlation { "correlation" } else { "rule" };
        out.push_str(&format!("ok    {} ({kind}, from {})\n", imported.id, imported.source));
        for note in &imported.notes {
            out.push_str(&format!("      note: {note}\n"));
        }
    }
    for (title, source, correlation) in &report.folded {
        out.push_str(&format!(
            "into  {correlation}: \"{title}\" ({source}) is used only by that correlation (generate: false)\n"
        ));
    }
    for skipped in &report.skipped {
        out.push_str(&format!(
            "skip  \"{}\" ({})\n      {}\n",
            skipped.title, skipped.source, skipped.reason
        ));
    }
    out.push_str(&format!(
        "{} converted into {}, {} folded into correlations, {} not converted\n",
        report.imported.len(),
        into.display(),
        report.folded.len(),
        report.skipped.len()
    ));
    out
}
