//! Circles: creation, the roster, commit bundles, the message log,
//! acknowledgements, GroupInfo and Welcomes.
//!
//! To anyone not on a circle's roster, a real circle and a made-up id answer
//! identically: 404 `not_found`.

use crate::auth::Authenticated;
use crate::crypto;
use crate::error::{ApiError, RosterRule};
use crate::framing::{self, CommitSender};
use crate::hub::Event;
use crate::json::Body;
use crate::startup::AppState;
use crate::storage::{
    AddedDevice, AppendOutcome, CircleRecord, CommitOutcome, NewCircle, NewCommit, NewMessage,
    StorageError, WakeFor,
};
use crate::telemetry::redact;
use actix_web::{HttpResponse, web};
use hearth_protocol::circles::{
    Accepted, Ack, Circle, CircleList, CommitBundle, CreateCircle, GroupInfo, LogPage,
    PendingWelcome, Role, RosterEntry, SendMessage, WelcomeList,
};
use hearth_protocol::{Base64Bytes, CircleId, DeviceId, ErrorBody};
use serde::Deserialize;
use std::collections::HashSet;

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn to_wire(circle: CircleRecord) -> Circle {
    Circle {
        circle_id: circle.id,
        epoch: unsigned(circle.epoch),
        last_seq: unsigned(circle.last_seq),
        max_members: u32::try_from(circle.max_members).unwrap_or_default(),
        retention_secs: unsigned(circle.retention_secs),
        roster: circle
            .roster
            .into_iter()
            .map(|r| RosterEntry {
                device_id: r.device_id,
                role: r.role,
            })
            .collect(),
    }
}

/// The circle, if the caller is its facilitator: 404 to non-members, 403
/// `not_facilitator` to members. `action` completes "only a facilitator of
/// this circle may ...".
pub(crate) async fn facilitated(
    state: &AppState,
    circle_id: &CircleId,
    auth: &Authenticated,
    action: &'static str,
) -> Result<CircleRecord, ApiError> {
    let circle = membership(state, circle_id, auth).await?;
    if circle
        .member(auth.device_id)
        .is_some_and(|m| m.role == Role::Facilitator)
    {
        Ok(circle)
    } else {
        Err(ApiError::NotFacilitator(action))
    }
}

/// The circle, if the caller is on its roster; otherwise the same 404 as for
/// a circle that does not exist.
pub(crate) async fn membership(
    state: &AppState,
    circle_id: &CircleId,
    auth: &Authenticated,
) -> Result<CircleRecord, ApiError> {
    state
        .storage
        .circle(circle_id)
        .await?
        .filter(|c| c.member(auth.device_id).is_some())
        .ok_or(ApiError::NotFound)
}

/// What `read` returns, if the caller is on the circle's roster after it
/// ran. The roster is checked after the read, never before: each statement
/// sees its own snapshot, so a check made first could pass a device that a
/// commit then removes, and the read would hand it what was written for the
/// circle after its removal.
pub(crate) async fn read_as_member<T>(
    state: &AppState,
    circle_id: &CircleId,
    auth: &Authenticated,
    read: impl Future<Output = Result<T, StorageError>>,
) -> Result<T, ApiError> {
    let value = read.await?;
    membership(state, circle_id, auth).await?;
    Ok(value)
}

fn bounded(bytes: &Base64Bytes, limit: usize, what: &'static str) -> Result<(), ApiError> {
    if bytes.as_slice().len() > limit {
        tracing::debug!(what, "oversized content refused");
        return Err(ApiError::PayloadTooLarge { limit });
    }
    Ok(())
}

/// Registers an MLS group the caller created as a circle; the caller becomes
/// its facilitator at epoch 0.
#[utoipa::path(post, path = "/v1/circles", tag = "circles", security(("bearer" = [])),
    request_body = CreateCircle, responses(
    (status = 201, description = "Created", body = Circle),
    (status = 400, description = "Malformed body", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 409, description = "A circle with this id exists", body = ErrorBody),
    (status = 413, description = "GroupInfo too large", body = ErrorBody),
    (status = 422, description = "Member limit or retention out of range (invalid_request), or group_info is not this group's GroupInfo at epoch 0 (mls_framing)", body = ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    auth: Authenticated,
    body: Body<CreateCircle>,
) -> Result<HttpResponse, ApiError> {
    let limits = &state.config.delivery;
    let body = body.into_inner();
    let max_members = body.max_members.unwrap_or(limits.default_max_members);
    if max_members == 0 || max_members > limits.max_members_bound {
        return Err(ApiError::Invalid(format!(
            "max_members must be between 1 and {}",
            limits.max_members_bound
        )));
    }
    let retention = body.retention_secs.unwrap_or(limits.default_retention_secs);
    if !(60..=limits.max_retention_secs).contains(&retention) {
        return Err(ApiError::Invalid(format!(
            "retention_secs must be between 60 and {}",
            limits.max_retention_secs
        )));
    }
    if let Some(info) = &body.group_info {
        bounded(info, limits.max_ciphertext_bytes, "group_info")?;
        framing::group_info(info.as_slice(), &body.circle_id, 0)?;
    }
    let circle = NewCircle {
        id: body.circle_id.clone(),
        max_members: i64::from(max_members),
        retention_secs: signed(retention),
        group_info: body.group_info.map(Base64Bytes::into_inner),
        created_at: crate::now(),
    };
    state.storage.create_circle(&circle, auth.device_id).await?;
    tracing::info!(circle = %redact(&circle.id), "circle created");
    let created = membership(&state, &circle.id, &auth).await?;
    Ok(HttpResponse::Created().json(to_wire(created)))
}

/// The circles the calling device is on.
#[utoipa::path(get, path = "/v1/circles", tag = "circles", security(("bearer" = [])), responses(
    (status = 200, description = "The caller's circles", body = CircleList),
    (status = 401, description = "Not authenticated", body = ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let circles = state.storage.device_circles(auth.device_id).await?;
    Ok(HttpResponse::Ok().json(CircleList {
        circles: circles.into_iter().map(to_wire).collect(),
    }))
}

/// A circle: epoch, policy and roster. Members only.
#[utoipa::path(get, path = "/v1/circles/{circle_id}", tag = "circles", security(("bearer" = [])),
    params(("circle_id" = CircleId, Path, description = "The MLS group id, base64url")),
    responses(
    (status = 200, description = "The circle", body = Circle),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 404, description = "No such circle, or the caller is not on it", body = ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<CircleId>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(to_wire(membership(&state, &path, &auth).await?)))
}

/// Checks a commit bundle against the roster of the epoch it was made in.
/// `own_devices`: every device the bundle adds or removes belongs to the
/// caller's account (a member bringing in, or retiring, its own devices).
/// `added_members`: how many of the added devices join as members (a
/// facilitator's own devices join as facilitators and take no seat).
fn check_roster_change(
    circle: &CircleRecord,
    auth: &Authenticated,
    bundle: &CommitBundle,
    own_devices: bool,
    added_members: usize,
) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    if !bundle
        .added
        .iter()
        .chain(&bundle.removed)
        .all(|d| seen.insert(*d))
    {
        return Err(RosterRule::DuplicateDevice.into());
    }
    let changes_others = !own_devices
        && (!bundle.added.is_empty() || bundle.removed.iter().any(|d| *d != auth.device_id));
    let is_facilitator = circle
        .member(auth.device_id)
        .is_some_and(|m| m.role == Role::Facilitator);
    if changes_others && !is_facilitator {
        return Err(ApiError::NotFacilitator("add or remove others"));
    }
    if bundle.added.iter().any(|d| circle.member(*d).is_some()) {
        return Err(RosterRule::DeviceOnRoster.into());
    }
    if bundle.removed.iter().any(|d| circle.member(*d).is_none()) {
        return Err(RosterRule::DeviceNotOnRoster.into());
    }
    if !bundle.added.is_empty() && bundle.welcome.is_none() {
        return Err(RosterRule::WelcomeMissing.into());
    }
    let is_member = |d: &DeviceId| circle.member(*d).is_some_and(|m| m.role == Role::Member);
    let current = circle
        .roster
        .iter()
        .filter(|r| r.role == Role::Member)
        .count();
    let leaving = bundle.removed.iter().filter(|d| is_member(d)).count();
    let after = (current + added_members).saturating_sub(leaving);
    if i64::try_from(after).unwrap_or(i64::MAX) > circle.max_members && !bundle.added.is_empty() {
        return Err(RosterRule::CircleFull.into());
    }
    Ok(())
}

/// Posts a commit with its Welcome, GroupInfo and roster change. Accepted
/// only at the circle's current epoch; of racing commits exactly one wins and
/// the others get `409 stale_epoch` with the current epoch. Also the way to
/// rejoin: an external commit at the current epoch, with no roster change.
#[utoipa::path(post, path = "/v1/circles/{circle_id}/commits", tag = "circles", security(("bearer" = [])),
    params(("circle_id" = CircleId, Path, description = "The MLS group id, base64url")),
    request_body = CommitBundle, responses(
    (status = 201, description = "Accepted", body = Accepted),
    (status = 400, description = "Malformed body", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 403, description = "not_facilitator: only a facilitator adds or removes others (anyone may add or remove devices of their own account)", body = ErrorBody),
    (status = 404, description = "No such circle, or the caller is not on it", body = ErrorBody),
    (status = 409, description = "stale_epoch: the circle moved on; the body carries current_epoch", body = ErrorBody),
    (status = 413, description = "Commit, Welcome or GroupInfo too large", body = ErrorBody),
    (status = 422, description = "The roster change breaks a roster rule: duplicate_device, device_on_roster, device_not_on_roster, unknown_device, welcome_missing, unknown_join_request, join_request_mismatch or circle_full; or the MLS does not match the request: mls_framing (commit is not a PrivateMessage commit of this group at the declared epoch, welcome not a Welcome, group_info not this group's GroupInfo at the next epoch), public_commit (a member's commit as PublicMessage); or an external commit changes others' places (invalid_request)", body = ErrorBody)))]
pub async fn commit(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<CircleId>,
    body: Body<CommitBundle>,
) -> Result<HttpResponse, ApiError> {
    let limit = state.config.delivery.max_ciphertext_bytes;
    let bundle = body.into_inner();
    bounded(&bundle.commit, limit, "commit")?;
    for part in [&bundle.welcome, &bundle.group_info].into_iter().flatten() {
        bounded(part, limit, "welcome or group_info")?;
    }
    let sender = framing::commit(bundle.commit.as_slice(), &path, bundle.epoch)?;
    if let Some(welcome) = &bundle.welcome {
        framing::welcome(welcome.as_slice())?;
    }
    if let Some(info) = &bundle.group_info {
        framing::group_info(info.as_slice(), &path, bundle.epoch.saturating_add(1))?;
    }
    if sender == CommitSender::External
        && (!bundle.added.is_empty()
            || bundle.removed.iter().any(|d| *d != auth.device_id)
            || bundle.join_request_id.is_some())
    {
        return Err(ApiError::Invalid(
            "an external commit rejoins the caller and changes nobody else's place on the roster"
                .into(),
        ));
    }
    let circle = membership(&state, &path, &auth).await?;
    if bundle.epoch != unsigned(circle.epoch) {
        return Err(ApiError::StaleEpoch {
            current_epoch: unsigned(circle.epoch),
        });
    }
    let mut own_devices = true;
    let mut own_added = HashSet::new();
    for (device, adding) in bundle
        .added
        .iter()
        .map(|d| (d, true))
        .chain(bundle.removed.iter().map(|d| (d, false)))
    {
        let record = state.storage.device(*device).await?;
        if adding && record.as_ref().is_none_or(|d| d.revoked_at.is_some()) {
            return Err(RosterRule::UnknownDevice.into());
        }
        let own = record.is_some_and(|d| d.account_id == auth.account_id);
        if own && adding {
            own_added.insert(*device);
        }
        own_devices &= own;
    }
    // A facilitator's own devices are facilitators too: one person, several
    // devices, the same role.
    let facilitating = circle
        .member(auth.device_id)
        .is_some_and(|m| m.role == Role::Facilitator);
    let role_of = |device: &DeviceId| {
        if facilitating && own_added.contains(device) {
            Role::Facilitator
        } else {
            Role::Member
        }
    };
    let added_members = bundle
        .added
        .iter()
        .filter(|d| role_of(d) == Role::Member)
        .count();
    check_roster_change(&circle, &auth, &bundle, own_devices, added_members)?;
    if let Some(request_id) = bundle.join_request_id {
        let request = state
            .storage
            .join_request(&path, request_id)
            .await?
            .ok_or(RosterRule::UnknownJoinRequest)?;
        if bundle.added.is_empty() || !bundle.added.iter().all(|d| request.device_ids.contains(d)) {
            return Err(RosterRule::JoinRequestMismatch.into());
        }
    }
    let mut added = Vec::with_capacity(bundle.added.len());
    for device in &bundle.added {
        added.push(AddedDevice {
            device_id: *device,
            role: role_of(device),
            welcome_id: crypto::random_uuid()?,
        });
    }
    let commit = NewCommit {
        sender: auth.device_id,
        epoch: signed(bundle.epoch),
        commit: bundle.commit.into_inner(),
        welcome: bundle.welcome.map(Base64Bytes::into_inner),
        group_info: bundle.group_info.map(Base64Bytes::into_inner),
        added,
        removed: bundle.removed,
        join_request: bundle.join_request_id,
        now: crate::now(),
    };
    match state.storage.apply_commit(&path, &commit).await? {
        CommitOutcome::Accepted { seq, epoch } => {
            state.publish(Event::Circle(path.clone())).await;
            state.evict(&path, &commit.removed);
            state.wake(WakeFor::Circle {
                circle: path.clone(),
                except: Some(auth.device_id),
            });
            for added in &commit.added {
                state.publish(Event::Device(added.device_id)).await;
                state.wake(WakeFor::Device(added.device_id));
            }
            Ok(HttpResponse::Created().json(Accepted {
                seq: unsigned(seq),
                epoch: unsigned(epoch),
            }))
        }
        CommitOutcome::Stale { current_epoch } => Err(ApiError::StaleEpoch {
            current_epoch: unsigned(current_epoch),
        }),
        CommitOutcome::NoCircle => Err(ApiError::NotFound),
    }
}

/// Appends an application message. Resending the same `message_id` with the
/// same bytes answers 200 with the original sequence number.
#[utoipa::path(post, path = "/v1/circles/{circle_id}/messages", tag = "circles", security(("bearer" = [])),
    params(("circle_id" = CircleId, Path, description = "The MLS group id, base64url")),
    request_body = SendMessage, responses(
    (status = 201, description = "Appended", body = Accepted),
    (status = 200, description = "Already appended earlier with the same bytes", body = Accepted),
    (status = 400, description = "Malformed body", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 404, description = "No such circle, or the caller is not on it", body = ErrorBody),
    (status = 409, description = "duplicate_message_id, or stale_epoch (outside the accepted window)", body = ErrorBody),
    (status = 413, description = "Ciphertext larger than the limit", body = ErrorBody),
    (status = 422, description = "mls_framing: ciphertext is not a PrivateMessage carrying application data for this group at the declared epoch; unpadded_message: its ciphertext is not padded (docs/PROTOCOL.md)", body = ErrorBody),
    (status = 429, description = "Sending too fast", body = ErrorBody)))]
pub async fn send(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<CircleId>,
    body: Body<SendMessage>,
) -> Result<HttpResponse, ApiError> {
    let (accepted, repeated) = append(&state, auth.device_id, &path, body.into_inner()).await?;
    Ok(if repeated {
        HttpResponse::Ok().json(accepted)
    } else {
        HttpResponse::Created().json(accepted)
    })
}

/// Appends an application message for `sender` (HTTP and WebSocket alike):
/// the answer, and whether it repeated an earlier identical send.
pub(crate) async fn append(
    state: &AppState,
    sender: DeviceId,
    circle: &CircleId,
    body: SendMessage,
) -> Result<(Accepted, bool), ApiError> {
    bounded(
        &body.ciphertext,
        state.config.delivery.max_ciphertext_bytes,
        "ciphertext",
    )?;
    framing::application(body.ciphertext.as_slice(), circle, body.epoch)?;
    state.limit_sends(&sender)?;
    let message = NewMessage {
        circle: circle.clone(),
        sender,
        message_id: body.message_id,
        epoch: signed(body.epoch),
        digest: crypto::sha256(body.ciphertext.as_slice()),
        ciphertext: body.ciphertext.into_inner(),
        now: crate::now(),
    };
    match state.appender.append(message).await? {
        AppendOutcome::Accepted { seq, epoch } => Ok((
            Accepted {
                seq: unsigned(seq),
                epoch: unsigned(epoch),
            },
            false,
        )),
        AppendOutcome::Repeated { seq, epoch } => Ok((
            Accepted {
                seq: unsigned(seq),
                epoch: unsigned(epoch),
            },
            true,
        )),
        AppendOutcome::Conflict => Err(ApiError::DuplicateMessageId),
        AppendOutcome::Stale { current_epoch } => Err(ApiError::StaleEpoch {
            current_epoch: unsigned(current_epoch),
        }),
        AppendOutcome::NotMember => Err(ApiError::NotFound),
    }
}

/// Where to start reading and how much.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Entries after this sequence number (default 0).
    #[serde(default)]
    #[param(required = false)]
    pub after: u64,
    /// At most this many (default and maximum: the page size, 100).
    pub limit: Option<u32>,
}

/// A page of the circle's log after a cursor: commits and application
/// messages in order. A device reads only what came after it joined.
#[utoipa::path(get, path = "/v1/circles/{circle_id}/messages", tag = "circles", security(("bearer" = [])),
    params(("circle_id" = CircleId, Path, description = "The MLS group id, base64url"), PageQuery),
    responses(
    (status = 200, description = "A page", body = LogPage),
    (status = 400, description = "Malformed query", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 404, description = "No such circle, or the caller is not on it", body = ErrorBody)))]
pub async fn read(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<CircleId>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    if i64::try_from(query.after).is_err() || query.limit.is_some_and(|l| i32::try_from(l).is_err())
    {
        return Err(ApiError::BadRequest("a number is out of range".into()));
    }
    let page = state.config.delivery.page_size;
    let limit = query.limit.unwrap_or(page).clamp(1, page);
    // One more than asked tells whether more follow.
    let mut records = state
        .storage
        .read_log(
            &path,
            auth.device_id,
            signed(query.after),
            i64::from(limit) + 1,
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    let more = records.len() > limit as usize;
    records.truncate(limit as usize);
    let next_after = records.last().map_or(query.after, |r| unsigned(r.seq));
    Ok(HttpResponse::Ok().json(LogPage {
        entries: records
            .into_iter()
            .map(crate::storage::LogRecord::into_entry)
            .collect(),
        next_after,
        more,
    }))
}

/// Records that the calling device processed the log up to `seq`. Entries
/// every device on the roster has acknowledged are deleted.
#[utoipa::path(post, path = "/v1/circles/{circle_id}/ack", tag = "circles", security(("bearer" = [])),
    params(("circle_id" = CircleId, Path, description = "The MLS group id, base64url")),
    request_body = Ack, responses(
    (status = 204, description = "Recorded"),
    (status = 400, description = "Malformed body", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 404, description = "No such circle, or the caller is not on it", body = ErrorBody)))]
pub async fn ack(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<CircleId>,
    body: Body<Ack>,
) -> Result<HttpResponse, ApiError> {
    if state
        .storage
        .acknowledge(&path, auth.device_id, signed(body.seq))
        .await?
    {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound)
    }
}

/// The latest GroupInfo, for a member whose state broke and who rejoins by
/// external commit.
#[utoipa::path(get, path = "/v1/circles/{circle_id}/group-info", tag = "circles", security(("bearer" = [])),
    params(("circle_id" = CircleId, Path, description = "The MLS group id, base64url")),
    responses(
    (status = 200, description = "The latest GroupInfo", body = GroupInfo),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 404, description = "No such circle, not on it, or no GroupInfo posted", body = ErrorBody)))]
pub async fn group_info(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<CircleId>,
) -> Result<HttpResponse, ApiError> {
    let info = read_as_member(&state, &path, &auth, state.storage.group_info(&path))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(GroupInfo {
        epoch: unsigned(info.epoch),
        group_info: info.group_info.into(),
    }))
}

/// Welcomes waiting for the calling device.
#[utoipa::path(get, path = "/v1/welcomes", tag = "circles", security(("bearer" = [])), responses(
    (status = 200, description = "Oldest first", body = WelcomeList),
    (status = 401, description = "Not authenticated", body = ErrorBody)))]
pub async fn welcomes(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let welcomes = state.storage.welcomes(auth.device_id).await?;
    Ok(HttpResponse::Ok().json(WelcomeList {
        welcomes: welcomes
            .into_iter()
            .map(|w| PendingWelcome {
                welcome_id: w.id,
                circle_id: w.circle_id,
                seq: unsigned(w.seq),
                epoch: unsigned(w.epoch),
                welcome: w.data.into(),
            })
            .collect(),
    }))
}

/// Acknowledges a Welcome: it is deleted.
#[utoipa::path(delete, path = "/v1/welcomes/{welcome_id}", tag = "circles", security(("bearer" = [])),
    params(("welcome_id" = uuid::Uuid, Path, description = "The Welcome")),
    responses(
    (status = 204, description = "Deleted"),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 404, description = "No such Welcome for this device", body = ErrorBody)))]
pub async fn delete_welcome(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<super::UuidSegment>,
) -> Result<HttpResponse, ApiError> {
    if state
        .storage
        .delete_welcome(auth.device_id, path.into_inner().0)
        .await?
    {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound)
    }
}
