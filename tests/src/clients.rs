//! Real SDK clients for the scenarios: each with its own data directory,
//! enrolled the way people are (invite link, note, approval, Welcome).

use crate::TestApp;
use anyhow::Result;
use hearth_client::Client;
use hearth_protocol::CircleId;

/// `n` fresh data directories, one per client (kept alive as long as the
/// clients that use them).
pub fn data_dirs(n: usize) -> Result<Vec<tempfile::TempDir>> {
    Ok((0..n)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?)
}

/// A client of the app in its own data directory.
pub async fn client(app: &TestApp, dir: &tempfile::TempDir) -> Result<Client> {
    Ok(Client::open(&app.address, dir.path()).await?)
}

/// Brings a registered `member` into the circle: the facilitator invites,
/// the member redeems with a note, the facilitator approves, the member
/// joins from the Welcome.
pub async fn join(facilitator: &Client, member: &Client, circle: &CircleId) -> Result<()> {
    let link = facilitator.create_invite(circle).await?;
    let request = member.redeem_invite(&link, "hello").await?;
    facilitator.approve(circle, request).await?;
    anyhow::ensure!(
        member.accept_welcomes().await? == vec![circle.clone()],
        "the member joined from its Welcome"
    );
    Ok(())
}

/// A client of the app whose data directory is sealed under a fresh random
/// key, as a phone's is (the key is not kept: for runs that never reopen).
pub async fn sealed_client(app: &TestApp, dir: &tempfile::TempDir) -> Result<Client> {
    let key = secrecy::SecretBox::new(Box::new(crate::rand_bytes::<32>()));
    Ok(Client::open_encrypted(&app.address, dir.path(), key).await?)
}

/// A facilitator's circle with one client per directory after the first,
/// enrolled by invite link and approval, everyone caught up.
pub async fn enrolled(
    app: &TestApp,
    dirs: &[tempfile::TempDir],
) -> Result<(Vec<Client>, CircleId)> {
    enrolled_as(app, dirs, false).await
}

/// Like [`enrolled`]; with `sealed`, every client's data directory is sealed
/// under a key of its own ([`sealed_client`]).
pub async fn enrolled_as(
    app: &TestApp,
    dirs: &[tempfile::TempDir],
    sealed: bool,
) -> Result<(Vec<Client>, CircleId)> {
    let open = |dir| async move {
        if sealed {
            sealed_client(app, dir).await
        } else {
            client(app, dir).await
        }
    };
    let facilitator = open(&dirs[0]).await?;
    facilitator.register(None).await?;
    let circle = facilitator.create_circle().await?;
    let mut clients = vec![facilitator];
    for dir in dirs.iter().skip(1) {
        let member = open(dir).await?;
        member.register(None).await?;
        join(&clients[0], &member, &circle).await?;
        clients.push(member);
    }
    for c in &clients {
        c.sync(&circle).await?;
    }
    Ok((clients, circle))
}

/// Removes the MLS state from a client's data directory (as a backup
/// restored without it would), the device's keys and login left: every row
/// of openmls's tables in `client.db`.
pub fn lose_mls_state(dir: &std::path::Path) -> Result<()> {
    let db = rusqlite::Connection::open(dir.join("client.db"))?;
    let tables: Vec<String> = {
        let mut statement = db.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'openmls_%' \
             AND name NOT LIKE '%migrations%'",
        )?;
        let names = statement.query_map((), |r| r.get::<_, String>(0))?;
        names.collect::<Result<_, _>>()?
    };
    anyhow::ensure!(!tables.is_empty(), "no MLS state in {}", dir.display());
    for table in tables {
        db.execute(&format!("DELETE FROM \"{table}\""), ())?;
    }
    Ok(())
}

/// A biweekly series of six 90-minute sessions at 18:00 in Berlin from
/// 5 January 2027: what a facilitator schedules in the phone stories and the
/// link benchmark.
pub fn biweekly_series() -> hearth_protocol::schedule::Series {
    hearth_protocol::schedule::Series {
        first_date: jiff::civil::date(2027, 1, 5),
        start_time: jiff::civil::time(18, 0, 0, 0),
        time_zone: "Europe/Berlin".into(),
        duration_minutes: 90,
        every_weeks: 2,
        count: Some(6),
        until: None,
        title: None,
        agenda: None,
        video_room: false,
    }
}

/// The texts among `messages`, in order (other content left out).
pub fn texts(messages: &[hearth_client::Message]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| match &m.envelope.content {
            hearth_protocol::content::Content::Text { body, .. } => Some(body.clone()),
            _ => None,
        })
        .collect()
}
