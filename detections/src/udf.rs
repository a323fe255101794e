//! Functions rules call that plain SQL lacks: matching a host name against a wildcard
//! domain, and a file path against a glob. Both are case-insensitive, since neither
//! DNS names nor the paths of the desktop systems agents run on care about case.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::SessionContext;

use crate::destination::DestinationPattern;

/// Registers every Cordon function on `context`.
pub fn register(context: &SessionContext) {
    context.register_udf(domain_match_udf());
    context.register_udf(path_match_udf());
    context.register_udf(glob_match_udf());
    context.register_udf(crate::program::program_name_udf());
    context.register_udf(crate::program::command_word_udf());
}

/// `domain_match(destination, pattern)`: a host-name pattern (`*` any run of
/// characters: `*.sharepoint.com` matches `corp.sharepoint.com`, not
/// `sharepoint.com`; a trailing dot is ignored) matches only names; an address pattern
/// (`10.0.0.0/8`, `10.*`, `::1`) matches only IP addresses (`destination.rs`).
pub fn domain_match(host: &str, pattern: &str) -> bool {
    DestinationPattern::new(pattern).matches(host, &mut Vec::new())
}

/// `path_match(path, pattern)`: `*` matches within one path segment, `**` across
/// segments, `?` one character; `\` counts as `/`, so one pattern covers Windows too.
pub fn path_match(path: &str, pattern: &str) -> bool {
    Glob::new(pattern, true).matches(path, &mut Vec::new())
}

/// `glob_match(text, pattern)`: `*` matches any run of characters, `?` one.
pub fn glob_match(text: &str, pattern: &str) -> bool {
    Glob::new(pattern, false).matches(text, &mut Vec::new())
}

#[derive(Clone, Copy, PartialEq)]
enum Token {
    Byte(u8),
    /// `**/`: no folder, or any run of whole folders.
    AnyFolders,
    One,
    Star,
    DoubleStar,
}

/// A compiled glob. Matching is over bytes, ASCII case folded (`\` read as `/` for
/// paths); rows are matched against one compiled pattern, so the work per row is the
/// dynamic programme alone.
pub struct Glob {
    tokens: Vec<Token>,
    segments: bool,
    shape: Shape,
}

/// The common pattern shapes, matched without the dynamic programme.
enum Shape {
    Exact(Vec<u8>),
    /// `*.example.com`
    Suffix(Vec<u8>),
    /// `10.*`
    Prefix(Vec<u8>),
    /// `**/.kube/config`: the path or any folder's entry of that name.
    AnyFolder(Vec<u8>),
    /// `**/finance/**`: under a folder of that name, anywhere.
    UnderFolder(Vec<u8>),
    General,
}

fn literal(tokens: &[Token]) -> Option<Vec<u8>> {
    tokens
        .iter()
        .map(|token| match token {
            Token::Byte(byte) => Some(*byte),
            _ => None,
        })
        .collect()
}

fn shape_of(tokens: &[Token], segments: bool) -> Shape {
    use Token::*;
    if let Some(exact) = literal(tokens) {
        return Shape::Exact(exact);
    }
    match tokens {
        [Star, rest @ ..] if !segments => literal(rest).map_or(Shape::General, Shape::Suffix),
        [AnyFolders, rest @ ..] if segments => match rest {
            [middle @ .., Byte(b'/'), DoubleStar] => literal(middle).map_or(Shape::General, Shape::UnderFolder),
            _ => literal(rest).map_or(Shape::General, Shape::AnyFolder),
        },
        [rest @ .., Star] if !segments => literal(rest).map_or(Shape::General, Shape::Prefix),
        _ => Shape::General,
    }
}

fn fold(byte: u8, segments: bool) -> u8 {
    if segments && byte == b'\\' {
        b'/'
    } else {
        byte.to_ascii_lowercase()
    }
}

impl Glob {
    pub fn new(pattern: &str, segments: bool) -> Glob {
        let bytes: Vec<u8> = pattern.trim().bytes().map(|byte| fold(byte, segments)).collect();
        let mut tokens = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'*' if bytes.get(i + 1) == Some(&b'*') => {
                    if segments && bytes.get(i + 2) == Some(&b'/') {
                        tokens.push(Token::AnyFolders);
                        i += 3;
                    } else {
                        tokens.push(if segments { Token::DoubleStar } else { Token::Star });
                        i += 2;
                    }
                    continue;
                }
                b'*' => tokens.push(Token::Star),
                b'?' => tokens.push(Token::One),
                byte => tokens.push(Token::Byte(byte)),
            }
            i += 1;
        }
        let shape = shape_of(&tokens, segments);
        Glob {
            tokens,
            segments,
            shape,
        }
    }

    fn quick(&self, text: &[u8]) -> Option<bool> {
        let folded = |bytes: &[u8], literal: &[u8]| {
            bytes.len() == literal.len()
                && bytes
                    .iter()
                    .zip(literal)
                    .all(|(&byte, &want)| fold(byte, self.segments) == want)
        };
        let ends_with =
            |literal: &[u8]| text.len() >= literal.len() && folded(&text[text.len() - literal.len()..], literal);
        Some(match &self.shape {
            Shape::Exact(literal) => folded(text, literal),
            Shape::Suffix(literal) => ends_with(literal),
            Shape::Prefix(literal) => text.len() >= literal.len() && folded(&text[..literal.len()], literal),
            Shape::AnyFolder(literal) => {
                folded(text, literal)
                    || (ends_with(literal) && fold(text[text.len() - literal.len() - 1], self.segments) == b'/')
            }
            Shape::UnderFolder(literal) => {
                let n = literal.len();
                // At the start (`finance/...`) or after a slash (`.../finance/...`).
                (text.len() > n && folded(&text[..n], literal) && fold(text[n], true) == b'/')
                    || (1..text.len().saturating_sub(n + 1)).any(|start| {
                        fold(text[start - 1], true) == b'/'
                            && folded(&text[start..start + n], literal)
                            && fold(text[start + n], true) == b'/'
                    })
            }
            Shape::General => return None,
        })
    }

    /// `scratch` is reused across calls to avoid allocating per row.
    pub fn matches(&self, text: &str, scratch: &mut Vec<bool>) -> bool {
        let text = text.as_bytes();
        if let Some(quick) = self.quick(text) {
            return quick;
        }
        let n = text.len();
        let segments = self.segments;
        let at = |j: usize| fold(text[j], segments);
        scratch.clear();
        scratch.resize(2 * (n + 1), false);
        let (mut reachable, mut next) = scratch.split_at_mut(n + 1);
        reachable[0] = true;
        for token in &self.tokens {
            next.iter_mut().for_each(|slot| *slot = false);
            match *token {
                Token::AnyFolders => {
                    // Empty, or text[i..j] for a reachable i < j with text[j - 1] a slash.
                    let mut seen = false;
                    for j in 0..=n {
                        next[j] = reachable[j] || (seen && j > 0 && at(j - 1) == b'/');
                        seen |= reachable[j];
                    }
                }
                Token::Byte(byte) => {
                    for j in 0..n {
                        next[j + 1] = reachable[j] && at(j) == byte;
                    }
                }
                Token::One => {
                    for j in 0..n {
                        next[j + 1] = reachable[j] && !(segments && at(j) == b'/');
                    }
                }
                Token::Star | Token::DoubleStar => {
                    let crosses = *token == Token::DoubleStar || !segments;
                    let mut carry = false;
                    for j in 0..=n {
                        carry = reachable[j] || (carry && j > 0 && (crosses || at(j - 1) != b'/'));
                        next[j] = carry;
                    }
                }
            }
            std::mem::swap(&mut reachable, &mut next);
            if !reachable.iter().any(|&slot| slot) {
                return false;
            }
        }
        reachable[n]
    }
}

/// A pattern compiled once per distinct pattern text of a call.
trait Pattern {
    fn compile(pattern: &str, segments: bool) -> Self;
    fn test(&self, text: &str, scratch: &mut Vec<bool>) -> bool;
}

impl Pattern for Glob {
    fn compile(pattern: &str, segments: bool) -> Self {
        Glob::new(pattern, segments)
    }
    fn test(&self, text: &str, scratch: &mut Vec<bool>) -> bool {
        self.matches(text, scratch)
    }
}

impl Pattern for DestinationPattern {
    fn compile(pattern: &str, _segments: bool) -> Self {
        DestinationPattern::new(pattern)
    }
    fn test(&self, text: &str, scratch: &mut Vec<bool>) -> bool {
        self.matches(text, scratch)
    }
}

fn string_pair_udf<P: Pattern + 'static>(name: &str, segments: bool) -> ScalarUDF {
    let function = move |args: &[ColumnarValue]| -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let texts = arrow::compute::cast(&arrays[0], &DataType::Utf8)?;
        let patterns = arrow::compute::cast(&arrays[1], &DataType::Utf8)?;
        let (texts, patterns) = (texts.as_string::<i32>(), patterns.as_string::<i32>());
        // A join calls this with few distinct patterns over many rows: compile each once.
        let mut compiled: std::collections::HashMap<&str, P> = std::collections::HashMap::new();
        let mut scratch = Vec::new();
        let result: BooleanArray = (0..texts.len())
            .map(|row| {
                if !(texts.is_valid(row) && patterns.is_valid(row)) {
                    return None;
                }
                let pattern = patterns.value(row);
                let compiled = compiled.entry(pattern).or_insert_with(|| P::compile(pattern, segments));
                Some(compiled.test(texts.value(row), &mut scratch))
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
    string_pair_udf::<DestinationPattern>("domain_match", false)
}

pub fn glob_match_udf() -> ScalarUDF {
    string_pair_udf::<Glob>("glob_match", false)
}

pub fn path_match_udf() -> ScalarUDF {
    string_pair_udf::<Glob>("path_match", true)
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
        assert!(
            !domain_match("10.anything.example", "10.*"),
            "an address pattern is not text"
        );
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

    #[test]
    fn quick_shapes_agree_with_the_general_matcher() {
        let patterns = [
            ("*.sharepoint.com", false),
            ("10.*", false),
            ("github.com", false),
            ("**/finance/**", true),
            ("**/.kube/config", true),
            ("**/.aws/**", true),
            ("**/*.pem", true),
        ];
        let texts = [
            "corp.SharePoint.com",
            "sharepoint.com",
            "10.1.2.3",
            "110.1.2.3",
            "GitHub.com",
            "/home/a/Finance/q.xlsx",
            "finance/q.xlsx",
            "/home/a/finance",
            "/home/a/finance-x/q",
            "C:\\Users\\b\\.kube\\config",
            ".kube/config",
            "/x/my.kube/config",
            "/home/a/.aws/credentials",
            "/k/key.PEM",
        ];
        for (pattern, segments) in patterns {
            let glob = Glob::new(pattern, segments);
            assert!(
                !matches!(glob.shape, Shape::General) || pattern.contains("*.pem"),
                "{pattern}"
            );
            let general = Glob {
                tokens: glob.tokens.clone(),
                segments,
                shape: Shape::General,
            };
            for text in texts {
                assert_eq!(
                    glob.matches(text, &mut Vec::new()),
                    general.matches(text, &mut Vec::new()),
                    "{pattern} on {text}"
                );
            }
        }
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
