//! Glob patterns, matched case-insensitively over bytes: host-id patterns (producer
//! credentials, protected hosts), `glob_match` and `path_match` in rules.

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

    /// The longest run of literal bytes every match contains (ASCII lower case; for
    /// paths never a `/`, which a `\` in the text also matches): a set of patterns is
    /// searched for these first (`pattern_set.rs` in detections). None: no literal.
    pub fn required_literal(&self) -> Option<Vec<u8>> {
        self.tokens
            .split(|token| match token {
                Token::Byte(byte) => self.segments && *byte == b'/',
                _ => true,
            })
            .max_by_key(|run| run.len())
            .filter(|run| !run.is_empty())
            .map(|run| {
                run.iter()
                    .map(|token| match token {
                        Token::Byte(byte) => *byte,
                        _ => unreachable!("runs hold bytes only"),
                    })
                    .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_literals_are_the_longest_literal_run() {
        let literal = |pattern: &str, segments: bool| {
            Glob::new(pattern, segments)
                .required_literal()
                .map(|bytes| String::from_utf8(bytes).unwrap())
        };
        assert_eq!(literal("**/.SSH/id_*", true).as_deref(), Some(".ssh"));
        assert_eq!(
            literal("**/.claude/settings.json", true).as_deref(),
            Some("settings.json")
        );
        assert_eq!(literal("*.sharepoint.com", false).as_deref(), Some(".sharepoint.com"));
        // Without segments a slash is an ordinary byte.
        assert_eq!(literal("a/bc*", false).as_deref(), Some("a/bc"));
        assert_eq!(literal("**", true), None);
        assert_eq!(literal("*", false), None);
    }

    #[test]
    fn globs() {
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
}
