//! Every storage area's implementation, one copy for both databases.
//!
//! This folder is compiled twice: once inside `sqlite.rs` and once inside
//! `postgres.rs` (each declares `#[path = "shared/mod.rs"] mod shared;` and
//! names its storage type `This`). Each copy is ordinary code over that
//! backend's concrete sqlx types, so rustc, clippy and rust-analyzer see it
//! as they see any module; only the statements that must differ per
//! database are members of [`SqlBackend`](crate::storage::backend::SqlBackend),
//! which the compiler holds each backend to.
//!
//! Each area's SQL sits beside the methods that run it. Parameters are `$N`,
//! which PostgreSQL and SQLite (through sqlx) both bind by number; values are
//! integers, text and bytes only, so one statement reads the same on either
//! side. Every write is one transaction (a single statement, or
//! [`SqlBackend::write`](crate::storage::backend::SqlBackend::write)).

use super::This;
use crate::storage::backend::SqlBackend;
use crate::storage::*;
use async_trait::async_trait;
use hearth_protocol::circles::{EntryKind, Role};
use hearth_protocol::{AccountId, CircleId, DeviceId};
use secrecy::ExposeSecret as _;
use sqlx::{FromRow as _, Transaction};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

type Db = <This as SqlBackend>::Db;

mod circles;
mod enrollment;
mod facilitators;
mod identity;
mod key_packages;
mod operations;
mod push;
mod snapshots;
