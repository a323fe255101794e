//! `${name}` in rule SQL: replaced by the rule's setting as an SQL literal before the
//! SQL is planned. Positions in errors are mapped back to the file as written.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::settings::{ListItem, Param};

/// One replacement, by line (1-based) and column (1-based, in characters).
#[derive(Debug, Clone)]
struct Replacement {
    line: u64,
    new_start: u64,
    new_len: u64,
    old_start: u64,
    old_len: u64,
}

/// SQL with its parameters filled in, and how to find a position in the original.
#[derive(Debug, Clone)]
pub struct Substituted {
    pub sql: String,
    replacements: Vec<Replacement>,
}

impl Substituted {
    /// The original column of `column` on `line` of the substituted text.
    pub fn original_column(&self, line: u64, column: u64) -> u64 {
        let mut shift: i64 = 0;
        for replacement in self.replacements.iter().filter(|r| r.line == line) {
            if column < replacement.new_start {
                break;
            }
            if column < replacement.new_start + replacement.new_len {
                return replacement.old_start;
            }
            shift = (replacement.old_start + replacement.old_len) as i64
                - (replacement.new_start + replacement.new_len) as i64;
        }
        (column as i64 + shift).max(1) as u64
    }
}

/// Why a parameter could not be substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownParam {
    pub name: String,
    pub line: u64,
    pub column: u64,
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// An SQL interval literal of a duration.
pub fn interval(duration: Duration) -> String {
    format!("INTERVAL '{} milliseconds'", duration.as_millis())
}

/// The SQL literal of a parameter. A list becomes its items separated by commas, for
/// `IN (${list})`; an empty list becomes NULL, which matches nothing.
pub fn literal(param: &Param) -> String {
    match param {
        Param::Int(value) => value.to_string(),
        Param::Float(value) => format!("{value:?}"),
        Param::Bool(value) => value.to_string(),
        Param::Text(text) => quote(text),
        Param::Duration { duration } => interval(*duration),
        Param::List(items) if items.is_empty() => "NULL".to_string(),
        Param::List(items) => items
            .iter()
            .map(|item| match item {
                ListItem::Int(value) => value.to_string(),
                ListItem::Text(text) => quote(text),
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Replaces every `${name}` in `sql` by its value. `--` comments and quoted strings
/// are left alone, so a `${...}` there is not a parameter.
pub fn substitute(sql: &str, values: &BTreeMap<String, String>) -> Result<Substituted, UnknownParam> {
    let mut out = String::with_capacity(sql.len());
    let mut replacements = Vec::new();
    for (index, line) in sql.split_inclusive('\n').enumerate() {
        let line_number = index as u64 + 1;
        let chars: Vec<char> = line.chars().collect();
        let (mut i, mut new_column) = (0usize, 1u64);
        let mut in_string = false;
        while i < chars.len() {
            let c = chars[i];
            if !in_string && c == '-' && chars.get(i + 1) == Some(&'-') {
                let rest: String = chars[i..].iter().collect();
                out.push_str(&rest);
                break;
            }
            if c == '\'' {
                in_string = !in_string;
            }
            if !in_string
                && c == '$'
                && chars.get(i + 1) == Some(&'{')
                && let Some(close) = chars[i + 2..].iter().position(|&c| c == '}')
            {
                let name: String = chars[i + 2..i + 2 + close].iter().collect();
                let name = name.trim();
                let Some(value) = values.get(name) else {
                    return Err(UnknownParam {
                        name: name.to_string(),
                        line: line_number,
                        column: i as u64 + 1,
                    });
                };
                let old_len = close as u64 + 3;
                let new_len = value.chars().count() as u64;
                replacements.push(Replacement {
                    line: line_number,
                    new_start: new_column,
                    new_len,
                    old_start: i as u64 + 1,
                    old_len,
                });
                out.push_str(value);
                new_column += new_len;
                i += close + 3;
                continue;
            }
            out.push(c);
            new_column += 1;
            i += 1;
        }
    }
    Ok(Substituted { sql: out, replacements })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> BTreeMap<String, String> {
        let mut values = BTreeMap::new();
        values.insert("n".to_string(), literal(&Param::Int(5)));
        values.insert(
            "tools".to_string(),
            literal(&Param::List(vec![
                ListItem::Text("curl".into()),
                ListItem::Text("it's".into()),
            ])),
        );
        values.insert(
            "w".to_string(),
            literal(&Param::Duration {
                duration: Duration::from_secs(300),
            }),
        );
        values
    }

    #[test]
    fn fills_in_literals_and_skips_strings_and_comments() {
        let sql = "SELECT '${n}' -- ${nope}\nWHERE x >= ${n} AND t IN (${tools}) AND d < ${ w }";
        let out = substitute(sql, &values()).unwrap();
        assert_eq!(
            out.sql,
            "SELECT '${n}' -- ${nope}\nWHERE x >= 5 AND t IN ('curl', 'it''s') AND d < INTERVAL '300000 milliseconds'"
        );
    }

    #[test]
    fn maps_columns_back_to_the_original() {
        let sql = "WHERE ${tools} = bad_column";
        let out = substitute(sql, &values()).unwrap();
        let bad = out.sql.find("bad_column").unwrap() as u64 + 1;
        assert_eq!(out.original_column(1, bad), sql.find("bad_column").unwrap() as u64 + 1);
        assert_eq!(out.original_column(1, 8), 7, "inside a value points at its ${{");
        assert_eq!(out.original_column(1, 1), 1);
    }

    #[test]
    fn an_unknown_name_is_reported_where_it_is() {
        let error = substitute("SELECT 1\n  WHERE ${missing}", &values()).unwrap_err();
        assert_eq!(
            error,
            UnknownParam {
                name: "missing".into(),
                line: 2,
                column: 9
            }
        );
    }
}
