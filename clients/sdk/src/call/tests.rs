//! Media keys: RFC 9605's own test vector for our suite, key ids as §5.2
//! builds them, and keys that move with the epoch and keep a grace period.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use sframe::frame::FrameCounter;

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// A counter that hands out one given value (the vector's).
struct At(u64);

impl FrameCounter for At {
    type Error = std::convert::Infallible;
    fn try_next(&mut self) -> Result<u64, Self::Error> {
        Ok(self.0)
    }
}

#[test]
fn rfc_9605_appendix_c_vector_for_aes_128_gcm_sha256_128() {
    // RFC 9605, Appendix C.4, cipher suite 0x0004.
    let base_key = unhex("000102030405060708090a0b0c0d0e0f");
    let (kid, ctr) = (0x123_u64, 0x4567_u64);
    let metadata = unhex("4945544620534672616d65205747");
    let plaintext = unhex("64726166742d696574662d736672616d652d656e63");
    let expected = unhex(
        "9901234567b7412c2513a1b66dbb48841bbaf17f598751176ad847681a69c6d0b091c07018ce4adb34eb",
    );
    let key = EncryptionKey::derive_from(SUITE, kid, &base_key).unwrap();
    let frame = MediaFrame::try_with_meta_data(&mut At(ctr), &plaintext, &metadata).unwrap();
    let encrypted = frame.encrypt(&key).unwrap();
    assert_eq!(encrypted.sframe_cipher_text(), expected.as_slice());

    let key = DecryptionKey::derive_from(SUITE, kid, &base_key).unwrap();
    let decrypted = encrypted.decrypt(&key).unwrap();
    assert_eq!(decrypted.payload(), plaintext.as_slice());
}

#[test]
fn a_key_id_carries_the_senders_leaf_and_the_epochs_low_bits() {
    assert_eq!(key_id(0, 7, 3).unwrap(), (3 << EPOCH_BITS) | 7);
    assert_eq!(
        key_id(0, 17, 3).unwrap(),
        (3 << EPOCH_BITS) | 1,
        "the low four bits"
    );
    assert!(key_id(0, 1, 256).is_err(), "a leaf index past eight bits");
    assert_eq!(
        key_id(5, 7, 3).unwrap(),
        (5 << (EPOCH_BITS + INDEX_BITS)) | (3 << EPOCH_BITS) | 7,
        "the context above the leaf"
    );
    assert!(
        key_id(1 << CONTEXT_BITS, 1, 3).is_err(),
        "a context too wide"
    );
    let context = fresh_context().unwrap();
    assert!(context < 1 << CONTEXT_BITS);
    assert_ne!(context, fresh_context().unwrap(), "drawn afresh");
}

#[test]
fn keys_move_with_the_epoch_and_the_old_ones_last_a_grace_period() {
    let (first, second) = (vec![1u8; 16], vec![2u8; 16]);
    let alice = CallKeys::starting_with(
        1,
        EpochKeys::new(1, 0, 1, first.clone(), vec![7u8; 32]).unwrap(),
    );
    let sam = CallKeys::starting_with(2, EpochKeys::new(1, 1, 2, first, vec![7u8; 32]).unwrap());
    let before = alice.encrypt(b"frame in epoch 1").unwrap();
    assert_eq!(sam.decrypt(&before).unwrap(), b"frame in epoch 1");

    let mut changes = sam.changes().unwrap();
    for keys in [&alice, &sam] {
        let index = if keys.key_id().unwrap() & 0xf0 == 0 {
            0
        } else {
            1
        };
        let context = keys.lock().unwrap().context;
        let next = EpochKeys::new(2, index, context, second.clone(), vec![7u8; 32]).unwrap();
        keys.lock().unwrap().advance(next);
    }
    assert!(changes.has_changed().unwrap());
    assert_eq!(changes.borrow_and_update().epoch, 2);
    assert_eq!(sam.key_id().unwrap(), key_id(2, 2, 1).unwrap());

    let after = alice.encrypt(b"frame in epoch 2").unwrap();
    assert_eq!(sam.decrypt(&after).unwrap(), b"frame in epoch 2");
    assert_eq!(
        sam.decrypt(&before).unwrap(),
        b"frame in epoch 1",
        "in flight, within the grace period"
    );
    sam.set_grace(Duration::ZERO).unwrap();
    std::thread::sleep(Duration::from_millis(2));
    assert!(matches!(
        sam.decrypt(&before),
        Err(ClientError::KeyUnavailable)
    ));
    assert_eq!(sam.decrypt(&after).unwrap(), b"frame in epoch 2");
}

#[test]
fn forged_key_ids_are_not_kept() {
    let base = vec![3u8; 16];
    let alice = CallKeys::starting_with(
        7,
        EpochKeys::new(1, 0, 7, base.clone(), vec![7u8; 32]).unwrap(),
    );
    let sam = CallKeys::starting_with(8, EpochKeys::new(1, 1, 8, base, vec![7u8; 32]).unwrap());
    let frame = alice.encrypt(b"a real frame").unwrap();
    // The SFU rewrites nothing it could: every other key id fails the tag.
    for context in 100..(100 + KEPT_DECRYPTION_KEYS as u64 * 2) {
        let forged_key =
            EncryptionKey::derive_from(SUITE, key_id(context, 1, 0).unwrap(), &[9u8; 16]).unwrap();
        let forged = MediaFrame::try_new(&mut At(0), b"forged")
            .unwrap()
            .encrypt(&forged_key)
            .unwrap();
        assert!(sam.decrypt(forged.as_ref()).is_err());
    }
    assert_eq!(sam.lock().unwrap().current.decrypt.len(), 0, "nothing kept");
    assert_eq!(sam.decrypt(&frame).unwrap(), b"a real frame");
    assert_eq!(sam.lock().unwrap().current.decrypt.len(), 1);
}
