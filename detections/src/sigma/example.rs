//! Example values that satisfy Sigma detection items, for the fixtures an imported
//! rule is tested with: built from the rule's own values (`|contains: ' --form'` gives a
//! command line containing ` --form`, `|re` a string its regex matches).

use std::collections::BTreeMap;

use base64::Engine;
use regex_syntax::hir::{Class, Hir, HirKind};
use rsigma_parser::{DetectionItem, Modifier, SigmaValue, SpecialChar, StringPart};

use super::item::Match;

/// What one field of the example must be.
#[derive(Debug, Default, Clone)]
struct FieldDraft {
    exact: Option<String>,
    number: Option<i64>,
    starts: Option<String>,
    ends: Option<String>,
    contains: Vec<String>,
    absent: bool,
}

/// A Sigma-side event (Sigma's field names) built up from the items it must satisfy.
#[derive(Debug, Default, Clone)]
pub struct EventDraft {
    fields: BTreeMap<String, FieldDraft>,
}

impl EventDraft {
    /// Makes the event satisfy `item`.
    pub fn require(&mut self, item: &DetectionItem) -> Result<(), String> {
        let field = item.field.name.as_deref().ok_or("keyword detection")?;
        let modifiers = &item.field.modifiers;
        let has = |modifier: Modifier| modifiers.contains(&modifier);
        let draft = self.fields.entry(field.to_string()).or_default();
        if has(Modifier::Exists) {
            match item.values.first() {
                Some(SigmaValue::Bool(false)) => draft.absent = true,
                _ => draft.exact = Some(draft.exact.take().unwrap_or_else(|| "present".into())),
            }
            return Ok(());
        }
        let values: Vec<&SigmaValue> = if has(Modifier::All) {
            item.values.iter().collect()
        } else {
            item.values.first().into_iter().collect()
        };
        for value in values {
            match value {
                SigmaValue::Null => draft.absent = true,
                SigmaValue::Integer(number) => {
                    draft.number = Some(if has(Modifier::Gt) || has(Modifier::Neq) {
                        number + 1
                    } else if has(Modifier::Lt) {
                        number - 1
                    } else {
                        *number
                    })
                }
                SigmaValue::Float(number) => draft.number = Some(number.ceil() as i64 + i64::from(has(Modifier::Gt))),
                SigmaValue::Bool(flag) => draft.exact = Some(flag.to_string()),
                SigmaValue::String(text) => {
                    if has(Modifier::Re) {
                        let mut flags = String::new();
                        if has(Modifier::IgnoreCase) {
                            flags.push('i');
                        }
                        let pattern = if flags.is_empty() {
                            text.original.clone()
                        } else {
                            format!("(?{flags}){}", text.original)
                        };
                        let hir = regex_syntax::Parser::new()
                            .parse(&pattern)
                            .map_err(|error| error.to_string())?;
                        let mut example = String::new();
                        regex_example(&hir, &mut example);
                        draft.contains.push(example);
                        continue;
                    }
                    if has(Modifier::Cidr) {
                        draft.exact = Some(first_host(text.original.trim())?);
                        continue;
                    }
                    let plain: String = text
                        .parts
                        .iter()
                        .map(|part| match part {
                            StringPart::Plain(text) => text.as_str(),
                            StringPart::Special(SpecialChar::WildcardMulti) => "",
                            StringPart::Special(SpecialChar::WildcardSingle) => "x",
                        })
                        .collect();
                    if has(Modifier::Neq) {
                        draft.exact = Some(format!("{plain}-other"));
                        continue;
                    }
                    let plain = if has(Modifier::Base64) || has(Modifier::Base64Offset) {
                        let bytes: Vec<u8> = if has(Modifier::Wide) {
                            plain.encode_utf16().flat_map(u16::to_le_bytes).collect()
                        } else {
                            plain.into_bytes()
                        };
                        base64::engine::general_purpose::STANDARD.encode(bytes)
                    } else {
                        plain
                    };
                    match Match::of(modifiers) {
                        Match::Exact => draft.exact = Some(plain),
                        Match::Contains => draft.contains.push(plain),
                        Match::StartsWith => draft.starts = Some(plain),
                        Match::EndsWith => draft.ends = Some(plain),
                    }
                }
            }
        }
        Ok(())
    }

    /// The event, Sigma field -> value; fields a condition wants absent are left out.
    pub fn build(&self) -> BTreeMap<String, serde_json::Value> {
        self.fields
            .iter()
            .filter(|(_, draft)| !draft.absent || draft.exact.is_some() || !draft.contains.is_empty())
            .map(|(field, draft)| {
                let value = if let Some(number) = draft.number {
                    serde_json::Value::from(number)
                } else if let Some(exact) = &draft.exact {
                    serde_json::Value::from(exact.clone())
                } else {
                    let mut text = draft.starts.clone().unwrap_or_default();
                    for part in &draft.contains {
                        if !text.is_empty() {
                            text.push(' ');
                        }
                        text.push_str(part);
                    }
                    if let Some(ends) = &draft.ends {
                        if !text.is_empty() {
                            text.push(' ');
                        }
                        text.push_str(ends);
                    }
                    serde_json::Value::from(text)
                };
                (field.clone(), value)
            })
            .collect()
    }

    /// A value of `field` that still satisfies the rule and differs for each `k` (for
    /// counting distinct values); None when the rule fixes the field to one value.
    pub fn vary(&self, field: &str, k: usize) -> Option<serde_json::Value> {
        let Some(draft) = self.fields.get(field) else {
            return Some(format!("value-{k}").into());
        };
        if draft.exact.is_some() || draft.number.is_some() {
            return None;
        }
        let built = self.build().get(field)?.as_str()?.to_string();
        // A prefix keeps `endswith` and `contains`; after a `startswith` value, a suffix.
        Some(
            if draft.starts.is_some() && draft.ends.is_none() {
                format!("{built}-{k}")
            } else if draft.starts.is_none() {
                format!("v{k}-{built}")
            } else {
                return None;
            }
            .into(),
        )
    }

    /// The same fields with values none of the rule's strings or numbers are likely to
    /// match: the quiet case's event.
    pub fn benign(&self) -> BTreeMap<String, serde_json::Value> {
        self.build()
            .into_iter()
            .map(|(field, value)| {
                let benign = match value {
                    serde_json::Value::Number(_) => serde_json::Value::from(1),
                    _ => serde_json::Value::from("benign"),
                };
                (field, benign)
            })
            .collect()
    }
}

/// A string the regex matches (the first branch, the fewest repetitions, a readable
/// character of each class).
fn regex_example(hir: &Hir, out: &mut String) {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(literal) => out.push_str(&String::from_utf8_lossy(&literal.0)),
        HirKind::Class(Class::Unicode(class)) => {
            let preferred = [' ', 'a', 'A', '0', '-', '.'];
            let pick = preferred
                .iter()
                .find(|c| {
                    class
                        .ranges()
                        .iter()
                        .any(|range| range.start() <= **c && **c <= range.end())
                })
                .copied()
                .or_else(|| class.ranges().first().map(|range| range.start()));
            out.extend(pick);
        }
        HirKind::Class(Class::Bytes(class)) => {
            out.extend(class.ranges().first().map(|range| range.start() as char));
        }
        HirKind::Repetition(repetition) => {
            for _ in 0..repetition
                .min
                .max(u32::from(repetition.max.is_none() && repetition.min == 0))
            {
                regex_example(&repetition.sub, out);
            }
        }
        HirKind::Capture(capture) => regex_example(&capture.sub, out),
        HirKind::Concat(parts) => parts.iter().for_each(|part| regex_example(part, out)),
        HirKind::Alternation(parts) => {
            if let Some(first) = parts.first() {
                regex_example(first, out);
            }
        }
    }
}

/// The first host address of a CIDR block (the network address itself for /32).
fn first_host(cidr: &str) -> Result<String, String> {
    let (address, prefix) = cidr.split_once('/').ok_or("not a CIDR block")?;
    let prefix: u32 = prefix.parse().map_err(|_| "not a CIDR prefix")?;
    match address.parse::<std::net::IpAddr>().map_err(|error| error.to_string())? {
        std::net::IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let host = if prefix >= 31 {
                bits
            } else {
                (bits & (u32::MAX << (32 - prefix))) + 1
            };
            Ok(std::net::Ipv4Addr::from(host).to_string())
        }
        std::net::IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let host = if prefix >= 127 {
                bits
            } else {
                (bits & (u128::MAX << (128 - prefix))) + 1
            };
            Ok(std::net::Ipv6Addr::from(host).to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(pattern: &str) -> String {
        let mut out = String::new();
        regex_example(&regex_syntax::Parser::new().parse(pattern).unwrap(), &mut out);
        out
    }

    #[test]
    fn regex_examples_match_their_regex() {
        for pattern in [
            r"\s-[FTd]\s",
            r"(?i)invoke-(webrequest|restmethod)\s+http",
            r"^[a-z]{3,5}\.exe$",
            r"\d+\.\d+\.\d+\.\d+:\d{2,5}",
            r"(curl|wget)\s.*\|\s*(ba)?sh",
        ] {
            let text = example(pattern);
            assert!(
                regex::Regex::new(pattern).unwrap().is_match(&text),
                "{pattern} -> {text:?}"
            );
        }
    }

    #[test]
    fn cidr_first_hosts() {
        assert_eq!(first_host("10.0.0.0/8").unwrap(), "10.0.0.1");
        assert_eq!(first_host("192.168.1.7/32").unwrap(), "192.168.1.7");
        assert_eq!(first_host("fc00::/7").unwrap(), "fc00::1");
    }
}
