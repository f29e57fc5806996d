//! End-to-end scenarios against the real server on a real port, each on a
//! fresh SQLite database and (when `TEST_DATABASE_URL` is set, always under
//! CI) a fresh PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_fuzz;
mod architecture_doc;
mod backup;
mod bindings;
mod compose;
mod crash;
mod data_map;
mod deletion;
mod delivery;
mod framing;
mod fuzz_seeds;
mod http_edges;
mod identity;
mod jwt_abuse;
mod layering;
mod ops;
mod outages;
mod phone;
mod practice;
mod privacy;
mod protocol_doc;
mod push;
mod races;
mod schedule;
mod sdk;
mod storage;
mod stream;
mod upgrade;
mod video;
