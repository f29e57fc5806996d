//! The server's KeyPackage check (openmls decoding and Hearth's profile
//! rules) on arbitrary bytes: never a panic, only an answer.
#![no_main]

use hearth_protocol::DeviceId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let device = DeviceId::from_uuid(uuid::Uuid::from_bytes([7; 16]));
    let _ = hearth_protocol::mls::check_key_package(data, &device, &[9; 32]);
});
