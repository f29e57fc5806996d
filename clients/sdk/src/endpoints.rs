//! Every API path the SDK uses, as a typed function. Nothing else in the SDK
//! spells a path: operations call these.

use crate::api::Api;
use crate::error::Result;
use hearth_protocol::auth::{
    Challenge, DeviceList, FacilitatorCode, FacilitatorStatus, LinkToken, Login, LoginTokens,
    RefreshRequest, RegisterDevice, RegisteredDevice,
};
use hearth_protocol::circles::{
    Accepted, Circle, CommitBundle, CreateCircle, CreateInvite, GroupInfo, Invite, InviteList,
    JoinRequestCreated, JoinRequestList, PutSnapshot, RedeemInvite, SendMessage, Snapshot,
    SnapshotWritten,
};
use hearth_protocol::key_packages::{
    ClaimKeyPackages, ClaimedKeyPackages, JoinRequestRef, KeyPackageCount, UploadKeyPackages,
    UploadedKeyPackages,
};
use hearth_protocol::push::{PushServices, PushStatus, PushTarget};
use hearth_protocol::sync::{SyncRequest, SyncResponse};
use hearth_protocol::video::CallAccess;
use hearth_protocol::{CircleId, DeviceId};
use serde::Serialize;
use serde::de::DeserializeOwned;
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

/// A path under a circle.
fn circle_path(circle: &CircleId, rest: &str) -> String {
    format!("/v1/circles/{circle}{rest}")
}

/// The verbs, with the token (PUT is used once, in `put_snapshot`).
impl Authorized<'_> {
    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.api.get(path, &self.token).await
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        self.api.post(path, Some(&self.token), body).await
    }

    async fn delete(&self, path: &str) -> Result<()> {
        self.api.delete(path, &self.token).await
    }
}

/// The endpoints.
impl Authorized<'_> {
    pub async fn link_token(&self) -> Result<LinkToken> {
        self.post("/v1/link-tokens", &()).await
    }

    pub async fn sync(&self, body: &SyncRequest) -> Result<SyncResponse> {
        self.post("/v1/sync", body).await
    }

    pub async fn devices(&self) -> Result<DeviceList> {
        self.get("/v1/devices").await
    }

    pub async fn revoke_device(&self, device: DeviceId) -> Result<()> {
        self.delete(&format!("/v1/devices/{device}")).await
    }

    pub async fn delete_account(&self) -> Result<()> {
        self.delete("/v1/account").await
    }

    pub async fn facilitator_status(&self) -> Result<FacilitatorStatus> {
        self.get("/v1/account/facilitator").await
    }

    pub async fn enrol_facilitator(&self, body: &FacilitatorCode) -> Result<FacilitatorStatus> {
        self.post("/v1/account/facilitator", body).await
    }

    pub async fn upload_key_packages(
        &self,
        body: &UploadKeyPackages,
    ) -> Result<UploadedKeyPackages> {
        self.post("/v1/key-packages", body).await
    }

    pub async fn key_package_count(&self) -> Result<KeyPackageCount> {
        self.get("/v1/key-packages/count").await
    }

    pub async fn claim_key_packages(
        &self,
        devices: &[DeviceId],
        join_request: Option<JoinRequestRef>,
        cipher_suite: u16,
    ) -> Result<ClaimedKeyPackages> {
        let body = ClaimKeyPackages {
            device_ids: devices.to_vec(),
            join_request,
            cipher_suite: Some(cipher_suite),
        };
        self.post("/v1/key-packages/claim", &body).await
    }

    pub async fn create_circle(&self, body: &CreateCircle) -> Result<Circle> {
        self.post("/v1/circles", body).await
    }

    pub async fn circle(&self, circle: &CircleId) -> Result<Circle> {
        self.get(&circle_path(circle, "")).await
    }

    pub async fn post_commit(&self, circle: &CircleId, bundle: &CommitBundle) -> Result<Accepted> {
        self.post(&circle_path(circle, "/commits"), bundle).await
    }

    pub async fn send_message(&self, circle: &CircleId, body: &SendMessage) -> Result<Accepted> {
        self.post(&circle_path(circle, "/messages"), body).await
    }

    pub async fn group_info(&self, circle: &CircleId) -> Result<GroupInfo> {
        self.get(&circle_path(circle, "/group-info")).await
    }

    pub async fn call(&self, circle: &CircleId) -> Result<CallAccess> {
        self.post(&circle_path(circle, "/call"), &()).await
    }

    pub async fn push_services(&self) -> Result<PushServices> {
        self.get("/v1/push/services").await
    }

    pub async fn put_push_target(&self, target: &PushTarget) -> Result<PushStatus> {
        self.api
            .put("/v1/devices/current/push", &self.token, target)
            .await
    }

    pub async fn push_status(&self) -> Result<PushStatus> {
        self.get("/v1/devices/current/push").await
    }

    pub async fn delete_push_target(&self) -> Result<()> {
        self.delete("/v1/devices/current/push").await
    }

    pub async fn snapshot(&self, circle: &CircleId) -> Result<Snapshot> {
        self.get(&circle_path(circle, "/snapshot")).await
    }

    pub async fn put_snapshot(
        &self,
        circle: &CircleId,
        body: &PutSnapshot,
    ) -> Result<SnapshotWritten> {
        let path = circle_path(circle, "/snapshot");
        self.api.put(&path, &self.token, body).await
    }

    pub async fn create_invite(&self, circle: &CircleId, body: &CreateInvite) -> Result<Invite> {
        self.post(&circle_path(circle, "/invites"), body).await
    }

    pub async fn revoke_invite(&self, circle: &CircleId, invite: Uuid) -> Result<()> {
        let rest = format!("/invites/{invite}");
        self.delete(&circle_path(circle, &rest)).await
    }

    pub async fn invites(&self, circle: &CircleId) -> Result<InviteList> {
        self.get(&circle_path(circle, "/invites")).await
    }

    pub async fn redeem_invite(&self, body: &RedeemInvite) -> Result<JoinRequestCreated> {
        self.post("/v1/invites/redeem", body).await
    }

    pub async fn join_requests(&self, circle: &CircleId) -> Result<JoinRequestList> {
        self.get(&circle_path(circle, "/join-requests")).await
    }

    pub async fn decline_join_request(&self, circle: &CircleId, request: Uuid) -> Result<()> {
        let rest = format!("/join-requests/{request}");
        self.delete(&circle_path(circle, &rest)).await
    }
}
