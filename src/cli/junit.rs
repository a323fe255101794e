//! `cordon rules test --junit FILE`: the fixture results as JUnit XML, the format CI
//! systems (GitLab, Jenkins, GitHub test reporters) read: one suite per rule, one test
//! case per fixture case, the failure's message as the engine gave it. Written by
//! hand: the format is a dozen elements and attributes, less than a dependency.

use std::collections::BTreeMap;
use std::time::Duration;

use cordon_detections::fixtures::CaseResult;

/// Text safe inside an XML attribute or element.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 has no form for other control characters.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

pub fn report(results: &[CaseResult], elapsed: Duration) -> String {
    let mut by_rule: BTreeMap<&str, Vec<&CaseResult>> = BTreeMap::new();
    for result in results {
        by_rule.entry(result.rule.as_str()).or_default().push(result);
    }
    let failures = results.iter().filter(|result| result.failure.is_some()).count();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"cordon rules test\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{:.3}\">\n",
        results.len(),
        elapsed.as_secs_f64()
    );
    for (rule, cases) in by_rule {
        let failed = cases.iter().filter(|case| case.failure.is_some()).count();
        xml.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\">\n",
            escape(rule),
            cases.len()
        ));
        for case in cases {
            let attributes = format!(
                "classname=\"{}\" name=\"{}\" file=\"{}\"",
                escape(rule),
                escape(&case.case),
                escape(&case.file.display().to_string())
            );
            match &case.failure {
                None => xml.push_str(&format!("    <testcase {attributes}/>\n")),
                Some(failure) => {
                    let first_line = failure.lines().next().unwrap_or_default();
                    xml.push_str(&format!(
                        "    <testcase {attributes}>\n      <failure message=\"{}\" type=\"fixture\">{}</failure>\n    </testcase>\n",
                        escape(first_line),
                        escape(failure)
                    ));
                }
            }
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_per_rule_cases_per_fixture_and_escaped_failures() {
        let case = |rule: &str, name: &str, failure: Option<&str>| CaseResult {
            rule: rule.into(),
            case: name.into(),
            file: format!("detections/rules/{rule}/tests/{name}.jsonl").into(),
            failure: failure.map(Into::into),
            blessed: false,
        };
        let xml = report(
            &[
                case("a", "fire-x", None),
                case(
                    "a",
                    "quiet-y",
                    Some("a quiet- case raised 1 alert(s): [{\"title\":\"<b> & c\"}]\nsecond line"),
                ),
                case("b", "fire-z", None),
            ],
            Duration::from_millis(1500),
        );
        assert!(
            xml.contains("<testsuites name=\"cordon rules test\" tests=\"3\" failures=\"1\""),
            "{xml}"
        );
        assert!(
            xml.contains("<testsuite name=\"a\" tests=\"2\" failures=\"1\""),
            "{xml}"
        );
        assert!(xml.contains("<testcase classname=\"b\" name=\"fire-z\""), "{xml}");
        assert!(
            xml.contains(
                "message=\"a quiet- case raised 1 alert(s): [{&quot;title&quot;:&quot;&lt;b&gt; &amp; c&quot;}]\""
            ),
            "{xml}"
        );
        assert!(xml.contains("time=\"1.500\""), "{xml}");
    }
}
