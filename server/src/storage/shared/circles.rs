//! Circles: creation, the roster, commits, the log, acknowledgements, Welcomes. The half of `circles.rs` that runs SQL, compiled once
//! for each database (see `shared/mod.rs`).

use super::*;

const INSERT_CIRCLE: &str = "INSERT INTO circles \
     (id, epoch, last_seq, max_members, retention_secs, group_info, created_at) \
     VALUES ($1, 0, 0, $2, $3, $4, $5)";

const INSERT_ROSTER: &str = "INSERT INTO roster \
     (circle_id, device_id, role, joined_seq, acked_seq) VALUES ($1, $2, $3, $4, $4)";

const DELETE_ROSTER: &str = "DELETE FROM roster WHERE circle_id = $1 AND device_id = $2";

const SELECT_CIRCLE: &str = "SELECT id, epoch, last_seq, max_members, retention_secs \
     FROM circles WHERE id = $1";

const SELECT_DEVICE_CIRCLES: &str = "SELECT c.id, c.epoch, c.last_seq, c.max_members, \
     c.retention_secs FROM circles c JOIN roster r ON r.circle_id = c.id \
     WHERE r.device_id = $1 ORDER BY c.created_at, c.id";

const SELECT_ROSTER: &str = "SELECT device_id, role, joined_seq, acked_seq FROM roster \
     WHERE circle_id = $1 ORDER BY joined_seq, device_id";

const SELECT_MEMBER: &str = "SELECT device_id, role, joined_seq, acked_seq FROM roster \
     WHERE circle_id = $1 AND device_id = $2";

pub(super) const SELECT_ROSTER_DEVICE: &str =
    "SELECT device_id FROM roster WHERE circle_id = $1 AND device_id = $2";

const SELECT_GROUP_INFO: &str = "SELECT epoch, group_info FROM circles WHERE id = $1";

const SELECT_EPOCH: &str = "SELECT epoch FROM circles WHERE id = $1";

const ADVANCE_EPOCH: &str = "UPDATE circles SET epoch = epoch + 1, last_seq = last_seq + 1, \
     group_info = COALESCE($3, group_info) WHERE id = $1 AND epoch = $2 \
     RETURNING epoch, last_seq";

const INSERT_LOG_ENTRY: &str = "INSERT INTO log_entries \
     (circle_id, seq, epoch, kind, sender_id, message_id, digest, ciphertext, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

const SELECT_LOG: &str = "SELECT seq, epoch, kind, sender_id, ciphertext, created_at \
     FROM log_entries WHERE circle_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";

/// A member's page of the log: only entries after the seq that added the
/// device, and none at all unless it is on the roster when the statement
/// reads (the scalar subquery is NULL then, and `seq > NULL` is never true).
const SELECT_MEMBER_LOG: &str = "SELECT seq, epoch, kind, sender_id, ciphertext, created_at \
     FROM log_entries WHERE circle_id = $1 AND seq > $2 AND seq > \
     (SELECT joined_seq FROM roster WHERE circle_id = $1 AND device_id = $3) \
     ORDER BY seq LIMIT $4";

const SELECT_LAST_SEQ: &str = "SELECT last_seq FROM circles WHERE id = $1";

const RAISE_ACK: &str = "UPDATE roster SET acked_seq = $3 \
     WHERE circle_id = $1 AND device_id = $2 AND acked_seq < $3";

const DELETE_ACKNOWLEDGED: &str = "DELETE FROM log_entries WHERE circle_id = $1 \
     AND seq <= (SELECT MIN(acked_seq) FROM roster WHERE circle_id = $1)";

const INSERT_WELCOME: &str = "INSERT INTO welcomes \
     (id, device_id, circle_id, seq, epoch, data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

const SELECT_WELCOMES: &str = "SELECT id, circle_id, seq, epoch, data FROM welcomes \
     WHERE device_id = $1 ORDER BY created_at, seq";

const DELETE_WELCOME: &str = "DELETE FROM welcomes WHERE id = $1 AND device_id = $2";

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
    let roster = sqlx::query(SELECT_ROSTER)
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
        sqlx::query(INSERT_CIRCLE)
            .bind(circle.id.as_bytes())
            .bind(circle.max_members)
            .bind(circle.retention_secs)
            .bind(circle.group_info.as_deref())
            .bind(circle.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|err| unique_violation(err, StorageError::CircleExists))?;
        sqlx::query(INSERT_ROSTER)
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
        let row = sqlx::query(SELECT_CIRCLE)
            .bind(id.as_bytes())
            .fetch_optional(self.reader())
            .await?;
        match row {
            Some(row) => Ok(Some(circle_with_roster(self.reader(), &row).await?)),
            None => Ok(None),
        }
    }

    async fn device_circles(&self, device_id: DeviceId) -> Result<Vec<CircleRecord>> {
        let rows = sqlx::query(SELECT_DEVICE_CIRCLES)
            .bind(device_id.to_string())
            .fetch_all(self.reader())
            .await?;
        let mut circles = Vec::with_capacity(rows.len());
        for row in &rows {
            circles.push(circle_with_roster(self.reader(), row).await?);
        }
        Ok(circles)
    }

    async fn apply_commit(&self, circle: &CircleId, commit: &NewCommit) -> Result<CommitOutcome> {
        let mut tx = self.write().await?;
        let advanced = sqlx::query(ADVANCE_EPOCH)
            .bind(circle.as_bytes())
            .bind(commit.epoch)
            .bind(commit.group_info.as_deref())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(advanced) = advanced else {
            let current: Option<i64> = sqlx::query_scalar(SELECT_EPOCH)
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
        sqlx::query(INSERT_LOG_ENTRY)
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
            sqlx::query(DELETE_ROSTER)
                .bind(circle.as_bytes())
                .bind(removed.to_string())
                .execute(&mut *tx)
                .await?;
        }
        for added in &commit.added {
            sqlx::query(INSERT_ROSTER)
                .bind(circle.as_bytes())
                .bind(added.device_id.to_string())
                .bind(role_name(added.role))
                .bind(seq)
                .execute(&mut *tx)
                .await?;
            if let Some(welcome) = &commit.welcome {
                sqlx::query(INSERT_WELCOME)
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
            sqlx::query(super::enrollment::DELETE_JOIN_REQUEST)
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
        let mut senders: Vec<String> = messages.iter().map(|m| m.sender.to_string()).collect();
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
            } else if message.epoch > epoch || message.epoch < epoch.saturating_sub(epoch_window) {
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
                    crate::storage::Notice::Appended {
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
        let rows = sqlx::query(SELECT_MEMBER_LOG)
            .bind(circle.as_bytes())
            .bind(after)
            .bind(device_id.to_string())
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        let member = sqlx::query(SELECT_ROSTER_DEVICE)
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
        let rows = sqlx::query(SELECT_LOG)
            .bind(circle.as_bytes())
            .bind(after)
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(log_record).collect()
    }

    async fn acknowledge(&self, circle: &CircleId, device_id: DeviceId, seq: i64) -> Result<bool> {
        let mut tx = self.write().await?;
        let member = sqlx::query(SELECT_MEMBER)
            .bind(circle.as_bytes())
            .bind(device_id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        if member.is_none() {
            tx.rollback().await?;
            return Ok(false);
        }
        let last_seq: i64 = sqlx::query_scalar(SELECT_LAST_SEQ)
            .bind(circle.as_bytes())
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(RAISE_ACK)
            .bind(circle.as_bytes())
            .bind(device_id.to_string())
            .bind(seq.min(last_seq))
            .execute(&mut *tx)
            .await?;
        sqlx::query(DELETE_ACKNOWLEDGED)
            .bind(circle.as_bytes())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn group_info(&self, circle: &CircleId) -> Result<Option<GroupInfoRecord>> {
        let row = sqlx::query(SELECT_GROUP_INFO)
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
        let rows = sqlx::query(SELECT_WELCOMES)
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
        let done = sqlx::query(DELETE_WELCOME)
            .bind(id.to_string())
            .bind(device_id.to_string())
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
