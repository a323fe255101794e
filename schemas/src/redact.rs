//! Secrets taken out of command lines before they are stored. Command lines stay:
//! detection needs them (`curl ... | sh`, `scp secrets.tar host:`); the credentials in
//! them do not, and an analyst reading an alert must not be handed a live token.
//!
//! What is redacted (each replaced by `[REDACTED]`, the rest of the line kept):
//! - passwords in URLs (`https://user:secret@host` -> `https://user:[REDACTED]@host`);
//! - header values of `Authorization`, `Proxy-Authorization`, `Cookie`, `X-Api-Key`
//!   and any `*-Token` / `*-Key` header (`-H "Authorization: Bearer ..."`);
//! - `curl -u user:password`, `--user user:password`;
//! - values of options and assignments whose name says secret (`--password=`,
//!   `--token x`, `API_KEY=...`, `AWS_SECRET_ACCESS_KEY=...`, `mysql -pSECRET`);
//! - query parameters whose name says secret (`?access_token=...&sig=...`);
//! - tokens recognisable by their shape: GitHub (`ghp_`, `github_pat_`), OpenAI and
//!   Anthropic (`sk-...`), AWS access key ids (`AKIA...`), Slack (`xox.-`), JWTs.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::{Regex, RegexSet};

pub const REDACTED: &str = "[REDACTED]";

/// The name fragments that make an option, variable, header or parameter a secret.
const SECRET_NAME: &str = r"(?:pass(?:word|wd)?|secret|token|api[-_]?key|apikey|access[-_]?key|private[-_]?key|auth|credentials?|sig|signature|session[-_]?key|client[-_]?secret)";

struct Rules {
    url_password: Regex,
    header: Regex,
    user_option: Regex,
    option: Regex,
    assignment: Regex,
    mysql_password: Regex,
    query: Regex,
    shaped: Regex,
    /// Every pattern above but `mysql_password` (which applies only to database clients)
    /// at once: most command lines hold no secret, and one pass of the set tells so
    /// where the patterns one by one took seven.
    any: RegexSet,
}

fn rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    RULES.get_or_init(|| {
        let compile = |pattern: &str| Regex::new(pattern).expect("the redaction patterns are valid");
        let url_password = compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@");
        let header = compile(
            r#"(?i)((?:authorization|proxy-authorization|cookie|x-api-key|[a-z-]*-token|[a-z-]*-key)\s*:\s*)([^"'\r\n]+)"#,
        );
        let user_option = compile(r#"((?:^|\s)(?:-u|--user)(?:\s+|=)['"]?[^\s:'"]+:)([^\s'"]+)"#);
        let option = compile(&format!(r#"(?i)((?:^|\s)--?[a-z0-9-]*{SECRET_NAME}[a-z0-9-]*(?:=|\s+)['"]?)([^\s'"]+)"#));
        let assignment = compile(&format!(r#"(?i)((?:^|[\s;&|(])[a-z0-9_]*{SECRET_NAME}[a-z0-9_]*=['"]?)([^\s'"]+)"#));
        let mysql_password = compile(r"((?:^|\s)-p)([^\s-][^\s]*)");
        let query = compile(&format!(r"(?i)([?&][a-z0-9_.-]*{SECRET_NAME}[a-z0-9_.-]*=)([^&\s'#]+)"));
        let shaped = compile(
            r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|sk-[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|xox[abprs]-[A-Za-z0-9-]{10,}|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})",
        );
        let any = RegexSet::new(
            [&url_password, &header, &user_option, &option, &assignment, &query, &shaped].map(Regex::as_str),
        )
        .expect("the redaction patterns are valid");
        Rules {
            url_password,
            header,
            user_option,
            option,
            assignment,
            mysql_password,
            query,
            shaped,
            any,
        }
    })
}

/// `line` with the secrets in it replaced by `[REDACTED]`; borrowed when it had none.
pub fn command_line(line: &str) -> Cow<'_, str> {
    let rules = rules();
    if !rules.any.is_match(line) && !looks_like_mysql(line) {
        // None of the replacements would change the line.
        return Cow::Borrowed(line);
    }
    replace_secrets(rules, line)
}

/// Every replacement, one after another.
fn replace_secrets<'a>(rules: &Rules, line: &'a str) -> Cow<'a, str> {
    let keep_name = |caps: &regex::Captures<'_>| format!("{}{REDACTED}", &caps[1]);
    let mut text = Cow::Borrowed(line);
    for regex in [
        &rules.header,
        &rules.user_option,
        &rules.option,
        &rules.assignment,
        &rules.query,
    ] {
        if let Cow::Owned(replaced) = regex.replace_all(&text, keep_name) {
            text = Cow::Owned(replaced);
        }
    }
    if let Cow::Owned(replaced) = rules
        .url_password
        .replace_all(&text, |caps: &regex::Captures<'_>| format!("{}{REDACTED}@", &caps[1]))
    {
        text = Cow::Owned(replaced);
    }
    if looks_like_mysql(&text)
        && let Cow::Owned(replaced) = rules.mysql_password.replace_all(&text, keep_name)
    {
        text = Cow::Owned(replaced);
    }
    if let Cow::Owned(replaced) = rules.shaped.replace_all(&text, REDACTED) {
        text = Cow::Owned(replaced);
    }
    text
}

/// `-pSECRET` means a password only to the database clients that take it so.
fn looks_like_mysql(line: &str) -> bool {
    line.split_whitespace().any(|word| {
        let program = word.rsplit('/').next().unwrap_or(word);
        matches!(program, "mysql" | "mysqldump" | "mariadb" | "mysqladmin")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_the_command_kept() {
        for (line, expected) in [
            (
                "curl -s https://alice:hunter2@example.com/x -o out",
                "curl -s https://alice:[REDACTED]@example.com/x -o out",
            ),
            (
                r#"curl -H "Authorization: Bearer abc.def" https://api.example.com"#,
                r#"curl -H "Authorization: [REDACTED]" https://api.example.com"#,
            ),
            (
                "curl -H 'X-Api-Key: 12345' https://x",
                "curl -H 'X-Api-Key: [REDACTED]' https://x",
            ),
            ("curl -u bob:pa55 https://x", "curl -u bob:[REDACTED] https://x"),
            (
                "tool --password=s3cret --verbose",
                "tool --password=[REDACTED] --verbose",
            ),
            ("tool --api-key s3cret run", "tool --api-key [REDACTED] run"),
            ("API_KEY=s3cret ./deploy.sh", "API_KEY=[REDACTED] ./deploy.sh"),
            (
                "env AWS_SECRET_ACCESS_KEY=abc aws s3 cp x s3://b",
                "env AWS_SECRET_ACCESS_KEY=[REDACTED] aws s3 cp x s3://b",
            ),
            ("mysql -uroot -pHunter2 db", "mysql -uroot -p[REDACTED] db"),
            (
                "wget https://x/file?access_token=abc123&page=2",
                "wget https://x/file?access_token=[REDACTED]&page=2",
            ),
            (
                "git clone https://ghp_abcdefghijklmnopqrstuvwxyz0123@github.com/o/r",
                "git clone https://[REDACTED]@github.com/o/r",
            ),
            (
                "echo sk-ant-api03-abcdefghijklmnopqrstuv | nc h 1",
                "echo [REDACTED] | nc h 1",
            ),
        ] {
            assert_eq!(command_line(line), expected, "{line}");
        }
    }

    #[test]
    fn lines_without_secrets_are_untouched_and_borrowed() {
        for line in [
            "curl -s http://127.0.0.1:4318/probe -o /dev/null",
            "scp -P 2222 report.pdf user@host:/tmp/",
            "tar -czf backup.tgz src",
            "ssh -p 22 host",
            "python3 -m http.server",
        ] {
            assert!(matches!(command_line(line), Cow::Borrowed(_)), "{line}");
        }
    }

    #[test]
    fn the_prefilter_changes_no_answer() {
        // Pieces of lines with and without secrets, near misses included, joined every
        // way: the set's verdict must agree with running every replacement.
        let pieces = [
            "curl -s https://alice:hunter2@example.com/x",
            "-H 'X-Api-Key: 12345'",
            "-u bob:pa55",
            "--password=s3cret",
            "API_KEY=s3cret",
            "mysql",
            "-pHunter2",
            "mkdir -p /tmp/x",
            "?access_token=abc123&page=2",
            "ghp_abcdefghijklmnopqrstuvwxyz0123",
            "echo hello",
            "--passive",
            "signal=TERM",
            "https://example.com/a:b@c",
            "eyJhbGciOiJI.eyJzdWIiOjEy.c2lnbmF0dXJl",
        ];
        let rules = rules();
        for first in pieces {
            for second in pieces {
                let line = format!("{first} {second}");
                assert_eq!(command_line(&line), replace_secrets(rules, &line), "{line}");
            }
        }
    }
}
