//! The store at rest: with a key, its files hold no secret and no content;
//! a store made without a key is not opened with one.
#![allow(clippy::unwrap_used)]

use super::*;
use hearth_protocol::content::{Content, Envelope};

fn key(byte: u8) -> SecretBox<[u8; 32]> {
    SecretBox::new(Box::new([byte; 32]))
}

/// Every file of the store, write-ahead log included.
fn files(dir: &Path) -> Vec<u8> {
    std::fs::read_dir(dir)
        .unwrap()
        .flat_map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect()
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn with_a_key_the_files_hold_no_seed_token_name_title_or_message() {
    let dir = tempfile::tempdir().unwrap();
    let seed = [0x5e_u8; 32];
    let circle = CircleId::from_bytes(b"circle-canary-id".to_vec()).unwrap();
    let device = DeviceId::from_uuid(uuid::Uuid::new_v4());
    {
        let store = Store::open(dir.path(), Some(&key(1))).unwrap();
        store
            .save_device(device, AccountId::from_uuid(uuid::Uuid::new_v4()), &seed)
            .unwrap();
        store
            .save_login(&LoginRow {
                access_token: "access-token-canary".into(),
                access_expires: 1,
                refresh_token: "refresh-token-canary".into(),
            })
            .unwrap();
        store.set_setting("display_name", "name-canary").unwrap();
        store
            .set_name(&circle, device, "member-name-canary")
            .unwrap();
        store.set_title(&circle, "title-canary").unwrap();
        store
            .save_note_key(uuid::Uuid::new_v4(), &circle, b"note-key-canary")
            .unwrap();
        let envelope = Envelope::new(Content::Text {
            id: uuid::Uuid::new_v4(),
            body: "message-canary".into(),
        });
        store
            .add_history(
                &circle,
                &Message {
                    seq: 7,
                    sender: device,
                    envelope: envelope.clone(),
                    received_at: 1,
                },
            )
            .unwrap();
        // Read back through the vault.
        assert_eq!(store.device().unwrap().unwrap().seed.expose_secret(), &seed);
        assert_eq!(
            store.login().unwrap().unwrap().refresh_token,
            "refresh-token-canary"
        );
        assert_eq!(
            store.title(&circle).unwrap().as_deref(),
            Some("title-canary")
        );
        assert_eq!(store.history(&circle).unwrap()[0].envelope, envelope);
    }
    let bytes = files(dir.path());
    assert!(!holds(&bytes, &seed), "the key seed");
    for canary in [
        "access-token-canary",
        "refresh-token-canary",
        "name-canary",
        "member-name-canary",
        "title-canary",
        "note-key-canary",
        "message-canary",
    ] {
        assert!(!holds(&bytes, canary.as_bytes()), "{canary} on disk");
    }

    // The right key opens it again; a wrong key and no key are refused,
    // and say so.
    let reopened = Store::open(dir.path(), Some(&key(1))).unwrap();
    assert_eq!(
        reopened.setting("display_name").unwrap().as_deref(),
        Some("name-canary")
    );
    drop(reopened);
    assert!(matches!(
        Store::open(dir.path(), Some(&key(2))),
        Err(ClientError::WrongKey)
    ));
    assert!(matches!(
        Store::open(dir.path(), None),
        Err(ClientError::Locked)
    ));
}

#[test]
fn a_store_made_without_a_key_is_not_opened_with_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), None).unwrap();
    store
        .save_device(
            DeviceId::from_uuid(uuid::Uuid::new_v4()),
            AccountId::from_uuid(uuid::Uuid::new_v4()),
            &[1; 32],
        )
        .unwrap();
    store
        .set_title(&CircleId::from_bytes(vec![9; 16]).unwrap(), "plain")
        .unwrap();
    drop(store);
    assert!(matches!(
        Store::open(dir.path(), Some(&key(1))),
        Err(ClientError::NotEncrypted)
    ));
    let store = Store::open(dir.path(), None).unwrap();
    assert_eq!(
        store
            .title(&CircleId::from_bytes(vec![9; 16]).unwrap())
            .unwrap()
            .as_deref(),
        Some("plain")
    );
}
