//! Circles: the roster, commits applied as an epoch compare-and-swap, the
//! ordered log of ciphertext, acknowledgements, GroupInfo and Welcomes.

use super::Result;
use async_trait::async_trait;
use hearth_protocol::circles::{EntryKind, Role};
use hearth_protocol::{CircleId, DeviceId};
use uuid::Uuid;

/// A circle about to be created.
#[derive(Debug, Clone)]
pub struct NewCircle {
    /// The MLS group id.
    pub id: CircleId,
    /// Members besides facilitators.
    pub max_members: i64,
    /// Seconds log entries are kept at most.
    pub retention_secs: i64,
    /// GroupInfo at epoch 0.
    pub group_info: Option<Vec<u8>>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A device on a circle's roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterRecord {
    /// The device.
    pub device_id: DeviceId,
    /// Its role.
    pub role: Role,
    /// The sequence number of the commit that added it (0 for the creator);
    /// it reads only entries after this.
    pub joined_seq: i64,
    /// The highest sequence number it acknowledged.
    pub acked_seq: i64,
}

/// A stored circle with its roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircleRecord {
    /// The MLS group id.
    pub id: CircleId,
    /// The current epoch.
    pub epoch: i64,
    /// The newest log entry's sequence number.
    pub last_seq: i64,
    /// Members besides facilitators.
    pub max_members: i64,
    /// Seconds log entries are kept at most.
    pub retention_secs: i64,
    /// Who is in it.
    pub roster: Vec<RosterRecord>,
}

impl CircleRecord {
    /// The roster entry of a device, if it is on the roster.
    pub fn member(&self, device_id: DeviceId) -> Option<&RosterRecord> {
        self.roster.iter().find(|r| r.device_id == device_id)
    }
}

/// A device a commit adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddedDevice {
    /// The device.
    pub device_id: DeviceId,
    /// Its role from now on.
    pub role: Role,
    /// The id of the Welcome queued for it.
    pub welcome_id: Uuid,
}

/// A commit bundle the caller has checked against the roster of `epoch`.
#[derive(Debug, Clone)]
pub struct NewCommit {
    /// The device posting it.
    pub sender: DeviceId,
    /// The epoch it was made in; accepted only if still current.
    pub epoch: i64,
    /// The commit message.
    pub commit: Vec<u8>,
    /// The Welcome, queued for each added device.
    pub welcome: Option<Vec<u8>>,
    /// The new GroupInfo.
    pub group_info: Option<Vec<u8>>,
    /// Devices joining, each with its role and the id of its queued Welcome.
    pub added: Vec<AddedDevice>,
    /// Devices leaving.
    pub removed: Vec<DeviceId>,
    /// The join request this commit approves, consumed with it.
    pub join_request: Option<Uuid>,
    /// Unix seconds.
    pub now: i64,
}

/// What became of a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Appended at `seq`; the circle is now at `epoch`.
    Accepted {
        /// The commit's sequence number.
        seq: i64,
        /// The new epoch.
        epoch: i64,
    },
    /// Another commit got there first.
    Stale {
        /// The circle's epoch now.
        current_epoch: i64,
    },
    /// No such circle.
    NoCircle,
}

/// An application message about to be appended.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The circle it is for.
    pub circle: CircleId,
    /// The sending device.
    pub sender: DeviceId,
    /// The client's id for it.
    pub message_id: Uuid,
    /// The epoch it was encrypted in.
    pub epoch: i64,
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
    /// SHA-256 of the ciphertext, to recognise an identical resend.
    pub digest: [u8; 32],
    /// Unix seconds.
    pub now: i64,
}

/// What became of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Appended.
    Accepted {
        /// Its sequence number.
        seq: i64,
        /// The circle's epoch.
        epoch: i64,
    },
    /// The same id and bytes were accepted before, at `seq`.
    Repeated {
        /// The original sequence number.
        seq: i64,
        /// The circle's epoch.
        epoch: i64,
    },
    /// The same id was used before with other bytes.
    Conflict,
    /// The message's epoch is outside the accepted window.
    Stale {
        /// The circle's epoch now.
        current_epoch: i64,
    },
    /// The sender is not on the roster (or there is no such circle).
    NotMember,
}

/// A circle's latest GroupInfo and its epoch, read together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfoRecord {
    /// The circle's epoch now.
    pub epoch: i64,
    /// The latest GroupInfo `MLSMessage` posted (of an earlier epoch when
    /// the last commit carried none).
    pub group_info: Vec<u8>,
}

/// One stored log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Sequence number.
    pub seq: i64,
    /// Epoch sent in.
    pub epoch: i64,
    /// Commit or application message.
    pub kind: EntryKind,
    /// Sending device.
    pub sender: DeviceId,
    /// The MLS message.
    pub ciphertext: Vec<u8>,
    /// Unix seconds received.
    pub created_at: i64,
}

impl LogRecord {
    /// The entry as clients see it.
    pub fn into_entry(self) -> hearth_protocol::circles::LogEntry {
        hearth_protocol::circles::LogEntry {
            seq: u64::try_from(self.seq).unwrap_or_default(),
            epoch: u64::try_from(self.epoch).unwrap_or_default(),
            kind: self.kind,
            sender: self.sender,
            ciphertext: self.ciphertext.into(),
            received_at: self.created_at,
        }
    }
}

/// A Welcome waiting for a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WelcomeRecord {
    /// Its id.
    pub id: Uuid,
    /// The circle.
    pub circle_id: CircleId,
    /// The commit's sequence number.
    pub seq: i64,
    /// The epoch it admits to.
    pub epoch: i64,
    /// The Welcome message.
    pub data: Vec<u8>,
}

/// Circles, their log and their Welcomes.
#[async_trait]
pub trait CircleStore {
    /// Creates a circle at epoch 0 with the creator as facilitator.
    async fn create_circle(&self, circle: &NewCircle, creator: DeviceId) -> Result<()>;

    /// A circle and its roster.
    async fn circle(&self, id: &CircleId) -> Result<Option<CircleRecord>>;

    /// The circles whose roster holds the device.
    async fn device_circles(&self, device_id: DeviceId) -> Result<Vec<CircleRecord>>;

    /// Applies a commit bundle in one transaction if the circle is still at
    /// `commit.epoch`: appends the commit, bumps the epoch, applies the roster
    /// change, keeps the GroupInfo, queues the Welcomes.
    async fn apply_commit(&self, circle: &CircleId, commit: &NewCommit) -> Result<CommitOutcome>;

    /// Appends application messages in one transaction — group commit: one
    /// durable write for the lot — each judged as if it came alone:
    /// idempotent by message id, only from a device on the roster, only
    /// within `epoch_window` of the current epoch. Outcomes come back in the
    /// order given; a circle's messages take numbers in that order. The
    /// other server nodes hear of the circles that grew with the commit
    /// itself (PostgreSQL), not in a write of their own.
    async fn append_messages(
        &self,
        messages: &[NewMessage],
        epoch_window: i64,
    ) -> Result<Vec<AppendOutcome>>;

    /// Up to `limit` entries after `after` (and after the device joined).
    /// `None` when the device is not on the roster.
    async fn read_log(
        &self,
        circle: &CircleId,
        device_id: DeviceId,
        after: i64,
        limit: i64,
    ) -> Result<Option<Vec<LogRecord>>>;

    /// Up to `limit` entries after `after`, for whoever follows the circle on
    /// this node (the server's own read: no roster check).
    async fn log_entries(
        &self,
        circle: &CircleId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<LogRecord>>;

    /// Records that the device processed everything up to `seq`, then deletes
    /// the entries every device on the roster has acknowledged. False when the
    /// device is not on the roster.
    async fn acknowledge(&self, circle: &CircleId, device_id: DeviceId, seq: i64) -> Result<bool>;

    /// The latest GroupInfo of a circle, with the circle's epoch as of the
    /// same read.
    async fn group_info(&self, circle: &CircleId) -> Result<Option<GroupInfoRecord>>;

    /// Welcomes waiting for the device, oldest first.
    async fn welcomes(&self, device_id: DeviceId) -> Result<Vec<WelcomeRecord>>;

    /// Acknowledges (deletes) a Welcome. False when there was none.
    async fn delete_welcome(&self, device_id: DeviceId, id: Uuid) -> Result<bool>;
}

/// This area's half of the `Storage` implementation both databases share,
/// expanded by `impl_storage!` inside each backend's module.
macro_rules! circles_sql {
    () => {
        fn log_record(row: &Row) -> Result<LogRecord> {
            Ok(LogRecord {
                seq: row.try_get("seq")?,
                epoch: row.try_get("epoch")?,
                kind: parse_kind(row.try_get("kind")?)?,
                sender: parse_device_id(row.try_get("sender_id")?)?,
                ciphertext: row.try_get("ciphertext")?,
                created_at: row.try_get("created_at")?,
            })
        }

        async fn circle_with_roster(pool: &sqlx::Pool<Db>, row: &Row) -> Result<CircleRecord> {
            let id = parse_circle_id(row.try_get("id")?)?;
            let roster = sqlx::query(sql::SELECT_ROSTER)
                .bind(id.as_bytes())
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| {
                    Ok(RosterRecord {
                        device_id: parse_device_id(r.try_get("device_id")?)?,
                        role: parse_role(r.try_get("role")?)?,
                        joined_seq: r.try_get("joined_seq")?,
                        acked_seq: r.try_get("acked_seq")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(CircleRecord {
                id,
                epoch: row.try_get("epoch")?,
                last_seq: row.try_get("last_seq")?,
                max_members: row.try_get("max_members")?,
                retention_secs: row.try_get("retention_secs")?,
                roster,
            })
        }

        #[async_trait]
        impl CircleStore for This {
            async fn create_circle(&self, circle: &NewCircle, creator: DeviceId) -> Result<()> {
                let mut tx = self.write().await?;
                sqlx::query(sql::INSERT_CIRCLE)
                    .bind(circle.id.as_bytes())
                    .bind(circle.max_members)
                    .bind(circle.retention_secs)
                    .bind(circle.group_info.as_deref())
                    .bind(circle.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|err| unique_violation(err, StorageError::CircleExists))?;
                sqlx::query(sql::INSERT_ROSTER)
                    .bind(circle.id.as_bytes())
                    .bind(creator.to_string())
                    .bind(role_name(Role::Facilitator))
                    .bind(0_i64)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn circle(&self, id: &CircleId) -> Result<Option<CircleRecord>> {
                let row = sqlx::query(sql::SELECT_CIRCLE)
                    .bind(id.as_bytes())
                    .fetch_optional(self.reader())
                    .await?;
                match row {
                    Some(row) => Ok(Some(circle_with_roster(self.reader(), &row).await?)),
                    None => Ok(None),
                }
            }

            async fn device_circles(&self, device_id: DeviceId) -> Result<Vec<CircleRecord>> {
                let rows = sqlx::query(sql::SELECT_DEVICE_CIRCLES)
                    .bind(device_id.to_string())
                    .fetch_all(self.reader())
                    .await?;
                let mut circles = Vec::with_capacity(rows.len());
                for row in &rows {
                    circles.push(circle_with_roster(self.reader(), row).await?);
                }
                Ok(circles)
            }

            async fn apply_commit(
                &self,
                circle: &CircleId,
                commit: &NewCommit,
            ) -> Result<CommitOutcome> {
                let mut tx = self.write().await?;
                let advanced = sqlx::query(sql::ADVANCE_EPOCH)
                    .bind(circle.as_bytes())
                    .bind(commit.epoch)
                    .bind(commit.group_info.as_deref())
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(advanced) = advanced else {
                    let current: Option<i64> = sqlx::query_scalar(sql::SELECT_EPOCH)
                        .bind(circle.as_bytes())
                        .fetch_optional(&mut *tx)
                        .await?;
                    tx.rollback().await?;
                    return Ok(match current {
                        Some(current_epoch) => CommitOutcome::Stale { current_epoch },
                        None => CommitOutcome::NoCircle,
                    });
                };
                let epoch: i64 = advanced.try_get("epoch")?;
                let seq: i64 = advanced.try_get("last_seq")?;
                sqlx::query(sql::INSERT_LOG_ENTRY)
                    .bind(circle.as_bytes())
                    .bind(seq)
                    .bind(commit.epoch)
                    .bind(kind_code(EntryKind::Commit))
                    .bind(commit.sender.to_string())
                    .bind(None::<String>)
                    .bind(None::<Vec<u8>>)
                    .bind(commit.commit.as_slice())
                    .bind(commit.now)
                    .execute(&mut *tx)
                    .await?;
                for removed in &commit.removed {
                    sqlx::query(sql::DELETE_ROSTER)
                        .bind(circle.as_bytes())
                        .bind(removed.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                for added in &commit.added {
                    sqlx::query(sql::INSERT_ROSTER)
                        .bind(circle.as_bytes())
                        .bind(added.device_id.to_string())
                        .bind(role_name(added.role))
                        .bind(seq)
                        .execute(&mut *tx)
                        .await?;
                    if let Some(welcome) = &commit.welcome {
                        sqlx::query(sql::INSERT_WELCOME)
                            .bind(added.welcome_id.to_string())
                            .bind(added.device_id.to_string())
                            .bind(circle.as_bytes())
                            .bind(seq)
                            .bind(epoch)
                            .bind(welcome.as_slice())
                            .bind(commit.now)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                if let Some(request) = commit.join_request {
                    sqlx::query(sql::DELETE_JOIN_REQUEST)
                        .bind(circle.as_bytes())
                        .bind(request.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(CommitOutcome::Accepted { seq, epoch })
            }

            async fn append_messages(
                &self,
                messages: &[NewMessage],
                epoch_window: i64,
            ) -> Result<Vec<AppendOutcome>> {
                if messages.is_empty() {
                    return Ok(Vec::new());
                }
                // A handful of statements per batch, whatever its size: each
                // statement is a round trip to the database (on SQLite, to
                // its writer thread), and those, not the database's work,
                // are what a send costs.
                let mut circles: Vec<&CircleId> = messages.iter().map(|m| &m.circle).collect();
                circles.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
                circles.dedup();
                let mut senders: Vec<String> =
                    messages.iter().map(|m| m.sender.to_string()).collect();
                senders.sort();
                senders.dedup();

                // One statement reads what the batch must know, locking the
                // circles (the backend writes it; see `begin_append`).
                let (append, rows) = self.begin_append(&circles, &senders, messages).await?;
                // Each circle's epoch and last number: (epoch, as found, as now).
                let mut heads: HashMap<Vec<u8>, (i64, i64, i64)> = HashMap::new();
                let mut members: HashSet<(Vec<u8>, String)> = HashSet::new();
                type Key = (Vec<u8>, String, String);
                let mut seen: HashMap<Key, (i64, Option<Vec<u8>>)> = HashMap::new();
                for row in rows {
                    let part: i32 = row.try_get("part")?;
                    let circle: Vec<u8> = row.try_get("circle_id")?;
                    match part {
                        0 => {
                            let (epoch, last): (i64, i64) = (row.try_get("a")?, row.try_get("b")?);
                            heads.insert(circle, (epoch, last, last));
                        }
                        1 => {
                            members.insert((circle, row.try_get("who")?));
                        }
                        _ => {
                            seen.insert(
                                (circle, row.try_get("who")?, row.try_get("what")?),
                                (row.try_get("a")?, row.try_get("digest")?),
                            );
                        }
                    }
                }

                // Judge each as if it came alone, in the order given.
                let mut outcomes = Vec::with_capacity(messages.len());
                let mut accepted: Vec<(&NewMessage, i64)> = Vec::new();
                for message in messages {
                    let circle = message.circle.as_bytes().to_vec();
                    let sender = message.sender.to_string();
                    let Some((epoch, _, last_seq)) = heads.get_mut(&circle) else {
                        outcomes.push(AppendOutcome::NotMember);
                        continue;
                    };
                    let epoch = *epoch;
                    let key = (circle, sender, message.message_id.to_string());
                    let outcome = if !members.contains(&(key.0.clone(), key.1.clone())) {
                        AppendOutcome::NotMember
                    } else if let Some((seq, digest)) = seen.get(&key) {
                        if digest.as_deref() == Some(message.digest.as_slice()) {
                            AppendOutcome::Repeated { seq: *seq, epoch }
                        } else {
                            AppendOutcome::Conflict
                        }
                    } else if message.epoch > epoch
                        || message.epoch < epoch.saturating_sub(epoch_window)
                    {
                        AppendOutcome::Stale {
                            current_epoch: epoch,
                        }
                    } else {
                        *last_seq += 1;
                        let seq = *last_seq;
                        seen.insert(key, (seq, Some(message.digest.to_vec())));
                        accepted.push((message, seq));
                        AppendOutcome::Accepted { seq, epoch }
                    };
                    outcomes.push(outcome);
                }
                if accepted.is_empty() {
                    self.abandon_append(append).await?;
                    return Ok(outcomes);
                }

                let mut grown: Vec<&CircleId> = accepted.iter().map(|(m, _)| &m.circle).collect();
                grown.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
                grown.dedup();
                // Other nodes learn which numbers are new, so each reads them
                // once for all its sockets.
                let events: Vec<String> = grown
                    .iter()
                    .filter_map(|circle| {
                        let (_, found, now) = heads.get(circle.as_bytes())?;
                        Some(
                            $crate::storage::Notice::Appended {
                                circle: (*circle).clone(),
                                first: found + 1,
                                last: *now,
                            }
                            .encode(),
                        )
                    })
                    .collect();
                // The entries, the circles' new numbers and (PostgreSQL) the
                // notice go in one round trip.
                let notice = self.notice_in_statement(&events.join("\n"));
                let mut query = sqlx::QueryBuilder::<Db>::new(if notice.is_some() {
                    "WITH inserted AS ("
                } else {
                    ""
                });
                query.push(
                    "INSERT INTO log_entries (circle_id, seq, epoch, kind, sender_id, \
                     message_id, digest, ciphertext, created_at) ",
                );
                query.push_values(&accepted, |mut row, (message, seq)| {
                    row.push_bind(message.circle.as_bytes())
                        .push_bind(*seq)
                        .push_bind(message.epoch)
                        .push_bind(kind_code(EntryKind::Application))
                        .push_bind(message.sender.to_string())
                        .push_bind(message.message_id.to_string())
                        .push_bind(message.digest.as_slice())
                        .push_bind(message.ciphertext.as_slice())
                        .push_bind(message.now);
                });
                // SQLite: two statements in one request, which its driver
                // runs in turn, numbering the parameters across both.
                query.push(if notice.is_some() {
                    " RETURNING 1), grown AS ("
                } else {
                    "; "
                });
                query.push("UPDATE circles SET last_seq = CASE id");
                for circle in &grown {
                    let last = heads.get(circle.as_bytes()).map_or(0, |head| head.2);
                    query
                        .push(" WHEN ")
                        .push_bind(circle.as_bytes())
                        .push(" THEN ")
                        .push_bind(last);
                }
                query.push(" ELSE last_seq END WHERE id IN (");
                let mut list = query.separated(", ");
                for circle in &grown {
                    list.push_bind(circle.as_bytes());
                }
                query.push(")");
                if let Some((channel, payload)) = notice {
                    query
                        .push(" RETURNING 1) SELECT pg_notify(")
                        .push_bind(channel)
                        .push(", ")
                        .push_bind(payload)
                        .push(")");
                }
                self.finish_append(append, query).await?;
                Ok(outcomes)
            }

            async fn read_log(
                &self,
                circle: &CircleId,
                device_id: DeviceId,
                after: i64,
                limit: i64,
            ) -> Result<Option<Vec<LogRecord>>> {
                // The entries first, then the roster (each statement sees its
                // own snapshot; see `routes::circles::read_as_member`): all
                // returned was committed while the device was on the roster
                // (the statement checks), and a device removed since gets
                // `None`.
                let rows = sqlx::query(sql::SELECT_MEMBER_LOG)
                    .bind(circle.as_bytes())
                    .bind(after)
                    .bind(device_id.to_string())
                    .bind(limit)
                    .fetch_all(self.reader())
                    .await?;
                let member = sqlx::query(sql::SELECT_ROSTER_DEVICE)
                    .bind(circle.as_bytes())
                    .bind(device_id.to_string())
                    .fetch_optional(self.reader())
                    .await?;
                if member.is_none() {
                    return Ok(None);
                }
                rows.iter().map(log_record).collect::<Result<_>>().map(Some)
            }

            async fn log_entries(
                &self,
                circle: &CircleId,
                after: i64,
                limit: i64,
            ) -> Result<Vec<LogRecord>> {
                let rows = sqlx::query(sql::SELECT_LOG)
                    .bind(circle.as_bytes())
                    .bind(after)
                    .bind(limit)
                    .fetch_all(self.reader())
                    .await?;
                rows.iter().map(log_record).collect()
            }

            async fn acknowledge(
                &self,
                circle: &CircleId,
                device_id: DeviceId,
                seq: i64,
            ) -> Result<bool> {
                let mut tx = self.write().await?;
                let member = sqlx::query(sql::SELECT_MEMBER)
                    .bind(circle.as_bytes())
                    .bind(device_id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
                if member.is_none() {
                    tx.rollback().await?;
                    return Ok(false);
                }
                let last_seq: i64 = sqlx::query_scalar(sql::SELECT_LAST_SEQ)
                    .bind(circle.as_bytes())
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::query(sql::RAISE_ACK)
                    .bind(circle.as_bytes())
                    .bind(device_id.to_string())
                    .bind(seq.min(last_seq))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::DELETE_ACKNOWLEDGED)
                    .bind(circle.as_bytes())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn group_info(&self, circle: &CircleId) -> Result<Option<GroupInfoRecord>> {
                let row = sqlx::query(sql::SELECT_GROUP_INFO)
                    .bind(circle.as_bytes())
                    .fetch_optional(self.reader())
                    .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let epoch: i64 = row.try_get("epoch")?;
                let info: Option<Vec<u8>> = row.try_get("group_info")?;
                Ok(info.map(|group_info| GroupInfoRecord { epoch, group_info }))
            }

            async fn welcomes(&self, device_id: DeviceId) -> Result<Vec<WelcomeRecord>> {
                let rows = sqlx::query(sql::SELECT_WELCOMES)
                    .bind(device_id.to_string())
                    .fetch_all(self.reader())
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(WelcomeRecord {
                            id: parse_uuid(row.try_get("id")?)?,
                            circle_id: parse_circle_id(row.try_get("circle_id")?)?,
                            seq: row.try_get("seq")?,
                            epoch: row.try_get("epoch")?,
                            data: row.try_get("data")?,
                        })
                    })
                    .collect()
            }

            async fn delete_welcome(&self, device_id: DeviceId, id: Uuid) -> Result<bool> {
                let done = sqlx::query(sql::DELETE_WELCOME)
                    .bind(id.to_string())
                    .bind(device_id.to_string())
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

pub(crate) use circles_sql;
