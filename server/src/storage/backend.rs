//! The seam between the shared SQL and each database: [`SqlBackend`]. A
//! backend provides its pools, how it opens a write transaction, the
//! statements that must differ, and cross-node events; the shared
//! implementation (`shared/`) is compiled over it once per backend.
//!
//! Behaviour that must differ per database (row locks, notifications, group
//! commit) becomes a member of this trait, not a copy of a whole method. The
//! compiler checks the contract: a backend that misses a member does not
//! build.

use super::{Backend, NewMessage, Result};
use hearth_protocol::CircleId;
use sqlx::{Pool, QueryBuilder, Transaction};
use std::future::Future;

/// The rows a backend's query returns.
pub type Rows<B> = Vec<<<B as SqlBackend>::Db as sqlx::Database>::Row>;

/// What a database must provide for the shared SQL to run on it.
pub trait SqlBackend: Send + Sync + 'static {
    /// The sqlx database.
    type Db: sqlx::Database;

    /// Which database this is.
    const BACKEND: Backend;

    /// Deletes and returns (`RETURNING data`) one unexpired KeyPackage that
    /// is not the last resort, of device `$1` at time `$2`, such that two
    /// concurrent claims never return the same row.
    const CLAIM_KEY_PACKAGE: &'static str;

    /// Marks up to `$3` due, unclaimed (or lapsed) wakes at time `$1` as
    /// claimed until `$2`, one more attempt each, and returns their
    /// `device_id, attempts, coalesced`, such that two nodes claiming at once
    /// never take the same row.
    const CLAIM_WAKES: &'static str;

    /// Moves every due, unclaimed wake at time `$1` whose device was woken
    /// less than `$2` seconds ago to that last wake plus `$2` (the interval
    /// holds however the wake was queued), skipping rows another node holds.
    const POSTPONE_WAKES: &'static str;

    /// Locks the login that refresh token `$1` belongs to (nothing else),
    /// so that everything done to a login — rotation, replay, logout,
    /// revocation — takes the login first and the token after, and two
    /// of them never wait on each other in opposite orders.
    const LOCK_LOGIN_OF_REFRESH_TOKEN: &'static str;

    /// The pool for reads.
    fn reader(&self) -> &Pool<Self::Db>;

    /// The pool for single-statement writes (outside [`SqlBackend::write`]).
    fn writer(&self) -> &Pool<Self::Db>;

    /// A write transaction, begun so that it will not fail for want of the
    /// write lock later (SQLite: `BEGIN IMMEDIATE`).
    fn write(&self) -> impl Future<Output = Result<Transaction<'static, Self::Db>>> + Send;

    /// A batch of appends' open transaction (see [`SqlBackend::begin_append`]).
    type Append: Send;

    /// Opens a batch of appends' transaction and makes the one read the
    /// batch needs: it locks the `circles` the batch will advance (in one
    /// order, by id, so two batches on two nodes cannot deadlock; SQLite's
    /// single writer needs no lock) and returns rows with the columns
    /// `part`, `circle_id`, `who`, `what`, `a`, `b`, `digest`: part 0 per
    /// circle (`a` its epoch, `b` its last number), part 1 per sender on the
    /// roster of one of the circles (`who`), part 2 per earlier entry with
    /// the ids of one of the `messages` (`who` its sender, `what` its
    /// message id, `a` its number, `digest`). SQLite begins and reads in one
    /// request to its connection's thread.
    fn begin_append<'a>(
        &'a self,
        circles: &'a [&'a CircleId],
        senders: &'a [String],
        messages: &'a [NewMessage],
    ) -> impl Future<Output = Result<(Self::Append, Rows<Self>)>> + Send + 'a;

    /// Runs `writes` in the batch's transaction and commits it (SQLite: in
    /// one request, the `COMMIT` appended to the statements).
    fn finish_append(
        &self,
        append: Self::Append,
        writes: QueryBuilder<Self::Db>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Rolls the batch's transaction back: nothing in it was accepted.
    fn abandon_append(&self, append: Self::Append) -> impl Future<Output = Result<()>> + Send;

    /// Closes the pools; in-flight queries finish first.
    fn close_pools(&self) -> impl Future<Output = ()> + Send;

    /// Tells the other server nodes on this database about an event.
    fn notify_nodes(&self, event: &str) -> impl Future<Output = Result<()>> + Send;

    /// PostgreSQL: the `(channel, payload)` of a notification telling the
    /// other nodes about `events`, for a `SELECT pg_notify(..)` that follows
    /// writing CTEs in one statement (sent when the transaction commits).
    /// SQLite has neither writing CTEs nor other nodes: `None`, and the
    /// writes go as statements in turn (in one request to its driver).
    fn notice_in_statement(&self, events: &str) -> Option<(&'static str, String)>;

    /// Passes every event other nodes send to `deliver`, until dropped.
    fn listen_nodes(
        &self,
        deliver: Box<dyn Fn(String) + Send + Sync>,
    ) -> impl Future<Output = Result<()>> + Send;
}
