//! A target URL as audit lines, dry runs and logs show it: scheme, host and port only.
//! Webhook URLs carry secrets in the path (`hooks.slack.com/services/T0/B0/XXXX`), the
//! query (`?apikey=`) and the user info, and the target's name already says which it is.

/// `url` with its user info, path and query replaced by `[redacted]`.
pub fn shown_url(url: &str) -> String {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return "[an unparsable URL, redacted]".to_string();
    };
    let mut shown = format!("{}://{}", parsed.scheme(), parsed.host_str().unwrap_or(""));
    if let Some(port) = parsed.port() {
        shown.push_str(&format!(":{port}"));
    }
    if !matches!(parsed.path(), "" | "/") {
        shown.push_str("/[redacted]");
    }
    if parsed.query().is_some() {
        shown.push_str("?[redacted]");
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_the_path_query_and_user_info_are_not_shown() {
        for (url, shown) in [
            (
                "https://hooks.slack.com/services/T0/B0/XXXX",
                "https://hooks.slack.com/[redacted]",
            ),
            (
                "https://edr.example:8443/isolate?apikey=s3cr3t",
                "https://edr.example:8443/[redacted]?[redacted]",
            ),
            ("https://user:pass@idp.example/", "https://idp.example"),
            ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
        ] {
            assert_eq!(shown_url(url), shown, "{url}");
        }
        assert!(!shown_url("not a url with s3cr3t").contains("s3cr3t"));
    }
}
