//! The backend's routes on any request: method, path, `X-Api-Key` and body from the
//! fuzzer, against a fresh in-memory store holding one committed user. Flags in the input
//! also let it send states signed by a trusted agent and sealed to the backend (with any
//! keylessId) and binding requests for a real challenge with any template, validly
//! signed or not, and management calls with the admin key, so that it reaches the logic
//! behind the signatures and keys. Whatever it sends:
//! an answer of the API with a JSON body, never a 5xx.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use embedded_svc::http::Method;
use libfuzzer_sys::fuzz_target;
use recognize_agent::backend::api::{Backend, BackendSettings};
use recognize_agent::backend::messages::{DeviceType, bind_message};
use recognize_agent::backend::store::{NewUser, Store};
use recognize_agent::contract::Scenario;
use recognize_agent::service::Service;
use recognize_agent::service::api_key::{ApiKey, HEADER};
use recognize_agent::http::connection::{MemoryConnection, Response};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use recognize_agent::protect::issue::Issuer;
use recognize_agent::protect::keys::KeyFile;
use recognize_agent::protect::rotation::{Rotation, Template, random_unit};
use recognize_agent::protect::seal::SealingKey;
use recognize_agent::protect::states::{self, ClientType};

const KEY: &str = "fuzz-key";
const ADMIN_KEY: &str = "fuzz-admin-key";
const USER: &str = "u1";

/// Statuses the backend may answer with.
const STATUSES: [u16; 13] = [200, 201, 204, 400, 401, 403, 404, 405, 409, 410, 413, 423, 429];

fn agent() -> &'static KeyFile {
    static AGENT: OnceLock<KeyFile> = OnceLock::new();
    AGENT.get_or_init(|| KeyFile::ephemeral().unwrap())
}

fn sealing() -> SealingKey {
    SealingKey::from_secret(&[5; 32])
}

/// The committed user's template.
fn template() -> Template {
    Rotation::from_seed(&[6; 32]).protect(&random_unit(1))
}

fn backend() -> Backend {
    let mut store = Store::open(":memory:".as_ref()).unwrap();
    let user = NewUser {
        keyless_id: USER,
        template: &template(),
        agent_key: &agent().public(),
        scenario: "SELFIE",
        created: 0,
        device: ("d1", DeviceType::Backup),
    };
    store.register(&user, true).unwrap();
    let settings = BackendSettings {
        api_key: ApiKey::new(KEY).unwrap(),
        admin_key: ApiKey::new(ADMIN_KEY),
        trusted_agents: vec![agent().public()],
        challenge_ttl: Duration::from_secs(60),
        sealing: sealing(),
        threshold: 0.5,
    };
    Backend::new(store, settings)
}

fuzz_target!(|data: &[u8]| {
    let [method, flags, rest @ ..] = data else {
        return;
    };
    let methods = [Method::Get, Method::Post, Method::Delete, Method::Put, Method::Head];
    let method = methods[usize::from(*method) % methods.len()];
    let text = String::from_utf8_lossy(rest);
    let (path, body) = text.split_once('\n').unwrap_or((&text, ""));
    let backend = backend();
    let mut request = Request {
        method,
        uri: path.to_string(),
        key: match (flags & 1, flags & 16) {
            (1, _) => None,
            (_, 0) => Some(KEY),
            _ => Some(ADMIN_KEY),
        },
        body: body.as_bytes().to_vec(),
    };
    if flags & 2 != 0 {
        // A state a trusted agent signed, for whatever keylessId the body names.
        request.body = serde_json::json!({"serverState": signed_state(body)}).to_string().into_bytes();
    } else if flags & 4 != 0 {
        // A binding request for a real challenge: the body's bytes as the template, signed
        // by the device key unless the flags say otherwise (the enrolled template itself
        // when the body is empty).
        let challenge = exchange(&backend, Request::post(&format!("/v1/users/{USER}/challenges"), b""));
        let Some(challenge) = challenge.1["challenge"].as_str().map(String::from) else {
            return;
        };
        let device = KeyFile::ephemeral().unwrap();
        let template = if body.is_empty() { template().to_bytes() } else { body.as_bytes().to_vec() };
        let nonce = states::bytes(&challenge, "challenge").unwrap();
        let mut message = bind_message(USER, &nonce, &device.public(), &template);
        if flags & 8 != 0 {
            message.push(0);
        }
        let bind = serde_json::json!({
            "challenge": challenge,
            "template": states::b64(&template),
            "devicePublicKey": states::b64(&device.public()),
            "signature": states::b64(&device.sign(&message)),
        });
        request = Request::post(&format!("/v1/users/{USER}/devices"), bind.to_string().as_bytes());
    }
    exchange(&backend, request);
});

/// Handles `request`; checks and returns the answer's status and JSON body.
fn exchange(backend: &Backend, request: Request) -> (u16, serde_json::Value) {
    let mut conn = request.connection();
    backend.handle(&mut conn).unwrap();
    let Response { status, headers, body } = conn.response().expect("an answer");
    let status = *status;
    assert!(STATUSES.contains(&status), "status {status}");
    if status == 204 {
        assert!(body.is_empty());
        return (status, serde_json::Value::Null);
    }
    let yaml = ("Content-Type".to_string(), "application/yaml".to_string());
    if status == 200 && headers.contains(&yaml) {
        assert!(body.starts_with(b"openapi: "));
        return (status, serde_json::Value::Null);
    }
    assert!(headers.contains(&("Content-Type".into(), "application/json".into())));
    let json: serde_json::Value = serde_json::from_slice(body).expect("a JSON body");
    if status >= 400 {
        assert_eq!(json["statusCode"], status);
    }
    (status, json)
}

/// A server state for `keyless_id`, signed by the trusted agent and sealed to the backend.
fn signed_state(keyless_id: &str) -> String {
    let issuer = Issuer::new(
        KeyFile { key: agent().key.clone() },
        sealing().public().clone(),
    );
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let mut state = issuer
        .issue(&random_unit(2), Scenario::Selfie, ClientType::Backup, 0, &mut rng)
        .unwrap()
        .server_state;
    // The issuer draws its own keylessId; states for any other are forged here the way
    // only a trusted agent could.
    if !keyless_id.is_empty() {
        let signed = states::decode::<states::ServerState>(&state).unwrap();
        let mut server = signed.state;
        server.keyless_id = keyless_id.to_string();
        state = states::encode(&server, agent());
    }
    state
}

struct Request {
    method: Method,
    uri: String,
    /// What `X-Api-Key` holds, if anything.
    key: Option<&'static str>,
    body: Vec<u8>,
}

impl Request {
    fn post(uri: &str, body: &[u8]) -> Request {
        Request { method: Method::Post, uri: uri.into(), key: Some(KEY), body: body.to_vec() }
    }

    /// The request as the front passes it on, with its key if it has one.
    fn connection(self) -> MemoryConnection {
        let key = self.key.map(|key| (HEADER, key));
        MemoryConnection::request(self.method, &self.uri, key.as_slice(), &self.body)
    }
}
