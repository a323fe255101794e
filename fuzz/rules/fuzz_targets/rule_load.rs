//! A rule as a detection engineer writes it: `rule.toml`, then `input.sql` and
//! `match.sql`, separated in the input by a line `---`. Loading parses the settings,
//! substitutes `${param}`s and guards each stage; none of it may panic, and a position
//! mapped back to the written SQL must lie inside it.
#![no_main]

use std::path::Path;
use std::time::Duration;

use cordon_detections::guard;
use cordon_detections::params;
use cordon_detections::rule::param_values;
use cordon_detections::settings::RuleSettings;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, "\n---\n");
    let toml = parts.next().unwrap_or_default();
    let Ok(settings) = RuleSettings::parse(toml, Path::new("rule.toml")) else {
        return;
    };
    let values = param_values(&settings, Duration::from_secs(60));
    for written in parts {
        let Ok(substituted) = params::substitute(written, &values) else {
            continue;
        };
        if let Err(refusal) = guard::single_query(&substituted.sql)
            && let (Some(line), Some(column)) = (refusal.line, refusal.column)
        {
            let original = substituted.original_column(line, column);
            let written_line = written.split_inclusive('\n').nth(line as usize - 1);
            if let Some(written_line) = written_line {
                assert!(
                    original as usize <= written_line.chars().count() + 1,
                    "column {original} is past the end of line {line} as written"
                );
            }
        }
    }
});
