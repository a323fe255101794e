//! A reference table's patterns compiled once into one matcher: "does any pattern of
//! the table match this text". Each text is searched once for every pattern's required
//! literal (Aho-Corasick); only the patterns whose literal occurs, and those that have
//! none, are then tried. The answer is exactly that of trying every pattern in turn
//! (`path_match`, `glob_match`, `domain_match`, `cidr_match`); `reference_match.rs`
//! puts it where a rule wrote `EXISTS (SELECT 1 FROM table WHERE f(x, pattern))`.

use aho_corasick::{AhoCorasick, MatchKind};

use crate::destination::{DestinationPattern, parse_address};
use crate::udf::Glob;

/// Which of the matching functions a set answers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatternKind {
    /// `path_match`: `*` within a folder, `**` across folders.
    Path,
    /// `glob_match`: `*` any run of characters.
    Glob,
    /// `domain_match` and `cidr_match`: names against name patterns, addresses against
    /// address patterns.
    Destination,
}

impl PatternKind {
    /// The kind a matching function's name stands for.
    pub fn of_function(name: &str) -> Option<PatternKind> {
        match name {
            "path_match" => Some(PatternKind::Path),
            "glob_match" => Some(PatternKind::Glob),
            "domain_match" | "cidr_match" => Some(PatternKind::Destination),
            _ => None,
        }
    }
}

/// Globs searched by their literals first.
struct GlobSet {
    globs: Vec<Glob>,
    /// Over the globs that have a literal; pattern i of the automaton is glob `literal_of[i]`.
    literals: Option<AhoCorasick>,
    literal_of: Vec<usize>,
    /// Globs without a literal: tried on every text.
    always: Vec<usize>,
}

impl GlobSet {
    fn new(globs: Vec<Glob>) -> GlobSet {
        let mut literals = Vec::new();
        let mut literal_of = Vec::new();
        let mut always = Vec::new();
        for (index, glob) in globs.iter().enumerate() {
            match glob.required_literal() {
                Some(literal) => {
                    literals.push(literal);
                    literal_of.push(index);
                }
                None => always.push(index),
            }
        }
        let literals = (!literals.is_empty()).then(|| {
            AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .build(&literals)
                .expect("literal byte strings always build")
        });
        GlobSet {
            globs,
            literals,
            literal_of,
            always,
        }
    }

    fn matches(&self, text: &str, scratch: &mut Vec<bool>, tried: &mut Vec<bool>) -> bool {
        if self
            .always
            .iter()
            .any(|&index| self.globs[index].matches(text, scratch))
        {
            return true;
        }
        let Some(literals) = &self.literals else {
            return false;
        };
        tried.clear();
        tried.resize(self.globs.len(), false);
        for found in literals.find_overlapping_iter(text) {
            let index = self.literal_of[found.pattern().as_usize()];
            if !tried[index] {
                tried[index] = true;
                if self.globs[index].matches(text, scratch) {
                    return true;
                }
            }
        }
        false
    }
}

/// One reference table's patterns, for one kind of matching.
pub struct PatternSet {
    kind: PatternKind,
    globs: GlobSet,
    /// Destination sets: the address patterns, tried on addresses only.
    addresses: Vec<DestinationPattern>,
}

impl std::fmt::Debug for PatternSet {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PatternSet")
            .field("kind", &self.kind)
            .field("globs", &self.globs.globs.len())
            .field("addresses", &self.addresses.len())
            .finish()
    }
}

impl PatternSet {
    pub fn new<'a>(kind: PatternKind, patterns: impl IntoIterator<Item = &'a str>) -> PatternSet {
        let mut globs = Vec::new();
        let mut addresses = Vec::new();
        for pattern in patterns {
            match kind {
                PatternKind::Path => globs.push(Glob::new(pattern, true)),
                PatternKind::Glob => globs.push(Glob::new(pattern, false)),
                PatternKind::Destination => match DestinationPattern::new(pattern) {
                    DestinationPattern::Name(glob) => globs.push(glob),
                    DestinationPattern::Never => {}
                    address => addresses.push(address),
                },
            }
        }
        PatternSet {
            kind,
            globs: GlobSet::new(globs),
            addresses,
        }
    }

    /// Whether any pattern matches `text`; `scratch` and `tried` are reused across calls.
    pub fn matches(&self, text: &str, scratch: &mut Vec<bool>, tried: &mut Vec<bool>) -> bool {
        if self.kind != PatternKind::Destination {
            return self.globs.matches(text, scratch, tried);
        }
        // Parsed once here rather than once per pattern.
        if parse_address(text).is_some() {
            self.addresses.iter().any(|pattern| pattern.matches(text, scratch))
        } else {
            self.globs.matches(text.trim().trim_end_matches('.'), scratch, tried)
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const PATHS: &[&str] = &[
        "**/.ssh/**",
        "**/.aws/credentials",
        "**/*.pem",
        "**/finance/**",
        "**",
        "/etc/shadow",
    ];
    const DESTINATIONS: &[&str] = &[
        "*.sharepoint.com",
        "github.com",
        "10.0.0.0/8",
        "192.168.*",
        "fc00::/7",
        "*",
        "not an address/99",
    ];

    const WORDS: &[&str] = &[
        "",
        "home",
        ".SSH",
        ".ssh",
        "id_rsa",
        ".aws",
        "credentials",
        "key.pem",
        "finance",
        "etc",
        "shadow",
        "corp",
        "sharepoint",
        "com",
        "github",
        "c:",
    ];

    /// What the set must answer: every pattern tried in turn, as the join did.
    fn one_by_one(kind: PatternKind, patterns: &[&str], text: &str) -> bool {
        patterns.iter().any(|pattern| match kind {
            PatternKind::Path => Glob::new(pattern, true).matches(text, &mut Vec::new()),
            PatternKind::Glob => Glob::new(pattern, false).matches(text, &mut Vec::new()),
            PatternKind::Destination => DestinationPattern::new(pattern).matches(text, &mut Vec::new()),
        })
    }

    fn set_says(kind: PatternKind, patterns: &[&str], text: &str) -> bool {
        PatternSet::new(kind, patterns.iter().copied()).matches(text, &mut Vec::new(), &mut Vec::new())
    }

    #[test]
    fn paths_match_as_each_pattern_would() {
        let patterns = &PATHS[..4];
        for (text, expected) in [
            ("/home/a/.ssh/id_rsa", true),
            ("C:\\Users\\a\\.SSH\\id_rsa", true),
            ("/home/a/.aws/credentials", true),
            ("/srv/keys/server.PEM", true),
            ("/srv/finance/q3.xlsx", true),
            ("/srv/financial/q3.xlsx", false),
            ("/home/a/notes.txt", false),
        ] {
            assert_eq!(set_says(PatternKind::Path, patterns, text), expected, "{text}");
        }
        assert!(
            set_says(PatternKind::Path, &["**"], "/anything"),
            "a pattern without a literal is tried"
        );
    }

    #[test]
    fn destinations_keep_names_and_addresses_apart() {
        let patterns = &DESTINATIONS[..5];
        for (text, expected) in [
            ("corp.SharePoint.com.", true),
            ("sharepoint.com", false),
            ("github.com", true),
            ("10.1.2.3", true),
            ("10.attacker.example", false),
            ("192.168.4.4", true),
            ("[fd00::1]", true),
            ("203.0.113.9", false),
        ] {
            assert_eq!(set_says(PatternKind::Destination, patterns, text), expected, "{text}");
        }
    }

    proptest! {
        #[test]
        fn a_set_answers_as_its_patterns_one_by_one(
            picks in proptest::collection::vec(0usize..16, 0..6),
            text in prop_oneof![
                "[a-zA-Z0-9./\\\\*_:-]{0,24}",
                // Texts made of the patterns' own words, so that literals are found.
                (
                    proptest::collection::vec(proptest::sample::select(WORDS), 0..5),
                    proptest::sample::select(&["/", "\\\\", ".", ""][..]),
                )
                    .prop_map(|(words, separator)| words.join(separator)),
                "(10|192)\\.(168|[0-9]{1,3})\\.[0-9]{1,3}\\.[0-9]{1,3}",
            ],
        ) {
            let paths: Vec<&str> = picks.iter().map(|pick| PATHS[pick % PATHS.len()]).collect();
            prop_assert_eq!(set_says(PatternKind::Path, &paths, &text), one_by_one(PatternKind::Path, &paths, &text));
            prop_assert_eq!(set_says(PatternKind::Glob, &paths, &text), one_by_one(PatternKind::Glob, &paths, &text));
            let destinations: Vec<&str> = picks.iter().map(|pick| DESTINATIONS[pick % DESTINATIONS.len()]).collect();
            prop_assert_eq!(
                set_says(PatternKind::Destination, &destinations, &text),
                one_by_one(PatternKind::Destination, &destinations, &text)
            );
        }
    }
}
