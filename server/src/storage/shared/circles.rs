//! Circles: creation, the roster, commits, the log, acknowledgements,
//! Welcomes. The half of `circles.rs` that runs SQL, compiled once for each
//! database (see `shared/mod.rs`).

use super::*;

const INSERT_CIRCLE: &str = "INSERT INTO circles \
     (id, epoch, last_seq, max_members, retention_secs, group_info, created_at) \
     VALUES ($1, 0, 0, $2, $3, $4, $5)";

const INSERT_ROSTER: &str = "INSERT INTO roster \
     (circle_id, device_id, role, joined_seq, acked_seq) VALUES ($1, $2, $3, $4, $4)";

const DELETE_ROSTER: &str = "DELETE FROM roster WHERE circle_id = $1 AND device_id = $2";

/// A circle with its roster, one row per roster entry (one row of NULLs
/// for an empty roster): one statement, one snapshot.
const SELECT_CIRCLE: &str = "SELECT c.id, c.epoch, c.last_seq, c.max_members, \
     c.retention_secs, r.device_id, r.role, r.joined_seq, r.acked_seq \
     FROM circles c LEFT JOIN roster r ON r.circle_id = c.id WHERE c.id = $1 \
     ORDER BY r.joined_seq, r.device_id";

/// Every circle a device is on, each with its whole roster, in one
/// statement (one row per circle and roster entry).
const SELECT_DEVICE_CIRCLES: &str = "SELECT c.id, c.epoch, c.last_seq, c.max_members, \
     c.retention_secs, r.device_id, r.role, r.joined_seq, r.acked_seq \
     FROM roster mine JOIN circles c ON c.id = mine.circle_id \
     JOIN roster r ON r.circle_id = c.id WHERE mine.device_id = $1 \
     ORDER BY c.created_at, c.id, r.joined_seq, r.device_id";

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

const INSERT_WELCOME: &str = "INSERT INTO welcomes \
     (id, device_id, circle_id, seq, epoch, data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

const SELECT_WELCOMES: &str = "SELECT id, circle_id, seq, epoch, data FROM welcomes \
     WHERE device_id = $1 ORDER BY created_at, seq";

const DELETE_WELCOME: &str = "DELETE FROM welcomes WHERE id = $1 AND device_id = $2";

/// A log entry as stored.
#[derive(sqlx::FromRow)]
struct LogRow {
    seq: i64,
    epoch: i64,
    kind: i64,
    sender_id: String,
    ciphertext: Vec<u8>,
    created_at: i64,
}

impl LogRow {
    fn record(self) -> Result<LogRecord> {
        Ok(LogRecord {
            seq: self.seq,
            epoch: self.epoch,
            kind: parse_kind(self.kind)?,
            sender: parse_device_id(&self.sender_id)?,
            ciphertext: self.ciphertext,
            created_at: self.created_at,
        })
    }
}

/// A circle and one entry of its roster (none: a circle with no one on it).
#[derive(sqlx::FromRow)]
struct CircleRow {
    id: Vec<u8>,
    epoch: i64,
    last_seq: i64,
    max_members: i64,
    retention_secs: i64,
    device_id: Option<String>,
    role: Option<String>,
    joined_seq: Option<i64>,
    acked_seq: Option<i64>,
}

/// Folds rows ordered by circle into circles with their rosters.
fn circles_of(rows: Vec<CircleRow>) -> Result<Vec<CircleRecord>> {
    let mut circles: Vec<CircleRecord> = Vec::new();
    for row in rows {
        let id = parse_circle_id(row.id)?;
        if circles.last().is_none_or(|c| c.id != id) {
            circles.push(CircleRecord {
                id,
                epoch: row.epoch,
                last_seq: row.last_seq,
                max_members: row.max_members,
                retention_secs: row.retention_secs,
                roster: Vec::new(),
            });
        }
        let (Some(device_id), Some(role), Some(joined_seq), Some(acked_seq)) =
            (row.device_id, row.role, row.joined_seq, row.acked_seq)
        else {
            continue;
        };
        if let Some(circle) = circles.last_mut() {
            circle.roster.push(RosterRecord {
                device_id: parse_device_id(&device_id)?,
                role: parse_role(&role)?,
                joined_seq,
                acked_seq,
            });
        }
    }
    Ok(circles)
}

/// A Welcome as stored.
#[derive(sqlx::FromRow)]
struct WelcomeRow {
    id: String,
    circle_id: Vec<u8>,
    seq: i64,
    epoch: i64,
    data: Vec<u8>,
}

/// What a batch of appends must know, read in one statement
/// ([`SqlBackend::begin_append`]) as rows of three kinds.
#[derive(sqlx::FromRow)]
struct AppendRow {
    part: i32,
    circle_id: Vec<u8>,
    who: String,
    what: String,
    a: i64,
    b: i64,
    digest: Option<Vec<u8>>,
}

/// One fact a batch of appends judges by.
enum AppendFact {
    /// A circle's epoch and last number (the circle exists, and is locked
    /// where the database has row locks).
    Head {
        circle: Vec<u8>,
        epoch: i64,
        last_seq: i64,
    },
    /// A sender is on one of the circles' rosters.
    Member { circle: Vec<u8>, device: String },
    /// An entry appended earlier with one of the batch's message ids.
    Earlier {
        circle: Vec<u8>,
        sender: String,
        message_id: String,
        seq: i64,
        digest: Option<Vec<u8>>,
    },
}

impl AppendRow {
    fn fact(self) -> Result<AppendFact> {
        Ok(match self.part {
            0 => AppendFact::Head {
                circle: self.circle_id,
                epoch: self.a,
                last_seq: self.b,
            },
            1 => AppendFact::Member {
                circle: self.circle_id,
                device: self.who,
            },
            2 => AppendFact::Earlier {
                circle: self.circle_id,
                sender: self.who,
                message_id: self.what,
                seq: self.a,
                digest: self.digest,
            },
            _ => return Err(StorageError::Corrupt("append read part")),
        })
    }
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
        let rows = sqlx::query_as::<_, CircleRow>(SELECT_CIRCLE)
            .bind(id.as_bytes())
            .fetch_all(self.reader())
            .await?;
        Ok(circles_of(rows)?.pop())
    }

    async fn device_circles(&self, device_id: DeviceId) -> Result<Vec<CircleRecord>> {
        let rows = sqlx::query_as::<_, CircleRow>(SELECT_DEVICE_CIRCLES)
            .bind(device_id.to_string())
            .fetch_all(self.reader())
            .await?;
        circles_of(rows)
    }

    async fn apply_commit(&self, circle: &CircleId, commit: &NewCommit) -> Result<CommitOutcome> {
        let mut tx = self.write().await?;
        let advanced: Option<(i64, i64)> = sqlx::query_as(ADVANCE_EPOCH)
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
        let (epoch, seq) = advanced;
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
        for row in &rows {
            match AppendRow::from_row(row)?.fact()? {
                AppendFact::Head {
                    circle,
                    epoch,
                    last_seq,
                } => {
                    heads.insert(circle, (epoch, last_seq, last_seq));
                }
                AppendFact::Member { circle, device } => {
                    members.insert((circle, device));
                }
                AppendFact::Earlier {
                    circle,
                    sender,
                    message_id,
                    seq,
                    digest,
                } => {
                    seen.insert((circle, sender, message_id), (seq, digest));
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
        let rows = sqlx::query_as::<_, LogRow>(SELECT_MEMBER_LOG)
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
        rows.into_iter()
            .map(LogRow::record)
            .collect::<Result<_>>()
            .map(Some)
    }

    async fn log_entries(
        &self,
        circle: &CircleId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<LogRecord>> {
        let rows = sqlx::query_as::<_, LogRow>(SELECT_LOG)
            .bind(circle.as_bytes())
            .bind(after)
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.into_iter().map(LogRow::record).collect()
    }

    async fn acknowledge(&self, acks: &[Acknowledgement]) -> Result<Vec<bool>> {
        if acks.is_empty() {
            return Ok(Vec::new());
        }
        // One number per device and circle, the highest (an UPDATE ... FROM
        // with two source rows for one target row would pick either), in
        // one order, so two batches on two nodes lock rows alike.
        let mut highest: std::collections::BTreeMap<(&[u8], DeviceId), i64> =
            std::collections::BTreeMap::new();
        for ack in acks {
            let seq = highest
                .entry((ack.circle.as_bytes(), ack.device))
                .or_insert(ack.seq);
            *seq = (*seq).max(ack.seq);
        }
        let mut tx = self.write().await?;
        // Every acknowledgement in one statement: a roster row moves up to
        // the number given (never past the circle's last, never down), and
        // comes back only if the device is on that roster.
        let mut raise = sqlx::QueryBuilder::<Db>::new(
            "UPDATE roster SET acked_seq = CASE WHEN (CASE WHEN v.column3 < c.last_seq \
             THEN v.column3 ELSE c.last_seq END) > roster.acked_seq THEN (CASE WHEN \
             v.column3 < c.last_seq THEN v.column3 ELSE c.last_seq END) ELSE roster.acked_seq \
             END FROM (",
        );
        raise.push_values(&highest, |mut row, ((circle, device), seq)| {
            row.push_bind(*circle)
                .push_bind(device.to_string())
                .push_bind(*seq);
        });
        raise.push(
            ") AS v, circles AS c WHERE roster.circle_id = v.column1 AND roster.device_id = \
             v.column2 AND c.id = roster.circle_id RETURNING roster.circle_id, roster.device_id",
        );
        let members: Vec<(Vec<u8>, String)> = raise.build_query_as().fetch_all(&mut *tx).await?;
        let members: HashSet<(Vec<u8>, String)> = members.into_iter().collect();
        // Then, in every circle touched, what every device has read goes.
        let mut touched: Vec<&[u8]> = highest.keys().map(|(circle, _)| *circle).collect();
        touched.dedup();
        if !members.is_empty() {
            // Each circle's minimum once, then the entries up to it by the
            // (circle_id, seq) key.
            let mut delete = sqlx::QueryBuilder::<Db>::new(
                "DELETE FROM log_entries WHERE (circle_id, seq) IN (SELECT e.circle_id, e.seq \
                 FROM log_entries e JOIN (SELECT circle_id, MIN(acked_seq) AS upto FROM roster \
                 WHERE circle_id IN (",
            );
            let mut list = delete.separated(", ");
            for circle in &touched {
                list.push_bind(*circle);
            }
            delete.push(
                ") GROUP BY circle_id) m ON e.circle_id = m.circle_id WHERE e.seq <= m.upto)",
            );
            delete.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(acks
            .iter()
            .map(|ack| members.contains(&(ack.circle.as_bytes().to_vec(), ack.device.to_string())))
            .collect())
    }

    async fn group_info(&self, circle: &CircleId) -> Result<Option<GroupInfoRecord>> {
        let row: Option<(i64, Option<Vec<u8>>)> = sqlx::query_as(SELECT_GROUP_INFO)
            .bind(circle.as_bytes())
            .fetch_optional(self.reader())
            .await?;
        Ok(row
            .and_then(|(epoch, info)| info.map(|group_info| GroupInfoRecord { epoch, group_info })))
    }

    async fn welcomes(&self, device_id: DeviceId) -> Result<Vec<WelcomeRecord>> {
        let rows = sqlx::query_as::<_, WelcomeRow>(SELECT_WELCOMES)
            .bind(device_id.to_string())
            .fetch_all(self.reader())
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(WelcomeRecord {
                    id: parse_uuid(&row.id)?,
                    circle_id: parse_circle_id(row.circle_id)?,
                    seq: row.seq,
                    epoch: row.epoch,
                    data: row.data,
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
