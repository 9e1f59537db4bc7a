//! The client and server states as devices and backends receive them: prefix, kid,
//! base64url, signature, JSON, fields. Whatever the text, a state or an error, never a
//! crash; a state that decodes carries the prefix and agent key it names, and no longer
//! decodes once its signature changes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recognize_agent::protect::states::{self, ClientState, Kind, ServerState};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check::<ClientState>(&text);
    check::<ServerState>(&text);
});

/// A decoded state's parts are the text's; it never decodes from a changed signature.
fn check<T: Kind + PartialEq + std::fmt::Debug>(text: &str) {
    let Ok(signed) = states::decode::<T>(text) else {
        return;
    };
    let trimmed = text.trim();
    assert!(trimmed.starts_with(T::PREFIX));
    assert!(trimmed.contains(&states::b64(&signed.agent)));
    let mut altered = trimmed.to_string();
    let last = altered.pop().unwrap_or('A');
    altered.push(if last == 'A' { 'B' } else { 'A' });
    assert!(states::decode::<T>(&altered).is_err());
}
