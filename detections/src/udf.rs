//! Functions rules call that plain SQL lacks: matching a host name against a wildcard
//! domain, and a file path against a glob. Both are case-insensitive, since neither
//! DNS names nor the paths of the desktop systems agents run on care about case.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::SessionContext;

/// Registers every Cordon function on `context`.
pub fn register(context: &SessionContext) {
    context.register_udf(domain_match_udf());
    context.register_udf(path_match_udf());
    context.register_udf(glob_match_udf());
}

/// `glob_match(text, pattern)`: `*` matches any run of characters, `?` one.
pub fn glob_match(text: &str, pattern: &str) -> bool {
    glob(&pattern.trim().to_lowercase(), &text.to_lowercase(), false)
}

/// `domain_match(host, pattern)`: `*` matches any run of characters, so
/// `*.sharepoint.com` matches `corp.sharepoint.com` but not `sharepoint.com`, and
/// `10.*` matches an address in 10/8. A trailing dot on the host is ignored.
pub fn domain_match(host: &str, pattern: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let pattern = pattern.trim().to_ascii_lowercase();
    glob(&pattern, &host, false)
}

/// `path_match(path, pattern)`: `*` matches within one path segment, `**` across
/// segments, `?` one character; `\` counts as `/`, so one pattern covers Windows too.
pub fn path_match(path: &str, pattern: &str) -> bool {
    let path = path.replace('\\', "/").to_lowercase();
    let pattern = pattern.trim().replace('\\', "/").to_lowercase();
    glob(&pattern, &path, true)
}

/// Glob matching by dynamic programming over (pattern, text) positions.
fn glob(pattern: &str, text: &str, segments: bool) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Token {
        Char(char),
        One,
        Star,
        DoubleStar,
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                tokens.push(if segments { Token::DoubleStar } else { Token::Star });
                i += 2;
                // `**/` also matches no folder at all.
                if segments && chars.get(i) == Some(&'/') {
                    i += 1;
                    tokens.push(Token::Char('\u{0}'));
                }
                continue;
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::One),
            c => tokens.push(Token::Char(c)),
        }
        i += 1;
    }
    let text: Vec<char> = text.chars().collect();
    // reachable[j]: the tokens so far can match text[..j].
    let mut reachable = vec![false; text.len() + 1];
    reachable[0] = true;
    for token in tokens {
        let mut next = vec![false; text.len() + 1];
        match token {
            // `\0` is the optional slash after `**`: match a `/` or nothing.
            Token::Char('\u{0}') => {
                for j in 0..=text.len() {
                    if reachable[j] {
                        next[j] = true;
                        if text.get(j) == Some(&'/') {
                            next[j + 1] = true;
                        }
                    }
                }
            }
            Token::Char(c) => {
                for j in 0..text.len() {
                    next[j + 1] = reachable[j] && text[j] == c;
                }
            }
            Token::One => {
                for j in 0..text.len() {
                    next[j + 1] = reachable[j] && !(segments && text[j] == '/');
                }
            }
            Token::Star | Token::DoubleStar => {
                let crosses = token == Token::DoubleStar || !segments;
                let mut carry = false;
                for j in 0..=text.len() {
                    carry = reachable[j] || (carry && j > 0 && (crosses || text[j - 1] != '/'));
                    next[j] = carry;
                }
            }
        }
        reachable = next;
    }
    reachable[text.len()]
}

fn string_pair_udf(name: &str, matcher: fn(&str, &str) -> bool) -> ScalarUDF {
    let function = move |args: &[ColumnarValue]| -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let texts = arrow::compute::cast(&arrays[0], &DataType::Utf8)?;
        let patterns = arrow::compute::cast(&arrays[1], &DataType::Utf8)?;
        let (texts, patterns) = (texts.as_string::<i32>(), patterns.as_string::<i32>());
        let result: BooleanArray = (0..texts.len())
            .map(|row| {
                (texts.is_valid(row) && patterns.is_valid(row)).then(|| matcher(texts.value(row), patterns.value(row)))
            })
            .collect();
        let scalar = args.iter().all(|arg| matches!(arg, ColumnarValue::Scalar(_)));
        let array: ArrayRef = Arc::new(result);
        if scalar {
            Ok(ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(
                &array, 0,
            )?))
        } else {
            Ok(ColumnarValue::Array(array))
        }
    };
    create_udf(
        name,
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Boolean,
        Volatility::Immutable,
        Arc::new(function),
    )
}

pub fn domain_match_udf() -> ScalarUDF {
    string_pair_udf("domain_match", domain_match)
}

pub fn glob_match_udf() -> ScalarUDF {
    string_pair_udf("glob_match", glob_match)
}

pub fn path_match_udf() -> ScalarUDF {
    string_pair_udf("path_match", path_match)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        assert!(domain_match("corp.SharePoint.com.", "*.sharepoint.com"));
        assert!(!domain_match("sharepoint.com", "*.sharepoint.com"));
        assert!(!domain_match("evilsharepoint.com", "*.sharepoint.com"));
        assert!(domain_match("github.com", "github.com"));
        assert!(!domain_match("github.com.evil.net", "github.com"));
        assert!(domain_match("10.20.0.15", "10.*"));
        assert!(!domain_match("110.20.0.15", "10.*"));
        assert!(glob_match("CI-Helper", "ci-*"));
        assert!(!glob_match("cowork", "ci-*"));
    }

    #[test]
    fn paths() {
        assert!(path_match("/home/alice/finance/q3.xlsx", "**/finance/**"));
        assert!(path_match("C:\\Users\\Bob\\Finance\\q3.xlsx", "**/finance/**"));
        assert!(path_match("/home/alice/.aws/credentials", "**/.aws/credentials"));
        assert!(path_match(".ssh/id_ed25519", "**/.ssh/*"));
        assert!(!path_match("/home/alice/finance-notes.md", "**/finance/**"));
        assert!(!path_match("/home/alice/a/b.txt", "/home/*/b.txt"));
        assert!(path_match("/home/alice/b.txt", "/home/*/b.txt"));
        assert!(path_match("/home/alice/b.txt", "/home/alice/?.txt"));
    }

    #[tokio::test]
    async fn callable_from_sql() {
        let context = SessionContext::new();
        register(&context);
        let batches = context
            .sql("SELECT domain_match('a.corp.com', '*.corp.com') AS d, path_match('/x/.ssh/k', '**/.ssh/*') AS p")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let row = &batches[0];
        assert!(row.column(0).as_boolean().value(0));
        assert!(row.column(1).as_boolean().value(0));
    }
}
