//! Reading a circle's log: merging commits, decrypting messages, moving the
//! cursor, acknowledging. And the driver for what that leaves to do.
//!
//! Processing never sends or commits by itself. It returns [`FollowUp`]s —
//! "someone joined: share our profile", "others committed: check the tree
//! against the roster" — and [`Client::drive`] runs them one after another.
//! A follow-up may find more work (a commit races, catching up finds another
//! join); it goes on the same queue. Nothing recurses.

use crate::messages::Message;
use crate::store::Gone;
use crate::{Client, ClientError, Result, load};
use hearth_protocol::circles::{EntryKind, LogEntry};
use hearth_protocol::content::Content;
use hearth_protocol::key_packages::KeyPackageCount;
use hearth_protocol::mls::{self as profile, MlsError, Received};
use hearth_protocol::sync::{SyncCursor, SyncRequest};
use hearth_protocol::{CircleId, DeviceId, ErrorCode};
use openmls::prelude::OpenMlsProvider as _;
use std::collections::{HashMap, VecDeque};

/// At most this many follow-ups per driven operation: a circle that keeps
/// changing faster than this is reported as `Contended`.
const MAX_FOLLOW_UPS: usize = 64;

/// Work that processing the log leaves for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FollowUp {
    /// Someone joined (or we did): tell the circle who this is.
    ShareProfile(CircleId),
    /// Others committed: this client removes MLS leaves of devices that left
    /// the roster.
    Reconcile(CircleId),
    /// Someone joined (by anyone's commit) or the calendar changed: a
    /// facilitator's client rewrites the circle's schedule snapshot at the
    /// current epoch.
    WriteSnapshot(CircleId),
    /// This account may have devices that are not in the circle yet (a
    /// device linked since): this device adds them.
    AddOwnDevices(CircleId),
}

impl FollowUp {
    /// The circle it concerns.
    pub fn circle(&self) -> &CircleId {
        match self {
            Self::ShareProfile(circle)
            | Self::Reconcile(circle)
            | Self::WriteSnapshot(circle)
            | Self::AddOwnDevices(circle) => circle,
        }
    }
}

/// A queue of follow-ups without repeats.
#[derive(Debug, Default)]
pub(crate) struct FollowUps(VecDeque<FollowUp>);

impl FollowUps {
    /// Queues one, unless it is queued already.
    pub fn push(&mut self, follow_up: FollowUp) {
        if !self.0.contains(&follow_up) {
            self.0.push_back(follow_up);
        }
    }

    /// Queues all of `other`'s.
    pub fn extend(&mut self, other: FollowUps) {
        for follow_up in other.0 {
            self.push(follow_up);
        }
    }

    /// Whether none are queued.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps only those for which `keep` holds.
    pub fn retain(&mut self, keep: impl FnMut(&FollowUp) -> bool) {
        self.0.retain(keep);
    }
}

/// What catching up with a circle brought.
#[derive(Debug, Default)]
pub(crate) struct CaughtUp {
    /// New messages, in order, stored.
    pub messages: Vec<Message>,
    /// Calendar items worth telling the user of (a series, a change, the
    /// agreement, a check-in prompt), in order, stored.
    pub calendar: Vec<Message>,
    /// The group's members once processed.
    pub members: Vec<DeviceId>,
    /// Messages that could not be decrypted, passed over.
    pub undecryptable: Vec<u64>,
    /// A commit would not process: what came before it is stored and the
    /// cursor stands just before it; the caller rejoins.
    pub out_of_step: bool,
    /// What is left to do.
    pub follow_ups: FollowUps,
}

/// Whether this device is among the circle's facilitators as it remembers
/// them (no request).
fn facilitating(s: &crate::State<'_>, circle: &CircleId) -> Result<bool> {
    let Some(me) = s.store.device()? else {
        return Ok(false);
    };
    Ok(s.store.facilitators(circle)?.contains(&me.device_id))
}

/// Whether a calendar item is worth telling the user of: a series, a
/// change, the agreement, a check-in prompt.
pub(crate) fn notable(content: &Content) -> bool {
    matches!(
        content,
        Content::SessionSeries { .. }
            | Content::SessionChange { .. }
            | Content::Agreement { .. }
            | Content::CheckInPrompt { .. }
    )
}

/// What an entry processed earlier left in the store, added to `caught` as
/// if it had been processed now.
fn stored(
    s: &crate::State<'_>,
    circle: &CircleId,
    entry: &LogEntry,
    caught: &mut CaughtUp,
) -> Result<()> {
    caught
        .messages
        .extend(s.store.history_at(circle, entry.seq)?);
    let before = entry.seq.saturating_sub(1);
    for item in s.store.calendar_items_between(circle, before, entry.seq)? {
        if notable(&item.content) {
            caught.calendar.push(Message {
                seq: item.seq,
                sender: item.sender,
                envelope: hearth_protocol::content::Envelope::new(item.content),
                received_at: entry.received_at,
            });
        }
    }
    Ok(())
}

/// What a sync brought, across circles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Synced {
    /// Circles this device joined (Welcomes accepted).
    pub joined: Vec<CircleId>,
    /// New messages, per circle, in order.
    pub messages: Vec<(CircleId, Vec<Message>)>,
    /// Circles this device turned out to be removed from (each also a
    /// [`crate::Event::Removed`] notice).
    pub removed: Vec<CircleId>,
    /// Calendar items worth telling the user of, per circle, in order.
    pub calendar: Vec<(CircleId, Vec<Message>)>,
    /// This device's KeyPackage pool on the server, after any top-up.
    pub key_packages: Option<KeyPackageCount>,
    /// Whether every circle was read to its end (false when a deadline
    /// stopped it first).
    pub complete: bool,
    /// The server was restored from a backup since this device last synced
    /// (also an [`crate::Event::Restored`] notice).
    pub restored: bool,
}

impl Synced {
    fn add(&mut self, circle: &CircleId, caught: CaughtUp) {
        fn into(
            lists: &mut Vec<(CircleId, Vec<Message>)>,
            circle: &CircleId,
            messages: Vec<Message>,
        ) {
            if messages.is_empty() {
                return;
            }
            match lists.iter_mut().find(|(c, _)| c == circle) {
                Some((_, known)) => known.extend(messages),
                None => lists.push((circle.clone(), messages)),
            }
        }
        into(&mut self.messages, circle, caught.messages);
        into(&mut self.calendar, circle, caught.calendar);
    }
}

/// Where this device stands in a circle it follows.
struct Standing {
    /// What it processed.
    cursor: u64,
    /// Its group's members; `None` when the group is missing.
    members: Option<Vec<DeviceId>>,
}

/// The setting that holds the Welcomes processed and not yet reported.
const WELCOMES_DONE: &str = "welcomes-done";

/// The Welcomes processed and not yet reported, as stored.
fn welcomes_done(store: &crate::store::Store) -> Result<Vec<uuid::Uuid>> {
    Ok(store
        .setting(WELCOMES_DONE)?
        .unwrap_or_default()
        .split(',')
        .filter_map(|id| uuid::Uuid::try_parse(id).ok())
        .collect())
}

fn set_welcomes_done(store: &crate::store::Store, ids: &[uuid::Uuid]) -> Result<()> {
    let text: Vec<String> = ids.iter().map(ToString::to_string).collect();
    store.set_setting(WELCOMES_DONE, &text.join(","))
}

/// The upkeep a sync's answer calls for, circle by circle, decided without
/// a request: leaves of departed devices are removed only where the MLS
/// group holds more devices than the roster (whatever commits came in), and
/// this account's devices are added only where one is missing from the
/// group.
fn upkeep(
    follow_ups: &mut FollowUps,
    settled: &[(CircleId, u32)],
    devices: &[DeviceId],
    members: &HashMap<CircleId, Vec<DeviceId>>,
) {
    for (circle, roster_size) in settled {
        let Some(members) = members.get(circle) else {
            continue;
        };
        let in_group = u32::try_from(members.len()).unwrap_or(u32::MAX);
        if in_group > *roster_size {
            follow_ups.push(FollowUp::Reconcile(circle.clone()));
        } else {
            follow_ups.retain(|f| *f != FollowUp::Reconcile(circle.clone()));
        }
        if devices.iter().any(|d| !members.contains(d)) {
            follow_ups.push(FollowUp::AddOwnDevices(circle.clone()));
        }
    }
}

/// The `settings` key of the server's log generation last seen.
const GENERATION_SETTING: &str = "log_generation";

/// At most this many sync requests per catch-up: a backlog longer than this
/// many pages per circle is read on the next.
const MAX_ROUNDS: usize = 64;

impl Client {
    /// Fetches everything new in every circle in one request (more only for
    /// long backlogs, or to read circles a Welcome just admitted to): accepts
    /// Welcomes, merges commits, decrypts and stores messages, then does the
    /// upkeep the answer calls for — sharing this member's profile with
    /// newcomers, adding this account's devices that are not in a circle yet,
    /// removing leaves of devices that left a roster, topping up KeyPackages.
    /// What this device processed is acknowledged with its next sync.
    /// Messages waiting in the outbox go out first.
    pub async fn sync_all(&self) -> Result<Synced> {
        if let Err(err) = self.flush_outbox().await
            && !err.is_retryable()
        {
            return Err(err);
        }
        let circles = self.circles().await?;
        let (synced, follow_ups) = self.sync_rounds(circles, true, None).await?;
        self.handed(&synced).await?;
        self.drive(follow_ups).await?;
        Ok(synced)
    }

    /// Notes that the app has been handed what a sync brought, so that
    /// `notifications` (in this process or another) does not show it again.
    async fn handed(&self, synced: &Synced) -> Result<()> {
        let last: Vec<(CircleId, u64)> = synced
            .messages
            .iter()
            .chain(&synced.calendar)
            .filter_map(|(circle, messages)| {
                messages
                    .iter()
                    .map(|m| m.seq)
                    .max()
                    .map(|seq| (circle.clone(), seq))
            })
            .collect();
        self.handed_up_to(last).await
    }

    /// Notes that the app has been handed each circle's messages up to a seq.
    pub(crate) async fn handed_up_to(&self, last: Vec<(CircleId, u64)>) -> Result<()> {
        if last.is_empty() {
            return Ok(());
        }
        self.with(move |s| {
            for (circle, seq) in &last {
                s.store.set_shown(circle, *seq)?;
            }
            Ok(())
        })
        .await
    }

    /// A sync that names no circle: Welcomes and the logs of the circles
    /// they admit to.
    pub(crate) async fn sync_welcomes(&self) -> Result<Synced> {
        let (synced, follow_ups) = self.sync_rounds(Vec::new(), true, None).await?;
        self.drive(follow_ups).await?;
        Ok(synced)
    }

    /// [`Client::sync_all`] for one circle (Welcomes are left waiting).
    /// Returns its new messages.
    ///
    /// A circle this device was removed from answers
    /// [`ClientError::RemovedFromCircle`] (once noticed, also as
    /// [`crate::Event::Removed`]); its history stays readable.
    pub async fn sync(&self, circle: &CircleId) -> Result<Vec<Message>> {
        let caught = self.catch_up(circle).await?;
        let last = caught
            .messages
            .iter()
            .chain(&caught.calendar)
            .map(|m| m.seq)
            .max();
        self.handed_up_to(last.map(|seq| (circle.clone(), seq)).into_iter().collect())
            .await?;
        self.drive(caught.follow_ups).await?;
        Ok(caught.messages)
    }

    /// Runs follow-ups until none are left.
    pub(crate) async fn drive(&self, mut work: FollowUps) -> Result<()> {
        let mut budget = MAX_FOLLOW_UPS;
        while let Some(next) = work.0.pop_front() {
            budget = budget.checked_sub(1).ok_or(ClientError::Contended)?;
            let more = match next {
                FollowUp::ShareProfile(circle) => self.share_profile(&circle).await?,
                FollowUp::Reconcile(circle) => self.reconcile(&circle).await?,
                FollowUp::WriteSnapshot(circle) => self.write_snapshot(&circle).await?,
                FollowUp::AddOwnDevices(circle) => self.add_own_devices(&circle).await?,
            };
            work.extend(more);
        }
        Ok(())
    }

    /// Reads what is new in one circle (one sync request, more for long
    /// backlogs) and processes it. A device whose MLS state is missing or out
    /// of step rejoins by external commit and reads on from there.
    pub(crate) async fn catch_up(&self, circle: &CircleId) -> Result<CaughtUp> {
        let circle_id = circle.clone();
        let gone = self.with(move |s| s.store.gone(&circle_id)).await?;
        match gone {
            Some(Gone::Removed) => return Err(ClientError::RemovedFromCircle),
            Some(Gone::Left) => return Err(ClientError::LeftCircle),
            None => {}
        }
        let (mut synced, follow_ups) = self.sync_rounds(vec![circle.clone()], false, None).await?;
        if synced.removed.contains(circle) {
            return Err(ClientError::RemovedFromCircle);
        }
        let of_circle = |lists: &mut Vec<(CircleId, Vec<Message>)>| {
            lists
                .iter_mut()
                .find(|(c, _)| c == circle)
                .map(|(_, m)| std::mem::take(m))
                .unwrap_or_default()
        };
        Ok(CaughtUp {
            messages: of_circle(&mut synced.messages),
            calendar: of_circle(&mut synced.calendar),
            follow_ups,
            ..CaughtUp::default()
        })
    }

    /// Where this device stands in each circle, read in one step: its
    /// cursor and its group's members (`None` when the group is missing:
    /// the caller rejoins); `None` for a circle it left or was removed from.
    async fn standings(&self, circles: Vec<CircleId>) -> Result<Vec<(CircleId, Option<Standing>)>> {
        self.with(move |s| {
            circles
                .into_iter()
                .map(|circle| {
                    if s.store.gone(&circle)?.is_some() {
                        return Ok((circle, None));
                    }
                    let cursor = s.store.cursor(&circle)?.ok_or(ClientError::UnknownCircle)?;
                    let members = load(s, &circle).ok().map(|g| profile::members(&g));
                    Ok((circle, Some(Standing { cursor, members })))
                })
                .collect()
        })
        .await
    }

    /// Sync requests until the named circles are read to their ends: each
    /// request carries the cursors (its acknowledgements) and the Welcomes
    /// processed since the last; the next names only the circles with more
    /// to read, just joined, or just rejoined. With `welcomes`, Welcomes are
    /// accepted. No round starts after `deadline`. Returns what came and the
    /// upkeep it calls for.
    pub(crate) async fn sync_rounds(
        &self,
        mut names: Vec<CircleId>,
        welcomes: bool,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<(Synced, FollowUps)> {
        let mut synced = Synced::default();
        let mut follow_ups = FollowUps::default();
        let mut pool = None;
        let mut devices = Vec::new();
        let mut settled = Vec::new();
        // Each circle's members as last seen: for upkeep, and to pass over
        // an empty page without loading the group again.
        let mut members: HashMap<CircleId, Vec<DeviceId>> = HashMap::new();
        for _ in 0..MAX_ROUNDS {
            let mut cursors = Vec::new();
            for (circle, standing) in self.standings(std::mem::take(&mut names)).await? {
                let after = match standing {
                    None => {
                        synced.removed.push(circle);
                        continue;
                    }
                    Some(Standing {
                        cursor,
                        members: Some(of_group),
                    }) => {
                        members.insert(circle.clone(), of_group);
                        cursor
                    }
                    // The group is missing: rejoin, and read on from there.
                    Some(Standing { members: None, .. }) => match self.rejoin(&circle).await {
                        Ok(seq) => seq,
                        Err(err) if err.code() == Some(ErrorCode::NotFound) => {
                            self.gone(&circle, Gone::Removed).await?;
                            synced.removed.push(circle);
                            continue;
                        }
                        Err(err) => return Err(err),
                    },
                };
                cursors.push(SyncCursor {
                    circle_id: circle,
                    after,
                });
            }
            let mut asked: Vec<CircleId> = cursors.iter().map(|c| c.circle_id.clone()).collect();
            let welcomes_done = self.welcomes_to_report().await?;
            let request = SyncRequest {
                cursors,
                welcomes_done,
                limit: None,
            };
            let answer = self.authorized().await?.sync(&request).await?;
            synced.restored |= self.generation_seen(&answer.generation).await?;
            self.welcomes_reported(request.welcomes_done).await?;
            for circle in answer.removed {
                self.gone(&circle, Gone::Removed).await?;
                synced.removed.push(circle);
            }
            if welcomes && !answer.welcomes.is_empty() {
                let ids = answer.welcomes.iter().map(|w| w.welcome_id).collect();
                let (joined, more) = self.join_welcomes(answer.welcomes).await?;
                self.welcomes_processed(ids).await?;
                follow_ups.extend(more);
                // Their logs come with the answer; one that did not is read
                // next round.
                for circle in &joined {
                    if !answer.circles.iter().any(|c| c.circle_id == *circle) {
                        names.push(circle.clone());
                    }
                }
                asked.extend(joined.iter().cloned());
                synced.joined.extend(joined);
            }
            for page in answer.circles {
                let circle = page.circle_id.clone();
                // The log of a circle whose Welcome this call left waiting.
                if !asked.contains(&circle) {
                    continue;
                }
                if page.entries.is_empty() && members.contains_key(&circle) {
                    settled.push((circle, page.roster_size));
                    continue;
                }
                match self.process_entries(&circle, page.entries, false).await {
                    Ok(mut processed) => {
                        follow_ups.extend(std::mem::take(&mut processed.follow_ups));
                        members.insert(circle.clone(), std::mem::take(&mut processed.members));
                        synced.add(&circle, processed);
                        if page.more {
                            names.push(circle);
                        } else {
                            settled.push((circle, page.roster_size));
                        }
                    }
                    Err(ClientError::OutOfStep) => {
                        self.rejoin(&circle).await?;
                        names.push(circle);
                    }
                    Err(err) => return Err(err),
                }
            }
            pool = Some(answer.key_packages);
            devices = answer.devices;
            if names.is_empty() || deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                break;
            }
        }
        synced.complete = names.is_empty();
        upkeep(&mut follow_ups, &settled, &devices, &members);
        if let Some(pool) = pool {
            synced.key_packages = Some(self.top_up_from(pool).await?);
        }
        Ok((synced, follow_ups))
    }

    /// Compares the server's log generation with the one last seen, and
    /// keeps it: true (and an [`crate::Event::Restored`] notice) when it
    /// changed, i.e. the server was restored from a backup since. The first
    /// one seen, or none (an older server), changes nothing.
    pub(crate) async fn generation_seen(&self, generation: &str) -> Result<bool> {
        let known = |cached: &Option<String>| cached.as_deref() == Some(generation);
        if generation.is_empty() || self.generation.lock().is_ok_and(|c| known(&c)) {
            return Ok(false);
        }
        let now = generation.to_owned();
        let changed = self
            .with(move |s| {
                let before = s.store.setting(GENERATION_SETTING)?;
                if before.as_deref() != Some(now.as_str()) {
                    s.store.set_setting(GENERATION_SETTING, &now)?;
                }
                Ok(before.is_some_and(|before| before != now))
            })
            .await?;
        if let Ok(mut cached) = self.generation.lock() {
            *cached = Some(generation.to_owned());
        }
        if changed {
            self.notify(crate::Event::Restored);
        }
        Ok(changed)
    }

    /// The Welcomes processed and not yet reported to the server (kept in
    /// the store, so a process that ends reports them in the next one's
    /// first sync).
    async fn welcomes_to_report(&self) -> Result<Vec<uuid::Uuid>> {
        self.with(|s| welcomes_done(s.store)).await
    }

    /// Forgets Welcomes the server has now heard of (nothing written when
    /// there were none).
    async fn welcomes_reported(&self, ids: Vec<uuid::Uuid>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.with(move |s| {
            let left: Vec<_> = welcomes_done(s.store)?
                .into_iter()
                .filter(|id| !ids.contains(id))
                .collect();
            set_welcomes_done(s.store, &left)
        })
        .await
    }

    /// Notes processed Welcomes, for the next sync to report.
    async fn welcomes_processed(&self, ids: Vec<uuid::Uuid>) -> Result<()> {
        self.with(move |s| {
            let mut done = welcomes_done(s.store)?;
            done.extend(ids);
            set_welcomes_done(s.store, &done)
        })
        .await
    }

    /// Processes log entries in order: merges commits, decrypts messages and
    /// applies their content, moves the cursor. Entries at or below the
    /// stored cursor were processed already (by `sync` or the live stream,
    /// in this process or another on the same directory): they are not
    /// processed again, and their messages come from the store. So the two
    /// can run side by side, and a message either one took is still handed
    /// to the other (the same message twice, when both hand it to the app,
    /// has the same circle and seq). A commit that will not process stops
    /// it with `OutOfStep`, what came before it stored. With `hand`, the
    /// caller hands what comes back to the app (the live stream): the same
    /// step notes it shown, so `notifications` does not show it again.
    pub(crate) async fn process_entries(
        &self,
        circle: &CircleId,
        entries: Vec<LogEntry>,
        hand: bool,
    ) -> Result<CaughtUp> {
        let circle_id = circle.clone();
        let newest = entries.iter().map(|e| e.seq).max();
        let caught = self
            .with(move |s| {
                let me = s
                    .store
                    .device()?
                    .ok_or(ClientError::NotRegistered)?
                    .device_id;
                let done = s.store.cursor(&circle_id)?.unwrap_or(0);
                let mut group = load(s, &circle_id)?;
                let mut caught = CaughtUp::default();
                let mut last = None;
                let mut new_epoch = false;
                for entry in entries {
                    if entry.seq <= done {
                        // Processed already, by this process or another one on
                        // the same directory: its message key is spent, so what
                        // it said is read from the store, never decrypted again.
                        if entry.sender != me {
                            stored(s, &circle_id, &entry, &mut caught)?;
                        }
                        continue;
                    }
                    // Our own commits were merged when accepted; our own messages
                    // were stored when sent. A commit of ours at the group's own
                    // epoch was not merged: its answer was lost. If it is still
                    // pending, the log says the server took it: merge it now;
                    // otherwise this device is out of step.
                    if entry.sender == me {
                        if entry.kind == EntryKind::Commit && entry.epoch == group.epoch().as_u64()
                        {
                            if group.pending_commit().is_none() {
                                caught.out_of_step = true;
                                break;
                            }
                            group
                                .merge_pending_commit(&s.provider)
                                .map_err(profile::failed("merging our commit"))?;
                            new_epoch = true;
                        }
                        last = Some(entry.seq);
                        continue;
                    }
                    let received = match profile::receive(
                        &mut group,
                        &s.provider,
                        entry.ciphertext.as_slice(),
                    ) {
                        Ok(received) => received,
                        // A commit we cannot process means our state no longer
                        // matches the circle's: stop here; the caller rejoins.
                        Err(MlsError::Unprocessable(_)) if entry.kind == EntryKind::Commit => {
                            caught.out_of_step = true;
                            break;
                        }
                        // A message we cannot decrypt (of an epoch too far
                        // behind, say): pass over it, and say so.
                        Err(MlsError::Unprocessable(_)) => {
                            caught.undecryptable.push(entry.seq);
                            last = Some(entry.seq);
                            continue;
                        }
                        Err(err) => return Err(err.into()),
                    };
                    last = Some(entry.seq);
                    match received {
                        Received::Application { plaintext, sender } => {
                            let mut message = Message::received(&entry, &plaintext);
                            // MLS says who signed it; the server's claim is only
                            // a hint.
                            message.sender = sender.unwrap_or(message.sender);
                            let notable =
                                notable(&message.envelope.content).then(|| message.clone());
                            caught
                                .messages
                                .extend(crate::content::apply(s.store, &circle_id, message)?);
                            caught.calendar.extend(notable);
                        }
                        Received::Commit { added_members } => {
                            new_epoch = true;
                            if added_members {
                                caught
                                    .follow_ups
                                    .push(FollowUp::ShareProfile(circle_id.clone()));
                                // Whoever added them (a member bringing in a new
                                // phone, say), the newcomers need the calendar at
                                // the new epoch: a facilitator's client writes it.
                                if facilitating(s, &circle_id)? {
                                    caught
                                        .follow_ups
                                        .push(FollowUp::WriteSnapshot(circle_id.clone()));
                                }
                            }
                            caught
                                .follow_ups
                                .push(FollowUp::Reconcile(circle_id.clone()));
                        }
                        Received::Other => {}
                    }
                }
                if let Some(last) = last {
                    s.store.set_cursor(&circle_id, last)?;
                }
                if hand && let Some(newest) = newest {
                    let processed = last.unwrap_or(done).max(done);
                    s.store.set_shown(&circle_id, newest.min(processed))?;
                }
                if new_epoch {
                    s.calls
                        .rekey(circle_id.as_bytes(), &group, s.provider.crypto())?;
                }
                caught.members = profile::members(&group);
                Ok(caught)
            })
            .await?;
        for seq in &caught.undecryptable {
            self.notify(crate::Event::Undecryptable {
                circle_id: circle.clone(),
                seq: *seq,
            });
        }
        if caught.out_of_step {
            return Err(ClientError::OutOfStep);
        }
        Ok(caught)
    }

    /// Any member's client keeps the MLS group in line with the server's
    /// roster: leaves of devices that left the roster (a revoked device, a
    /// member who left, an account that was deleted) are removed with a
    /// commit, so they stop deriving the circle's keys (messages and call
    /// media alike) as soon as anyone in the circle is online, not when a
    /// facilitator next is. Such a commit declares no roster change (the
    /// devices are off the roster already), so the server has nothing to
    /// authorize; members see the removals inside MLS. When several members
    /// race, one commit wins and the others find nothing left to remove.
    async fn reconcile(&self, circle: &CircleId) -> Result<FollowUps> {
        let seen = self.authorized().await?.circle(circle).await?;
        let gone: Vec<DeviceId> = self
            .members(circle)
            .await?
            .into_iter()
            .filter(|d| !seen.roster.iter().any(|r| r.device_id == *d))
            .collect();
        if gone.is_empty() {
            return Ok(FollowUps::default());
        }
        self.remove(circle, gone, false).await
    }
}
