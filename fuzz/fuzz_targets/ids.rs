//! Ids and bytes as they arrive in paths and bodies: circle ids (base64url),
//! device, account and request ids (UUIDs), base64url bytes. No input may
//! panic, and whatever parses has exactly one spelling: printing it gives
//! back the input.
#![no_main]

use hearth_protocol::{AccountId, Base64Bytes, CircleId, DeviceId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(circle) = text.parse::<CircleId>() {
        assert_eq!(circle.to_string(), text);
    }
    if let Ok(device) = text.parse::<DeviceId>() {
        assert_eq!(device.to_string(), text);
    }
    if let Ok(account) = text.parse::<AccountId>() {
        assert_eq!(account.to_string(), text);
    }
    if let Some(bytes) = Base64Bytes::decode(text) {
        assert_eq!(Base64Bytes::encode(&bytes), text);
    }
    let quoted = serde_json::to_string(text).expect("a string encodes");
    if let Ok(bytes) = serde_json::from_str::<Base64Bytes>(&quoted) {
        assert_eq!(Base64Bytes::encode(bytes.as_slice()), text);
    }
});
