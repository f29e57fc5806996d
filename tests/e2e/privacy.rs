//! The privacy proof: a scripted conversation and calendar whose every
//! plaintext (and the exact time the circle meets) carries a unique canary
//! runs against a server logging at debug level. Afterwards
//! the database (SQLite files with their WAL, or every PostgreSQL row) and the
//! server's logs are searched for every canary in raw, hex and base64 form.
//! Zero hits, or the test fails.

use anyhow::Result;
use base64::Engine as _;
use hearth_client::Client;
use hearth_protocol::schedule::{RsvpAnswer, Series};
use hearth_tests::clients::data_dirs;
use hearth_tests::{Db, TestApp, TestDb, hex, on_both_databases, rand_bytes};

on_both_databases!(the_server_keeps_no_trace_of_what_was_said);

#[tokio::test]
async fn a_phone_keeps_its_circle_sealed_at_rest() -> Result<()> {
    phone_keeps_its_circle_sealed_at_rest().await
}

/// The forms a canary could leak in.
fn forms(canary: &str) -> Vec<String> {
    let bytes = canary.as_bytes();
    vec![
        canary.to_owned(),
        hex(bytes),
        hex(bytes).to_uppercase(),
        base64::engine::general_purpose::STANDARD.encode(bytes),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        // A canary inside a longer base64 string starts at any of three
        // alignments; the middle of each alignment is what can show up.
        base64::engine::general_purpose::STANDARD.encode([b"x", bytes].concat()),
        base64::engine::general_purpose::STANDARD.encode([b"xy", bytes].concat()),
    ]
    .into_iter()
    .map(|f| {
        if f.len() > 16 {
            f[4..f.len() - 4].to_owned()
        } else {
            f
        }
    })
    .collect()
}

async fn stored_bytes(db: &TestDb) -> Result<Vec<u8>> {
    let mut haystack = Vec::new();
    match db {
        TestDb::Sqlite(dir) => {
            for entry in std::fs::read_dir(dir.path())? {
                let path = entry?.path();
                if path.is_file() {
                    haystack.extend(std::fs::read(&path)?);
                }
            }
        }
        TestDb::Postgres(_) => {}
    }
    for row in db.dump().await? {
        haystack.extend(row.into_bytes());
        haystack.push(b'\n');
    }
    Ok(haystack)
}

/// Case-insensitive search (stricter than needed for base64: a false alarm
/// is possible, a miss is not). `haystack` is already lowercase.
fn contains(haystack: &[u8], needle: &str) -> bool {
    let needle = needle.to_ascii_lowercase();
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn lowercase(bytes: Vec<u8>) -> Vec<u8> {
    bytes.into_iter().map(|b| b.to_ascii_lowercase()).collect()
}

async fn the_server_keeps_no_trace_of_what_was_said(db: Db) -> Result<()> {
    let captured = hearth_tests::captured_logs();
    let app = TestApp::spawn(db).await?;
    let canary = |what: &str| format!("CANARY-{what}-{}", hex(&rand_bytes::<8>()));
    let dirs = data_dirs(3)?;
    let facilitator = Client::open(&app.address, dirs[0].path()).await?;
    let sam = Client::open(&app.address, dirs[1].path()).await?;
    let alex = Client::open(&app.address, dirs[2].path()).await?;
    for c in [&facilitator, &sam, &alex] {
        c.register(None).await?;
    }
    let circle = facilitator.create_circle().await?;
    let mut canaries = Vec::new();
    for member in [&sam, &alex] {
        let link = facilitator.create_invite(&circle).await?;
        let note = canary("note");
        let request = member.redeem_invite(&link, &note).await?;
        canaries.push(note);
        facilitator.approve(&circle, request).await?;
        member.accept_welcomes().await?;
    }
    for round in 0..3 {
        for (who, client) in [
            ("facilitator", &facilitator),
            ("sam", &sam),
            ("alex", &alex),
        ] {
            client.sync(&circle).await?;
            let text = canary(&format!("{who}-{round}"));
            client.send_text(&circle, &text).await?;
            canaries.push(text);
        }
    }
    for client in [&facilitator, &sam, &alex] {
        client.sync(&circle).await?;
    }
    // The conversation really happened: every client decrypted the canaries.
    let seen = sam.history(&circle).await?.len();
    assert_eq!(seen, 9);

    // The calendar is content too: titles, agendas, the agreement, RSVP
    // notes, check-ins, and when the circle meets.
    let (title, agenda, agreement) = (canary("title"), canary("agenda"), canary("agreement"));
    let (note, prompt_text, reply) = (canary("rsvp"), canary("prompt"), canary("reply"));
    let first = jiff::civil::date(2027, 5, 13);
    let series = Series {
        first_date: first,
        start_time: jiff::civil::time(18, 47, 0, 0),
        time_zone: "Europe/Berlin".into(),
        duration_minutes: 75,
        every_weeks: 2,
        count: Some(6),
        until: None,
        title: Some(title.clone()),
        agenda: Some(agenda.clone()),
        video_room: true,
    };
    let series = facilitator.schedule_series(&circle, series).await?;
    sam.rsvp(&circle, series, first, RsvpAnswer::Passing, Some(&note))
        .await?;
    facilitator.set_agreement(&circle, &agreement).await?;
    let prompt = facilitator.prompt_check_in(&circle, &prompt_text).await?;
    alex.reply_check_in(&circle, prompt, 3, Some(&reply))
        .await?;
    let calendar = alex.calendar(&circle).await?;
    assert_eq!(calendar.sessions.len(), 6, "the schedule really arrived");
    let start = first
        .at(18, 47, 0, 0)
        .to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Berlin")?)?;
    assert_eq!(calendar.sessions[0].start, start);
    canaries.extend([title, agenda, agreement, note, prompt_text, reply]);
    canaries.push("2027-05-13T18:47".to_owned());
    canaries.push(start.timestamp().as_second().to_string());

    // The search can find a canary: Sam's own device keeps the history.
    let mut on_device = Vec::new();
    for entry in std::fs::read_dir(dirs[1].path())? {
        on_device.extend(std::fs::read(entry?.path())?);
    }
    let on_device = lowercase(on_device);
    assert!(
        canaries.iter().skip(2).any(|c| contains(&on_device, c)),
        "the control search finds plaintext on a client"
    );

    let db = app.stop().await?;
    let mut haystack = stored_bytes(&db).await?;
    let logged = captured.bytes();
    assert!(
        String::from_utf8_lossy(&logged).contains("request finished"),
        "the server's logs were captured"
    );
    haystack.extend(logged);
    let haystack = lowercase(haystack);
    for canary in &canaries {
        for form in forms(canary) {
            assert!(
                !contains(&haystack, &form),
                "a canary leaked in the form {form}"
            );
        }
    }
    Ok(())
}

/// A phone's data directory, opened with a key from the platform's key
/// store: after a circle's life, no file holds a message, a name, a title or
/// a token in the clear, every value openmls stored is sealed, and another
/// key (or none) is refused with a clear error.
async fn phone_keeps_its_circle_sealed_at_rest() -> Result<()> {
    use hearth_client::ClientError;
    use secrecy::SecretBox;
    let app = TestApp::spawn(Db::Sqlite).await?;
    let dirs = data_dirs(2)?;
    let key = |byte: u8| SecretBox::new(Box::new([byte; 32]));
    let alice = Client::open_encrypted(&app.address, dirs[0].path(), key(1)).await?;
    let sam = Client::open_encrypted(&app.address, dirs[1].path(), key(2)).await?;
    alice.register(None).await?;
    sam.register(None).await?;
    alice.set_display_name("alice-name-canary").await?;
    sam.set_display_name("sam-name-canary").await?;
    let circle = alice.create_circle().await?;
    alice.set_title(&circle, "title-canary").await?;
    hearth_tests::clients::join(&alice, &sam, &circle).await?;
    alice
        .send_text(&circle, "message-canary from alice")
        .await?;
    sam.sync(&circle).await?;
    sam.send_text(&circle, "message-canary from sam").await?;
    alice.sync(&circle).await?;
    assert_eq!(sam.title(&circle).await?.as_deref(), Some("title-canary"));
    assert_eq!(sam.history(&circle).await?.len(), 2);
    drop((alice, sam));

    for dir in &dirs {
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(dir.path())? {
            bytes.extend(std::fs::read(entry?.path())?);
        }
        let seen = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        for canary in [
            "message-canary",
            "alice-name-canary",
            "sam-name-canary",
            "title-canary",
        ] {
            for form in forms(canary) {
                assert!(!seen(form.as_bytes()), "{canary} on the phone's disk");
            }
        }
        // An access token is a JWT: its header would begin `eyJ`.
        assert!(!seen(b"eyJ"), "a token on the phone's disk");
        // openmls's keys and values would be JSON in the clear; sealed, none
        // parses.
        let mls = dir.path().join("client.db");
        let pool = sqlx::SqlitePool::connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&mls)
                .read_only(true),
        )
        .await?;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'openmls_%' \
             AND name NOT LIKE '%migrations%'",
        )
        .fetch_all(&pool)
        .await?;
        let mut values = 0;
        for table in tables {
            let columns: Vec<String> =
                sqlx::query_scalar("SELECT name FROM pragma_table_info($1) WHERE type = 'BLOB'")
                    .bind(&table)
                    .fetch_all(&pool)
                    .await?;
            for column in &columns {
                let blobs: Vec<Vec<u8>> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT \"{column}\" FROM \"{table}\""
                )))
                .fetch_all(&pool)
                .await?;
                for blob in blobs {
                    values += 1;
                    assert!(
                        serde_json::from_slice::<serde_json::Value>(&blob).is_err(),
                        "{table}.{column} holds MLS state in the clear"
                    );
                }
            }
        }
        assert!(
            values >= 10,
            "the MLS store was found and read ({values} values)"
        );
        pool.close().await;
    }

    // The right key opens the phone's history again; another key, or none,
    // is refused and says why.
    let reopened = Client::open_encrypted(&app.address, dirs[1].path(), key(2)).await?;
    assert_eq!(reopened.history(&circle).await?.len(), 2);
    drop(reopened);
    let wrong = Client::open_encrypted(&app.address, dirs[1].path(), key(9)).await;
    assert!(matches!(wrong, Err(ClientError::WrongKey)), "{wrong:?}");
    let none = Client::open(&app.address, dirs[1].path()).await;
    assert!(matches!(none, Err(ClientError::Locked)), "{none:?}");
    Ok(())
}
