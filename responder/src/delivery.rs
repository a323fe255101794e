//! One try of one webhook: a signed POST, and what its answer means. 2xx is done;
//! 429, 5xx, timeouts and connection failures are worth another try; any other 4xx
//! means the request itself is wrong, so trying again would not help.

use std::time::{Duration, Instant};

use crate::backoff::parse_retry_after;
use crate::config::ResolvedTarget;
use crate::signing::{IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};

/// What the answer means for the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Outcome {
    Success,
    Retry,
    Fail,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The verdict for an HTTP status.
pub fn classify(status: u16) -> Outcome {
    match status {
        200..=299 => Outcome::Success,
        429 | 500..=599 => Outcome::Retry,
        _ => Outcome::Fail,
    }
}

/// The result of one try.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub status: Option<u16>,
    pub latency: Duration,
    pub error: Option<String>,
    pub retry_after: Option<Duration>,
    pub verdict: Outcome,
}

/// The longest part of a refusal's body kept as its error.
const ERROR_BODY_BYTES: usize = 300;

pub struct Deliverer {
    client: reqwest::Client,
}

impl Default for Deliverer {
    fn default() -> Self {
        Deliverer::new()
    }
}

impl Deliverer {
    pub fn new() -> Deliverer {
        let client = reqwest::Client::builder()
            // A signed POST must not be replayed to wherever a redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("cordon-responder/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client builds");
        Deliverer { client }
    }

    /// POSTs `body` for `action_id`, signed with the target's secret at the current time.
    pub async fn send(&self, target: &ResolvedTarget, action_id: &str, body: &str) -> Attempt {
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign(&target.secret, timestamp, body.as_bytes());
        let mut request = self
            .client
            .post(&target.config.url)
            .timeout(target.config.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, action_id)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature);
        for (name, value) in &target.config.headers {
            request = request.header(name, value);
        }
        let started = Instant::now();
        let response = request.body(body.to_string()).send().await;
        match response {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| parse_retry_after(value, chrono::Utc::now()));
                let verdict = classify(status);
                let error = match verdict {
                    Outcome::Success => None,
                    _ => {
                        let text = response.text().await.unwrap_or_default();
                        let snippet: String = text.chars().take(ERROR_BODY_BYTES).collect();
                        let snippet = snippet.trim();
                        Some(if snippet.is_empty() {
                            format!("HTTP {status}")
                        } else {
                            format!("HTTP {status}: {snippet}")
                        })
                    }
                };
                Attempt {
                    status: Some(status),
                    latency: started.elapsed(),
                    error,
                    retry_after,
                    verdict,
                }
            }
            Err(error) => Attempt {
                status: None,
                latency: started.elapsed(),
                error: Some(describe(&error, target.config.timeout)),
                retry_after: None,
                verdict: Outcome::Retry,
            },
        }
    }
}

/// A transport error in words, without the URL (it may carry a token in its query).
fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!(
            "no answer within {} (the target's timeout)",
            humantime_serde::re::humantime::format_duration(timeout)
        );
    }
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    let root = causes.last().cloned().unwrap_or_else(|| "unknown error".into());
    if error.is_connect() {
        format!("cannot connect to the target: {root}")
    } else {
        format!("the request failed: {root}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_as_the_contract_says() {
        assert_eq!(classify(200), Outcome::Success);
        assert_eq!(classify(204), Outcome::Success);
        assert_eq!(classify(429), Outcome::Retry);
        assert_eq!(classify(500), Outcome::Retry);
        assert_eq!(classify(503), Outcome::Retry);
        assert_eq!(classify(400), Outcome::Fail);
        assert_eq!(classify(401), Outcome::Fail);
        assert_eq!(classify(404), Outcome::Fail);
        assert_eq!(
            classify(408),
            Outcome::Fail,
            "the contract retries only 429 among the 4xx"
        );
        assert_eq!(classify(301), Outcome::Fail, "redirects are not followed");
    }
}
