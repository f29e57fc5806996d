//! HTTP to the Hearth server: JSON in and out, error bodies turned into
//! [`ClientError::Api`].

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
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
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

    async fn answer<T: DeserializeOwned>(response: reqwest::Response) -> Result<T> {
        let status = response.status();
        if status.is_success() {
            return Ok(response.json().await?);
        }
        Err(Self::refusal(response).await)
    }

    /// An answer without a body worth reading: success, or the refusal.
    async fn done(response: reqwest::Response) -> Result<()> {
        if response.status().is_success() {
            Ok(())
        } else {
            Err(Self::refusal(response).await)
        }
    }

    async fn refusal(response: reqwest::Response) -> ClientError {
        let status = response.status().as_u16();
        match response.json::<ErrorBody>().await {
            Ok(body) => ClientError::Api { status, body },
            Err(_) => ClientError::Unexpected("an error answer without an error body"),
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str, token: &str) -> Result<T> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await?;
        Self::answer(response).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&str>,
        body: &impl Serialize,
    ) -> Result<T> {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Self::answer(request.send().await?).await
    }

    pub async fn post_empty(&self, path: &str, token: &str, body: &impl Serialize) -> Result<()> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?;
        Self::done(response).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Result<()> {
        let response = self
            .http
            .delete(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await?;
        Self::done(response).await
    }
}
