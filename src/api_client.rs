//! How the CLI talks to a running server's API: its address, a bearer token, and
//! API errors turned into messages.

use anyhow::Context;

/// Where the CLI finds the API and how it signs in.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiClientArgs {
    /// The server's API.
    #[arg(long, env = "CORDON_API_URL", default_value = "http://127.0.0.1:8080")]
    pub api_url: String,
    /// A bearer token (or CORDON_TOKEN).
    #[arg(long, env = "CORDON_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl ApiClientArgs {
    fn token(&self) -> anyhow::Result<String> {
        self.token
            .clone()
            .or_else(|| std::env::var(crate::api::auth::ADMIN_TOKEN_ENV).ok())
            .context("no API token: pass --token or set CORDON_TOKEN")
    }

    /// GETs `path` with `query` and decodes the JSON answer; API errors become messages.
    pub async fn get<T: serde::de::DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<T> {
        let base = format!("{}{path}", self.api_url.trim_end_matches('/'));
        let url =
            reqwest::Url::parse_with_params(&base, query).with_context(|| format!("{} is not a URL", self.api_url))?;
        let request = reqwest::Client::new().get(url.clone());
        self.send(request, url).await
    }

    /// POSTs `body` as JSON to `path` and decodes the JSON answer.
    pub async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> anyhow::Result<T> {
        self.send_json(reqwest::Method::POST, path, body).await
    }

    /// PATCHes `body` as JSON to `path` and decodes the JSON answer.
    pub async fn patch<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> anyhow::Result<T> {
        self.send_json(reqwest::Method::PATCH, path, body).await
    }

    async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &impl serde::Serialize,
    ) -> anyhow::Result<T> {
        let url = reqwest::Url::parse(&format!("{}{path}", self.api_url.trim_end_matches('/')))
            .with_context(|| format!("{} is not a URL", self.api_url))?;
        let request = reqwest::Client::new().request(method, url.clone()).json(body);
        self.send(request, url).await
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        url: reqwest::Url,
    ) -> anyhow::Result<T> {
        let response = request
            .bearer_auth(self.token()?)
            .send()
            .await
            .with_context(|| format!("cannot reach the Cordon API at {}", self.api_url))?;
        let status = response.status();
        let body: String = response.text().await?;
        if !status.is_success() {
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|value| value.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or(body);
            anyhow::bail!("the API answered {status}: {message}");
        }
        serde_json::from_str(&body).with_context(|| format!("unexpected answer from {url}"))
    }
}
