//! The SDK's side: what a phone spends to send, and to catch up after a
//! while offline, beside raw openmls doing the cryptography alone.
//!
//! Two real SDK clients (their data on this disk, like a phone's) in one
//! circle on an in-process server: the facilitator sends `count` messages
//! while the member is offline, then the member syncs them all (fetch,
//! decrypt, store). Twice: with the data directories in the clear (the
//! CLI's way) and sealed under a key (a phone's way, `vault`). The reference is the project's in-memory openmls member
//! (`hearth_tests::mls::Member`): encrypt and decrypt the same number of
//! messages of the same size with no storage and no network.

use anyhow::{Result, ensure};
use hearth_tests::clients::{data_dirs, enrolled_as};
use hearth_tests::mls::Member;
use hearth_tests::{Db, TestApp};
use std::time::Instant;

/// What a text message holds: a paragraph.
const TEXT_BYTES: usize = 300;

/// The SDK's figures.
pub struct Sdk {
    /// Messages sent and caught up on.
    pub count: usize,
    /// In the clear, then sealed.
    pub rows: Vec<SdkRow>,
    /// Raw openmls, in memory: encrypt + decrypt of one message, µs.
    pub raw_us: f64,
}

/// One way of keeping the client's data.
pub struct SdkRow {
    /// Whether the data directories were sealed under a key.
    pub sealed: bool,
    /// `send_text`, each: milliseconds (local work and the HTTP round trips).
    pub send_ms: f64,
    /// The offline member's catch-up of all of them: seconds.
    pub catch_up_s: f64,
}

/// Measures `count` messages.
pub async fn measure(count: usize) -> Result<Sdk> {
    let app = TestApp::spawn(Db::Sqlite).await?;
    let text = "a".repeat(TEXT_BYTES);
    let mut rows = Vec::new();
    for sealed in [false, true] {
        let dirs = data_dirs(2)?;
        let (clients, circle) = enrolled_as(&app, &dirs, sealed).await?;
        let (facilitator, member) = (&clients[0], &clients[1]);
        let started = Instant::now();
        for _ in 0..count {
            facilitator.send_text(&circle, &text).await?;
        }
        let send_ms = started.elapsed().as_secs_f64() * 1e3 / count.max(1) as f64;
        let started = Instant::now();
        let caught_up = member.sync(&circle).await?;
        let catch_up_s = started.elapsed().as_secs_f64();
        ensure!(
            caught_up.len() >= count,
            "the member caught up on {} of {count}",
            caught_up.len()
        );
        rows.push(SdkRow {
            sealed,
            send_ms,
            catch_up_s,
        });
    }

    // The same cryptography with nothing around it.
    let mut alice = Member::sign_up(&app).await?;
    let mut bob = Member::sign_up(&app).await?;
    bob.publish_key_packages(&app, 1).await?;
    let raw_circle = alice.create_circle(&app).await?;
    let bundle = alice.add_commit(&app, &[&bob]).await?;
    alice.commit_accepted(&app, &raw_circle, &bundle).await?;
    bob.join(&app).await?;
    let plaintext = vec![b'a'; TEXT_BYTES];
    let started = Instant::now();
    for _ in 0..count {
        let ciphertext = alice.encrypt(&plaintext)?;
        let opened = bob.process(ciphertext.as_slice())?;
        ensure!(
            opened.as_deref() == Some(plaintext.as_slice()),
            "raw openmls round trip"
        );
    }
    let raw_us = started.elapsed().as_secs_f64() * 1e6 / count.max(1) as f64;
    app.stop().await?;
    Ok(Sdk {
        count,
        rows,
        raw_us,
    })
}
