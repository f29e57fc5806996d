//! The live stream's client frames (JSON text over the WebSocket): no input
//! may panic, and a decoded frame encodes and decodes back to itself.
#![no_main]

use hearth_protocol::stream::ClientFrame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = serde_json::from_slice::<ClientFrame>(data) {
        let again = serde_json::to_vec(&frame).expect("what decoded encodes");
        let back: ClientFrame = serde_json::from_slice(&again).expect("what encoded decodes");
        assert_eq!(frame, back);
    }
});
