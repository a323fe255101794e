//! What the simulated fleet touches: destinations, files, tools. The approved
//! destinations here match the defaults of `detections/reference/`.

/// Destinations that the organisation approves, with their category hint.
pub const APPROVED_DESTINATIONS: &[(&str, &str, &str)] = &[
    ("api.anthropic.com", "160.79.104.10", "approved"),
    ("corp.sharepoint.com", "13.107.136.9", "approved"),
    ("github.com", "140.82.112.3", "approved"),
    ("pypi.org", "151.101.0.223", "approved"),
    ("files.corp.example.com", "10.20.0.15", "approved"),
    ("slack.com", "34.236.71.47", "approved"),
];

/// Harmless destinations outside the approved list (software updates, docs sites):
/// benign hosts reach them too, so a rule cannot just flag every unapproved flow.
pub const UNAPPROVED_HARMLESS: &[(&str, &str, &str)] = &[
    ("updates.vendor-example.com", "198.51.100.20", "unknown"),
    ("docs.rs", "18.65.3.2", "unknown"),
];

/// Where attacks send data.
pub const EXFIL_DESTINATIONS: &[(&str, &str, &str)] = &[
    ("paste.example.net", "203.0.113.7", "paste_site"),
    ("transfer.example.org", "203.0.113.45", "unknown"),
    ("drop.example.io", "192.0.2.80", "cloud_storage"),
];

pub const INTERNAL_DOCS: &[&str] = &[
    "Documents/projects/roadmap.md",
    "Documents/projects/design-notes.md",
    "Documents/meetings/weekly-sync.docx",
    "Documents/onboarding/handbook.pdf",
    "src/app/main.py",
    "src/app/README.md",
    "src/web/index.ts",
    "Downloads/report-template.xlsx",
];

/// Confidential documents a benign user opens now and then (not under sensitive paths).
pub const CONFIDENTIAL_DOCS: &[&str] = &["Documents/hr/team-salaries.xlsx", "Documents/legal/contract-draft.docx"];

/// Documents an attacker goes after: restricted, under sensitive paths.
pub const SENSITIVE_DOCS: &[&str] = &[
    "finance/q3-forecast.xlsx",
    "finance/payroll-2026.csv",
    "finance/board-deck.pptx",
    "finance/customer-contracts.zip",
    ".aws/credentials",
    ".ssh/id_ed25519",
    "finance/m-and-a/target-list.xlsx",
    "finance/bank-accounts.csv",
];

/// Tools agents run in the normal course of work.
pub const AGENT_TOOLS: &[(&str, &str, &str)] = &[
    ("git", "/usr/bin/git", "git status"),
    ("python3", "/usr/bin/python3", "python3 -m pytest -q"),
    ("node", "/usr/bin/node", "node scripts/build.js"),
    ("rg", "/usr/bin/rg", "rg TODO src"),
    ("ls", "/usr/bin/ls", "ls -la"),
];
