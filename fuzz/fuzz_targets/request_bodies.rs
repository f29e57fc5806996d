//! Every JSON request body the server decodes, as actix's `Json` extractor
//! does (serde_json into the protocol type): no input may panic, and what
//! decodes must encode and decode back to itself.
#![no_main]

use hearth_protocol::auth::{Login, RefreshRequest, RegisterDevice};
use hearth_protocol::circles::{
    Ack, CommitBundle, CreateCircle, CreateInvite, PutSnapshot, RedeemInvite, SendMessage,
};
use hearth_protocol::key_packages::{ClaimKeyPackages, UploadKeyPackages};
use hearth_protocol::push::PushTarget;
use hearth_protocol::sync::SyncRequest;
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<T>(data) {
        let again = serde_json::to_vec(&value).expect("what decoded encodes");
        let back: T = serde_json::from_slice(&again).expect("what encoded decodes");
        assert_eq!(value, back);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<RegisterDevice>(data);
    round_trip::<Login>(data);
    round_trip::<RefreshRequest>(data);
    round_trip::<CreateCircle>(data);
    round_trip::<CommitBundle>(data);
    round_trip::<SendMessage>(data);
    round_trip::<Ack>(data);
    round_trip::<PutSnapshot>(data);
    round_trip::<CreateInvite>(data);
    round_trip::<RedeemInvite>(data);
    round_trip::<UploadKeyPackages>(data);
    round_trip::<ClaimKeyPackages>(data);
    round_trip::<PushTarget>(data);
    round_trip::<SyncRequest>(data);
});
