//! HTTP to the Hearth server: JSON in and out, error bodies turned into
//! [`ClientError::Api`]. The paths live in `endpoints`; this is transport.

use crate::error::{ClientError, Result};
use hearth_protocol::ErrorBody;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    pub fn new(server: &str) -> Result<Self> {
        Ok(Self {
            // An idle connection is given up before a server's usual
            // keep-alive (Hearth's default is 5 s) can close it under a
            // request that is reusing it.
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .pool_idle_timeout(Duration::from_secs(4))
                .build()?,
            base: server.trim_end_matches('/').to_owned(),
        })
    }

    /// The WebSocket URL of a path on the server.
    pub fn ws_url(&self, path: &str) -> String {
        let base = if let Some(rest) = self.base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = self.base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            self.base.clone()
        };
        format!("{base}{path}")
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn refusal(response: reqwest::Response) -> ClientError {
        let status = response.status().as_u16();
        match response.json::<ErrorBody>().await {
            Ok(body) => ClientError::Api { status, body },
            Err(_) => ClientError::Unexpected("an error answer without an error body"),
        }
    }

    /// Sends and reads a JSON answer.
    async fn answer<T: DeserializeOwned>(request: reqwest::RequestBuilder) -> Result<T> {
        let response = request.send().await?;
        if response.status().is_success() {
            Ok(response.json().await?)
        } else {
            Err(Self::refusal(response).await)
        }
    }

    /// Sends where the answer has no body worth reading.
    async fn done(request: reqwest::RequestBuilder) -> Result<()> {
        let response = request.send().await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(Self::refusal(response).await)
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str, token: &str) -> Result<T> {
        Self::answer(self.request(reqwest::Method::GET, path, Some(token))).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&str>,
        body: &impl Serialize,
    ) -> Result<T> {
        Self::answer(self.request(reqwest::Method::POST, path, token).json(body)).await
    }

    pub async fn put<T: DeserializeOwned>(
        &self,
        path: &str,
        token: &str,
        body: &impl Serialize,
    ) -> Result<T> {
        Self::answer(
            self.request(reqwest::Method::PUT, path, Some(token))
                .json(body),
        )
        .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Result<()> {
        Self::done(self.request(reqwest::Method::DELETE, path, Some(token))).await
    }
}
