//! Every API path the SDK uses, as a typed function. Nothing else in the SDK
//! spells a path: operations call these.

use crate::api::Api;
use crate::error::Result;
use hearth_protocol::auth::{
    Challenge, DeviceList, LinkToken, Login, LoginTokens, RefreshRequest, RegisterDevice,
    RegisteredDevice,
};
use hearth_protocol::circles::{
    Accepted, Ack, Circle, CommitBundle, CreateCircle, CreateInvite, GroupInfo, Invite, InviteList,
    JoinRequestCreated, JoinRequestList, LogPage, RedeemInvite, SendMessage, WelcomeList,
};
use hearth_protocol::key_packages::{
    ClaimKeyPackages, ClaimedKeyPackages, KeyPackageCount, UploadKeyPackages, UploadedKeyPackages,
};
use hearth_protocol::{CircleId, DeviceId};
use uuid::Uuid;

/// The live stream's path.
pub(crate) const STREAM: &str = "/v1/stream";

/// The endpoints that need no access token.
impl Api {
    pub async fn challenge(&self) -> Result<Challenge> {
        self.post("/v1/challenges", None, &()).await
    }

    pub async fn register_device(&self, body: &RegisterDevice) -> Result<RegisteredDevice> {
        self.post("/v1/devices", None, body).await
    }

    pub async fn log_in(&self, body: &Login) -> Result<LoginTokens> {
        self.post("/v1/logins", None, body).await
    }

    pub async fn refresh(&self, refresh_token: String) -> Result<LoginTokens> {
        self.post(
            "/v1/logins/refresh",
            None,
            &RefreshRequest { refresh_token },
        )
        .await
    }
}

/// The API with a current access token: every authenticated endpoint.
pub(crate) struct Authorized<'a> {
    pub api: &'a Api,
    pub token: String,
}

impl Authorized<'_> {
    pub async fn link_token(&self) -> Result<LinkToken> {
        self.api
            .post("/v1/link-tokens", Some(&self.token), &())
            .await
    }

    pub async fn devices(&self) -> Result<DeviceList> {
        self.api.get("/v1/devices", &self.token).await
    }

    pub async fn key_package_count(&self) -> Result<KeyPackageCount> {
        self.api.get("/v1/key-packages/count", &self.token).await
    }

    pub async fn upload_key_packages(
        &self,
        body: &UploadKeyPackages,
    ) -> Result<UploadedKeyPackages> {
        self.api
            .post("/v1/key-packages", Some(&self.token), body)
            .await
    }

    pub async fn claim_key_packages(&self, devices: &[DeviceId]) -> Result<ClaimedKeyPackages> {
        let body = ClaimKeyPackages {
            device_ids: devices.to_vec(),
        };
        self.api
            .post("/v1/key-packages/claim", Some(&self.token), &body)
            .await
    }

    pub async fn create_circle(&self, body: &CreateCircle) -> Result<Circle> {
        self.api.post("/v1/circles", Some(&self.token), body).await
    }

    pub async fn circle(&self, circle: &CircleId) -> Result<Circle> {
        self.api
            .get(&format!("/v1/circles/{circle}"), &self.token)
            .await
    }

    pub async fn post_commit(&self, circle: &CircleId, bundle: &CommitBundle) -> Result<Accepted> {
        self.api
            .post(
                &format!("/v1/circles/{circle}/commits"),
                Some(&self.token),
                bundle,
            )
            .await
    }

    pub async fn send_message(&self, circle: &CircleId, body: &SendMessage) -> Result<Accepted> {
        self.api
            .post(
                &format!("/v1/circles/{circle}/messages"),
                Some(&self.token),
                body,
            )
            .await
    }

    pub async fn read_log(&self, circle: &CircleId, after: u64) -> Result<LogPage> {
        self.api
            .get(
                &format!("/v1/circles/{circle}/messages?after={after}"),
                &self.token,
            )
            .await
    }

    pub async fn ack(&self, circle: &CircleId, seq: u64) -> Result<()> {
        self.api
            .post_done(
                &format!("/v1/circles/{circle}/ack"),
                &self.token,
                &Ack { seq },
            )
            .await
    }

    pub async fn group_info(&self, circle: &CircleId) -> Result<GroupInfo> {
        self.api
            .get(&format!("/v1/circles/{circle}/group-info"), &self.token)
            .await
    }

    pub async fn create_invite(&self, circle: &CircleId, body: &CreateInvite) -> Result<Invite> {
        self.api
            .post(
                &format!("/v1/circles/{circle}/invites"),
                Some(&self.token),
                body,
            )
            .await
    }

    pub async fn invites(&self, circle: &CircleId) -> Result<InviteList> {
        self.api
            .get(&format!("/v1/circles/{circle}/invites"), &self.token)
            .await
    }

    pub async fn revoke_invite(&self, circle: &CircleId, invite: Uuid) -> Result<()> {
        self.api
            .delete(
                &format!("/v1/circles/{circle}/invites/{invite}"),
                &self.token,
            )
            .await
    }

    pub async fn redeem_invite(&self, body: &RedeemInvite) -> Result<JoinRequestCreated> {
        self.api
            .post("/v1/invites/redeem", Some(&self.token), body)
            .await
    }

    pub async fn join_requests(&self, circle: &CircleId) -> Result<JoinRequestList> {
        self.api
            .get(&format!("/v1/circles/{circle}/join-requests"), &self.token)
            .await
    }

    pub async fn decline_join_request(&self, circle: &CircleId, request: Uuid) -> Result<()> {
        self.api
            .delete(
                &format!("/v1/circles/{circle}/join-requests/{request}"),
                &self.token,
            )
            .await
    }

    pub async fn welcomes(&self) -> Result<WelcomeList> {
        self.api.get("/v1/welcomes", &self.token).await
    }

    pub async fn delete_welcome(&self, welcome: Uuid) -> Result<()> {
        self.api
            .delete(&format!("/v1/welcomes/{welcome}"), &self.token)
            .await
    }
}
