//! One Sigma detection item (`Field|modifiers: values`) as an SQL predicate over the
//! mapped column, with Sigma's matching: strings case-insensitive unless `cased`,
//! wildcards `*` and `?`, a list of values any-of unless `all`, a missing field no match.

use std::collections::BTreeSet;

use base64::Engine;
use cordon_schemas::fields::FieldType;
use rsigma_parser::{DetectionItem, Modifier, SigmaString, SigmaValue, SpecialChar, StringPart};

use super::boolean::Bool;
use super::mapping::{Resolved, SigmaMapping};
use crate::destination::DestinationPattern;

/// How a string value is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    Exact,
    Contains,
    StartsWith,
    EndsWith,
}

impl Match {
    pub fn of(modifiers: &[Modifier]) -> Match {
        if modifiers.contains(&Modifier::Contains) {
            Match::Contains
        } else if modifiers.contains(&Modifier::StartsWith) {
            Match::StartsWith
        } else if modifiers.contains(&Modifier::EndsWith) {
            Match::EndsWith
        } else {
            Match::Exact
        }
    }
}

/// What converting a rule's items learned: the columns they read and what an analyst
/// should know about the conversion.
#[derive(Debug, Default)]
pub struct ItemContext {
    pub columns: BTreeSet<String>,
    pub notes: BTreeSet<String>,
}

const UNSUPPORTED: &[(Modifier, &str)] = &[
    (Modifier::Expand, "expand (placeholders need a pipeline's values)"),
    (Modifier::FieldRef, "fieldref (comparing two fields)"),
    (Modifier::Minute, "timestamp parts"),
    (Modifier::Hour, "timestamp parts"),
    (Modifier::Day, "timestamp parts"),
    (Modifier::Week, "timestamp parts"),
    (Modifier::Month, "timestamp parts"),
    (Modifier::Year, "timestamp parts"),
];

/// The item's predicate in `logsource`'s events.
pub fn item_sql(
    item: &DetectionItem,
    mapping: &SigmaMapping,
    logsource: &str,
    context: &mut ItemContext,
) -> Result<Bool, String> {
    let Some(field) = item.field.name.as_deref() else {
        return Err("keyword detections search every field of an event; Cordon's rules match named columns".into());
    };
    let modifiers = &item.field.modifiers;
    for (modifier, what) in UNSUPPORTED {
        if modifiers.contains(modifier) {
            return Err(format!(
                "`{field}` uses the {what} modifier, which has no SQL form here"
            ));
        }
    }
    let resolved = mapping.resolve(logsource, field).ok_or_else(|| {
        format!("field `{field}` has no column in the mapping for `{logsource}`: add it to mapping.toml")
    })?;
    let join = |parts: Vec<Bool>| {
        if modifiers.contains(&Modifier::All) {
            Bool::and(parts)
        } else {
            Bool::or(parts)
        }
    };
    if modifiers.contains(&Modifier::Exists) {
        let wanted = matches!(item.values.first(), Some(SigmaValue::Bool(true)) | None);
        return Ok(match &resolved {
            Resolved::Column { column, .. } => {
                context.columns.insert(column.clone());
                Bool::sql(format!("{column} IS {}NULL", if wanted { "NOT " } else { "" }))
            }
            Resolved::Constant(_) => Bool::Const(wanted),
            Resolved::Absent(_) => Bool::Const(!wanted),
        });
    }
    match resolved {
        Resolved::Absent(why) => {
            context.notes.insert(format!(
                "`{field}` is never present ({why}): a condition on it does not match"
            ));
            Ok(join(
                item.values
                    .iter()
                    .map(|value| Bool::Const(matches!(value, SigmaValue::Null)))
                    .collect(),
            ))
        }
        Resolved::Constant(constant) => {
            let parts = item
                .values
                .iter()
                .map(|value| constant_matches(&constant, value, Match::of(modifiers)).map(Bool::Const))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|why| format!("`{field}`: {why}"))?;
            Ok(join(parts))
        }
        Resolved::Column { column, ty, basename } => {
            context.columns.insert(column.clone());
            let mut parts = Vec::new();
            for value in &item.values {
                let part = match ty {
                    FieldType::Int => int_predicate(&column, value, modifiers),
                    FieldType::Str => str_predicate(&column, value, modifiers, basename, field, context),
                }
                .map_err(|why| format!("`{field}`: {why}"))?;
                parts.push(part);
            }
            Ok(join(parts))
        }
    }
}

fn constant_matches(constant: &str, value: &SigmaValue, how: Match) -> Result<bool, String> {
    let wanted = match value {
        SigmaValue::String(text) => text
            .as_plain()
            .ok_or("a wildcard against a constant field is not supported")?,
        SigmaValue::Bool(value) => value.to_string(),
        SigmaValue::Integer(value) => value.to_string(),
        SigmaValue::Float(value) => value.to_string(),
        SigmaValue::Null => return Ok(false),
    };
    let (constant, wanted) = (constant.to_lowercase(), wanted.to_lowercase());
    Ok(match how {
        Match::Exact => constant == wanted,
        Match::Contains => constant.contains(&wanted),
        Match::StartsWith => constant.starts_with(&wanted),
        Match::EndsWith => constant.ends_with(&wanted),
    })
}

fn int_predicate(column: &str, value: &SigmaValue, modifiers: &[Modifier]) -> Result<Bool, String> {
    let number: i64 = match value {
        SigmaValue::Integer(number) => *number,
        SigmaValue::Null => return Ok(Bool::sql(format!("{column} IS NULL"))),
        SigmaValue::String(text) => text
            .as_plain()
            .and_then(|plain| plain.trim().parse().ok())
            .ok_or_else(|| format!("compares the number column {column} with the text {:?}", text.original))?,
        other => return Err(format!("compares the number column {column} with {other}")),
    };
    let operator = [
        (Modifier::Gt, ">"),
        (Modifier::Gte, ">="),
        (Modifier::Lt, "<"),
        (Modifier::Lte, "<="),
        (Modifier::Neq, "<>"),
    ]
    .iter()
    .find(|(modifier, _)| modifiers.contains(modifier))
    .map_or("=", |(_, operator)| operator);
    if Match::of(modifiers) != Match::Exact || modifiers.contains(&Modifier::Re) {
        return Err(format!("a string match on the number column {column}"));
    }
    Ok(Bool::sql(format!("{column} {operator} {number}")))
}

fn str_predicate(
    column: &str,
    value: &SigmaValue,
    modifiers: &[Modifier],
    basename: bool,
    field: &str,
    context: &mut ItemContext,
) -> Result<Bool, String> {
    let has = |modifier: Modifier| modifiers.contains(&modifier);
    let text = match value {
        SigmaValue::Null => return Ok(Bool::sql(format!("{column} IS NULL"))),
        SigmaValue::String(text) => text.clone(),
        SigmaValue::Integer(number) => SigmaString::from_raw(&number.to_string()),
        SigmaValue::Float(number) => SigmaString::from_raw(&number.to_string()),
        SigmaValue::Bool(flag) => SigmaString::from_raw(&flag.to_string()),
    };
    if [Modifier::Gt, Modifier::Gte, Modifier::Lt, Modifier::Lte]
        .iter()
        .any(|m| has(*m))
    {
        return Err("a numeric comparison on a text column".into());
    }
    if has(Modifier::Re) {
        let mut flags = String::new();
        for (modifier, flag) in [
            (Modifier::IgnoreCase, 'i'),
            (Modifier::Multiline, 'm'),
            (Modifier::DotAll, 's'),
        ] {
            if has(modifier) {
                flags.push(flag);
            }
        }
        let pattern = if flags.is_empty() {
            text.original.clone()
        } else {
            format!("(?{flags}){}", text.original)
        };
        regex_syntax::Parser::new().parse(&pattern).map_err(|error| {
            format!("its regex does not compile in Cordon's regex engine (no look-around or back-references): {error}")
        })?;
        return Ok(Bool::sql(format!("regexp_like({column}, {})", literal(&pattern))));
    }
    if has(Modifier::Cidr) {
        let cidr = text.original.trim();
        if !cidr.contains('/') || matches!(DestinationPattern::new(cidr), DestinationPattern::Never) {
            return Err(format!("`{cidr}` is not a CIDR network (10.0.0.0/8, fc00::/7)"));
        }
        return Ok(Bool::sql(format!("cidr_match({column}, {})", literal(cidr))));
    }
    let negate = has(Modifier::Neq);
    if has(Modifier::Base64) || has(Modifier::Base64Offset) {
        let plain = text
            .as_plain()
            .ok_or("wildcards inside a base64-encoded value cannot be encoded")?;
        let bytes = encode_text(&plain, modifiers)?;
        let variants = if has(Modifier::Base64Offset) {
            base64_offsets(&bytes)
        } else {
            vec![base64::engine::general_purpose::STANDARD.encode(&bytes)]
        };
        let how = Match::of(modifiers);
        // Base64 is case-sensitive: LIKE, not ILIKE.
        let parts = variants
            .iter()
            .map(|variant| Bool::sql(like(column, &SigmaString::from_raw(variant), how, true, negate)))
            .collect::<Vec<_>>();
        return Ok(Bool::or(parts));
    }
    if has(Modifier::Wide) || has(Modifier::Utf16) || has(Modifier::Utf16be) {
        return Err("a UTF-16 modifier without base64 has no meaning for text columns".into());
    }
    let mut how = Match::of(modifiers);
    let mut text = text;
    if basename {
        (text, how) = basename_value(&text, how).map_err(|why| format!("{why} (the column has only the file name)"))?;
        if how == Match::Exact {
            context.notes.insert(format!(
                "`{field}` is matched on its file name only: the contract has no full path for it"
            ));
        }
    }
    let variants = if has(Modifier::WindAsh) {
        windash_variants(&text)
    } else {
        vec![text]
    };
    let cased = has(Modifier::Cased);
    Ok(Bool::or(
        variants
            .iter()
            .map(|variant| Bool::sql(like(column, variant, how, cased, negate)))
            .collect::<Vec<_>>(),
    ))
}

/// `column ILIKE '%value%'` (or `lower(column) = 'value'` for a plain exact match).
fn like(column: &str, value: &SigmaString, how: Match, cased: bool, negate: bool) -> String {
    if how == Match::Exact
        && let Some(plain) = value.as_plain()
    {
        let (operator, side, text) = match (cased, negate) {
            (true, false) => ("=", column.to_string(), plain),
            (true, true) => ("<>", column.to_string(), plain),
            (false, false) => ("=", format!("lower({column})"), plain.to_lowercase()),
            (false, true) => ("<>", format!("lower({column})"), plain.to_lowercase()),
        };
        return format!("{side} {operator} {}", literal(&text));
    }
    let mut pattern = String::new();
    if matches!(how, Match::Contains | Match::EndsWith) {
        pattern.push('%');
    }
    for part in &value.parts {
        match part {
            StringPart::Plain(text) => {
                for c in text.chars() {
                    if matches!(c, '%' | '_' | '\\') {
                        pattern.push('\\');
                    }
                    pattern.push(c);
                }
            }
            StringPart::Special(SpecialChar::WildcardMulti) => pattern.push('%'),
            StringPart::Special(SpecialChar::WildcardSingle) => pattern.push('_'),
        }
    }
    if matches!(how, Match::Contains | Match::StartsWith) {
        pattern.push('%');
    }
    let operator = match (cased, negate) {
        (true, false) => "LIKE",
        (true, true) => "NOT LIKE",
        (false, false) => "ILIKE",
        (false, true) => "NOT ILIKE",
    };
    format!("{column} {operator} {}", literal(&pattern))
}

/// An SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The bytes a base64 modifier encodes: UTF-16 when `wide`/`utf16*` come first.
fn encode_text(plain: &str, modifiers: &[Modifier]) -> Result<Vec<u8>, String> {
    Ok(if modifiers.contains(&Modifier::Wide) {
        plain.encode_utf16().flat_map(u16::to_le_bytes).collect()
    } else if modifiers.contains(&Modifier::Utf16be) {
        plain.encode_utf16().flat_map(u16::to_be_bytes).collect()
    } else if modifiers.contains(&Modifier::Utf16) {
        [0xFF, 0xFE]
            .into_iter()
            .chain(plain.encode_utf16().flat_map(u16::to_le_bytes))
            .collect()
    } else {
        plain.as_bytes().to_vec()
    })
}

/// The three encodings of `bytes` as they appear inside a longer base64 text, whatever
/// the bytes before them (the Sigma `base64offset` modifier): the characters that
/// depend on the unknown neighbours are cut off.
pub fn base64_offsets(bytes: &[u8]) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    const END: [usize; 3] = [0, 3, 2];
    (0..3)
        .map(|shift| {
            let mut padded = vec![b' '; shift];
            padded.extend_from_slice(bytes);
            let encoded = base64::engine::general_purpose::STANDARD.encode(&padded);
            let end = encoded.len() - END[(bytes.len() + shift) % 3];
            encoded[START[shift]..end].to_string()
        })
        .collect()
}

/// Sigma's `windash`: a `-` or `/` starting an option also matches `/`, `-` and the
/// dashes Windows command lines accept (en dash, em dash, horizontal bar).
pub fn windash_variants(text: &SigmaString) -> Vec<SigmaString> {
    const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];
    let original = &text.original;
    let chars: Vec<char> = original.chars().collect();
    let positions: Vec<usize> = (0..chars.len())
        .filter(|&i| {
            DASHES[..2].contains(&chars[i])
                && (i == 0 || !chars[i - 1].is_alphanumeric())
                && chars.get(i + 1).is_some_and(|next| next.is_alphanumeric())
        })
        .take(3)
        .collect();
    let mut variants = vec![chars.clone()];
    for position in positions {
        variants = variants
            .into_iter()
            .flat_map(|variant| {
                DASHES.iter().map(move |dash| {
                    let mut next = variant.clone();
                    next[position] = *dash;
                    next
                })
            })
            .collect();
    }
    variants
        .into_iter()
        .map(|chars| SigmaString::new(&chars.into_iter().collect::<String>()))
        .collect()
}

/// A path value for a column that holds only the file name: `endswith '\cmd.exe'` is
/// the name `cmd.exe`; a value whose directory part cannot be dropped is refused.
fn basename_value(text: &SigmaString, how: Match) -> Result<(SigmaString, Match), String> {
    let original = &text.original;
    let Some(cut) = original.rfind(['\\', '/']) else {
        return Ok((text.clone(), how));
    };
    let name = &original[cut + 1..];
    let directory_fixed = !original[..cut].contains(['*', '?']) || how == Match::EndsWith;
    match how {
        Match::EndsWith | Match::Exact if directory_fixed && !name.is_empty() => {
            Ok((SigmaString::new(name), Match::Exact))
        }
        _ => Err(format!("`{original}` needs a directory to match")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_offsets_are_the_three_known_shapes() {
        // pySigma's documented example: base64offset of "/bin/bash".
        let variants = base64_offsets(b"/bin/bash");
        assert_eq!(variants, vec!["L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"]);
        let embedded = base64::engine::general_purpose::STANDARD.encode(b"xy/bin/bash -c id");
        assert!(
            variants.iter().any(|variant| embedded.contains(variant.as_str())),
            "{embedded}"
        );
    }

    #[test]
    fn windash_expands_each_option_dash() {
        let variants = windash_variants(&SigmaString::new(" -urlcache "));
        assert_eq!(variants.len(), 5);
        assert!(variants.iter().any(|v| v.original == " /urlcache "));
        assert!(variants.iter().any(|v| v.original == " \u{2013}urlcache "));
        assert_eq!(windash_variants(&SigmaString::new("a-b")).len(), 1);
    }

    #[test]
    fn like_patterns_escape_and_map_wildcards() {
        let value = SigmaString::new("\\curl*.exe_%");
        assert_eq!(
            like("c", &value, Match::EndsWith, false, false),
            r"c ILIKE '%\\curl%.exe\_\%'"
        );
        assert_eq!(
            like("c", &SigmaString::new("O'Neil"), Match::Exact, false, false),
            "lower(c) = 'o''neil'"
        );
    }

    #[test]
    fn basename_keeps_only_what_a_name_can_match() {
        let (name, how) = basename_value(&SigmaString::new("\\powershell.exe"), Match::EndsWith).unwrap();
        assert_eq!((name.original.as_str(), how), ("powershell.exe", Match::Exact));
        assert!(basename_value(&SigmaString::new("\\Temp\\"), Match::Contains).is_err());
        let (same, how) = basename_value(&SigmaString::new("cmd.exe"), Match::Contains).unwrap();
        assert_eq!((same.original.as_str(), how), ("cmd.exe", Match::Contains));
    }
}
