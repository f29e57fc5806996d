//! Firebase Cloud Messaging, HTTP v1: a data-only message whose one field
//! never varies, high priority so Android delivers it to a sleeping app.
//! The OAuth 2 bearer comes from the service account through `gcp_auth`
//! (which honours the account's `token_uri`, so tests can stand in for
//! Google).

use super::{Delivery, Provider, ProviderError, delivery_of};
use async_trait::async_trait;
use gcp_auth::TokenProvider as _;
use hearth_protocol::push::{FCM_WAKE_FIELD, PushDeadReason, PushTarget};
use serde::Deserialize;
use serde_json::json;

/// The OAuth scope FCM sends need.
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

/// The FCM transport.
pub struct Fcm {
    account: gcp_auth::CustomServiceAccount,
    send_url: reqwest::Url,
    client: reqwest::Client,
}

impl std::fmt::Debug for Fcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fcm").finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct FcmFailure {
    error: FcmError,
}

#[derive(Deserialize)]
struct FcmError {
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<FcmDetail>,
}

#[derive(Deserialize)]
struct FcmDetail {
    #[serde(default, rename = "errorCode")]
    error_code: String,
}

impl Fcm {
    /// The transport, from the service account's JSON.
    pub fn new(
        service_account_json: &str,
        project_id: Option<&str>,
        base_url: &str,
    ) -> Result<Self, ProviderError> {
        let account = gcp_auth::CustomServiceAccount::from_json(service_account_json)
            .map_err(|_| ProviderError::Key("push.fcm.service_account"))?;
        let project = project_id
            .or(account.project_id())
            .ok_or(ProviderError::Setting(
                "push.fcm.project_id is unset and the service account names no project",
            ))?
            .to_owned();
        let send_url = reqwest::Url::parse(&format!(
            "{}/v1/projects/{project}/messages:send",
            base_url.trim_end_matches('/')
        ))
        .map_err(|_| ProviderError::Setting("push.fcm.base_url is not a URL"))?;
        let client = super::client_builder()
            .build()
            .map_err(ProviderError::Client)?;
        Ok(Self {
            account,
            send_url,
            client,
        })
    }
}

#[async_trait]
impl Provider for Fcm {
    async fn wake(&self, target: &PushTarget, _now: i64) -> Delivery {
        let PushTarget::Fcm { token } = target else {
            return Delivery::Failed("not an FCM target");
        };
        let Ok(bearer) = self.account.token(&[SCOPE]).await else {
            return Delivery::Retry(None);
        };
        let (field, value) = FCM_WAKE_FIELD;
        let message = json!({
            "message": {
                "token": token,
                "data": { field: value },
                "android": { "priority": "high" },
            }
        });
        let sent = self
            .client
            .post(self.send_url.clone())
            .bearer_auth(bearer.as_str())
            .json(&message)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(_) => return Delivery::Retry(None),
        };
        let status = response.status().as_u16();
        let answered = delivery_of(status, response.headers());
        if answered == Delivery::Sent {
            return answered;
        }
        let failure = response.json::<FcmFailure>().await.ok();
        let unregistered = failure.as_ref().is_some_and(|f| {
            f.error.status == "UNREGISTERED"
                || f.error
                    .details
                    .iter()
                    .any(|d| d.error_code == "UNREGISTERED")
        });
        if unregistered {
            Delivery::Gone(PushDeadReason::Unregistered)
        } else {
            answered
        }
    }
}
