//! The server's reading of MLS framing (`hearth_protocol::framing`) on
//! arbitrary bytes: never a panic, and the two readers agree — whatever
//! `private_ciphertext` finds, `read` reads as a PrivateMessage whose
//! ciphertext has that length; and re-framing what it read reads back the same.
#![no_main]

use hearth_protocol::framing::{self, Header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let header = framing::read(data);
    if let Some(ciphertext) = framing::private_ciphertext(data) {
        match header {
            Ok(Header::Private {
                group_id,
                epoch,
                content_type,
                ciphertext_len,
            }) => {
                assert_eq!(ciphertext_len, ciphertext.len());
                let again = framing::private_message(group_id, epoch, content_type, &[], ciphertext);
                assert_eq!(
                    framing::read(&again),
                    Ok(Header::Private {
                        group_id,
                        epoch,
                        content_type,
                        ciphertext_len,
                    })
                );
            }
            other => panic!("private_ciphertext found one, read says {other:?}"),
        }
    }
});
