//! The client and server states as devices and backends receive them: prefix, base64url,
//! JSON, fields, signature. Whatever the text, a state or an error, never a crash; a state
//! that decodes re-encodes to itself, and its sketch's parts are checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recognize_agent::protect::states::{ClientState, Envelope, ServerState};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(state) = ClientState::decode(&text) {
        assert_eq!(ClientState::decode(&state.encode()), Ok(state.clone()));
        let _ = state.sketch();
    }
    if let Ok(state) = ServerState::decode(&text) {
        assert_eq!(ServerState::decode(&state.encode()), Ok(state));
    }
});
