//! The backend's routes, on `embedded-svc`'s HTTP server traits like the agent's.
//!
//! Every call carries `X-Api-Key`: the API key, or for management calls (unlocking,
//! deleting a user) the admin key. Users are registered only from server states signed by
//! a trusted agent and sealed to this backend; a device is bound only when the template
//! it sends with a fresh challenge matches the user's, within the user's attempt budget.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use embedded_svc::http::Method;
use embedded_svc::http::server::Connection;

use super::matching;
use super::messages::{self, Bind, Bound, Challenge, DeviceType, Devices, Register, Registered};
use super::store::{Attempt, NewUser, Store, StoreError};
use crate::clock::{Clock, SystemClock};
use crate::contract::Health;
use crate::protect::keys;
use crate::protect::rotation::Template;
use crate::protect::seal::SealingKey;
use crate::protect::states::{self, ServerState};
use crate::service::api_key::ApiKey;
use crate::service::error::ApiError;
use crate::service::exchange::{exchange, method_not_allowed, read_json};
use crate::service::reply::{Reply, YAML};
use crate::service::{Peer, Service};

/// Largest request body: the API's documents are small.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The backend's OpenAPI description, served at `/openapi.yaml` without a key.
pub const OPENAPI: &str = include_str!("openapi.yaml");

/// Bytes of a challenge nonce.
const CHALLENGE_BYTES: usize = 32;

/// How the backend is run.
pub struct BackendSettings {
    /// The key every call must carry in `X-Api-Key`.
    pub api_key: ApiKey,
    /// The key management calls (unlocking, deleting a user) carry in `X-Api-Key`
    /// instead; without it they are refused.
    pub admin_key: Option<ApiKey>,
    /// Identity public keys of the agents whose server states are accepted.
    pub trusted_agents: Vec<[u8; 32]>,
    /// How long a challenge stays valid.
    pub challenge_ttl: Duration,
    /// The key server states are sealed to.
    pub sealing: SealingKey,
    /// The cosine at or above which a template matches the user's.
    pub threshold: f32,
}

/// Agent identity keys as `recognize-agent identity` prints them (base64url), checked;
/// at least one.
pub fn trusted_agents(keys: &[String]) -> Result<Vec<[u8; 32]>, String> {
    let trusted = keys
        .iter()
        .map(|k| k.trim())
        .filter(|k| !k.is_empty())
        .map(|k| states::public_key(k).ok_or_else(|| format!("'{k}' is not an agent's public key")))
        .collect::<Result<Vec<_>, _>>()?;
    if trusted.is_empty() {
        return Err("no agent named; `recognize-agent identity` prints an agent's key".into());
    }
    Ok(trusted)
}

/// The backend service: the store, its settings and its clock.
pub struct Backend {
    store: Mutex<Store>,
    settings: BackendSettings,
    clock: Arc<dyn Clock>,
}

impl Backend {
    /// The backend on the system's clock.
    pub fn new(store: Store, settings: BackendSettings) -> Backend {
        Backend {
            store: Mutex::new(store),
            settings,
            clock: Arc::new(SystemClock),
        }
    }

    /// The same backend on `clock`.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Backend {
        Backend { clock, ..self }
    }

    /// The store; a panic elsewhere never leaves it mid-transaction (transactions roll
    /// back when dropped), so a poisoned lock is still usable.
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Service for Backend {
    fn handle<C: Connection + Peer>(&self, conn: &mut C) -> Result<(), C::Error> {
        exchange(conn, |conn, method, path| self.route(conn, method, path))
    }
}

/// A route of the API, with the path parameters it holds.
enum Route<'a> {
    Health,
    OpenApi,
    Register { committed: bool },
    Commit(&'a str),
    User(&'a str),
    Unlock(&'a str),
    Challenges(&'a str),
    Devices(&'a str),
    Device(&'a str, &'a str),
}

impl<'a> Route<'a> {
    /// The route of `path`, and the methods it accepts.
    fn of(path: &'a str) -> Option<(Route<'a>, &'static str)> {
        match path {
            "/health-check" => return Some((Route::Health, "GET")),
            "/openapi.yaml" => return Some((Route::OpenApi, "GET")),
            _ => {}
        }
        // At most four segments after /v1/; more is no route.
        let mut parts = heapless::Vec::<&str, 4>::new();
        for part in path.strip_prefix("/v1/")?.split('/') {
            parts.push(part).ok()?;
        }
        let id = |s: &'a str| valid_id(s).then_some(s);
        Some(match parts.as_slice() {
            ["uncommitted-users"] => (Route::Register { committed: false }, "POST"),
            ["users"] => (Route::Register { committed: true }, "POST"),
            ["uncommitted-users", u, "commit"] => (Route::Commit(id(u)?), "POST"),
            ["users", u] => (Route::User(id(u)?), "DELETE"),
            ["users", u, "unlock"] => (Route::Unlock(id(u)?), "POST"),
            ["users", u, "challenges"] => (Route::Challenges(id(u)?), "POST"),
            ["users", u, "devices"] => (Route::Devices(id(u)?), "GET, POST"),
            ["users", u, "devices", d] => (Route::Device(id(u)?, id(d)?), "DELETE"),
            _ => return None,
        })
    }
}

/// Key and device ids: 1 to 64 characters of `[A-Za-z0-9_-]`.
fn valid_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Backend {
    fn route<C: Connection>(
        &self,
        conn: &mut C,
        method: Method,
        path: &str,
    ) -> Result<Reply, ApiError> {
        let route = Route::of(path);
        // Only the API's description is public; management calls take the admin key.
        match route {
            Some((Route::OpenApi, _)) => {}
            Some((Route::User(_) | Route::Unlock(_), _)) => match &self.settings.admin_key {
                Some(key) => key.check(conn)?,
                None => {
                    return Err(ApiError::new(
                        403,
                        "management calls (unlocking, deleting a user) are off: this backend \
                         has no BACKEND_ADMIN_KEY",
                    ));
                }
            },
            _ => self.settings.api_key.check(conn)?,
        }
        let (route, allowed) =
            route.ok_or_else(|| ApiError::new(404, format!("no such endpoint: {path}")))?;
        match (route, method) {
            (Route::Health, Method::Get) => Ok(Reply::json(200, &Health::ok())),
            (Route::OpenApi, Method::Get) => Ok(Reply::document(YAML, OPENAPI)),
            (Route::Register { committed }, Method::Post) => {
                let body: Register = read_json(conn, MAX_BODY_BYTES)?;
                self.register(&body.server_state, committed)
            }
            (Route::Commit(id), Method::Post) => {
                self.change(id, "committed", Store::commit)?;
                Ok(registered(200, id))
            }
            (Route::User(id), Method::Delete) => {
                self.change(id, "deleted user", Store::delete_user)?;
                Ok(Reply::no_content())
            }
            (Route::Unlock(id), Method::Post) => {
                self.change(id, "unlocked", Store::unlock)?;
                Ok(registered(200, id))
            }
            (Route::Challenges(id), Method::Post) => self.challenge(id),
            (Route::Devices(id), Method::Get) => {
                let devices = self.store().devices(id).map_err(|e| store_error(e, id))?;
                Ok(Reply::json(200, &Devices { devices }))
            }
            (Route::Devices(id), Method::Post) => {
                let request: Bind = read_json(conn, MAX_BODY_BYTES)?;
                self.bind(id, &request)
            }
            (Route::Device(id, device), Method::Delete) => {
                self.store()
                    .delete_device(id, device, self.clock.now())
                    .map_err(|e| match e {
                        StoreError::NotFound => {
                            ApiError::new(404, format!("user {id} has no device {device}"))
                        }
                        other => store_error(other, id),
                    })?;
                log::info!(target: "backend", "deleted device {device} of {id}");
                Ok(Reply::no_content())
            }
            _ => Err(method_not_allowed(path, allowed)),
        }
    }

    /// Runs a change of user `id` at the current time, and logs it as `done`.
    fn change(
        &self,
        id: &str,
        done: &str,
        change: impl FnOnce(&mut Store, &str, u64) -> Result<(), StoreError>,
    ) -> Result<(), ApiError> {
        change(&mut self.store(), id, self.clock.now()).map_err(|e| store_error(e, id))?;
        log::info!(target: "backend", "{done} {id}");
        Ok(())
    }

    fn register(&self, text: &str, committed: bool) -> Result<Reply, ApiError> {
        let bad = |why: String| ApiError::bad_request(format!("serverState: {why}"));
        let signed = states::decode::<ServerState>(text).map_err(|e| bad(e.to_string()))?;
        let state = signed.state;
        if !self.settings.trusted_agents.contains(&signed.agent) {
            return Err(ApiError::new(
                403,
                format!(
                    "the server state was made by agent {}, which this backend does not trust \
                     (TRUSTED_AGENT_KEYS)",
                    states::b64(&signed.agent)
                ),
            ));
        }
        let id = state.keyless_id.as_str();
        if !valid_id(id) {
            return Err(bad("the keylessId is malformed".into()));
        }
        states::check_model(&state.model).map_err(|e| bad(e.to_string()))?;
        let now = self.clock.now();
        if now > state.exp {
            return Err(bad(format!(
                "it expired at {} (Unix seconds); enrol the person again",
                state.exp
            )));
        }
        let sealing = &self.settings.sealing;
        if state.sealed_to != sealing.public().id() {
            return Err(bad(format!(
                "it is sealed to backend key {}, not to this backend's {}",
                states::b64(&state.sealed_to),
                states::b64(&sealing.public().id())
            )));
        }
        let template = state
            .open_template(sealing)
            .map_err(|_| bad("its template does not open with this backend's key".into()))?;
        let device_id = random(states::random_id)?;
        let user = NewUser {
            keyless_id: id,
            template: &template,
            agent_key: &signed.agent,
            scenario: state.scenario.as_str(),
            created: state.iat,
            device: (&device_id, DeviceType::from(state.client_type)),
        };
        self.store()
            .register(&user, committed)
            .map_err(|e| store_error(e, id))?;
        log::info!(target: "backend", "registered {id} (committed: {committed})");
        Ok(registered(201, id))
    }

    fn challenge(&self, id: &str) -> Result<Reply, ApiError> {
        let nonce = states::b64(&random(states::random_bytes::<CHALLENGE_BYTES>)?);
        let now = self.clock.now();
        let expires_at = now + self.settings.challenge_ttl.as_secs();
        self.store()
            .add_challenge(id, &nonce, now, expires_at)
            .map_err(|e| store_error(e, id))?;
        Ok(Reply::json(
            201,
            &Challenge {
                challenge: nonce,
                expires_at,
            },
        ))
    }

    /// A binding attempt: the device's signature, then the match, then the record.
    fn bind(&self, id: &str, request: &Bind) -> Result<Reply, ApiError> {
        let challenge = states::bytes(&request.challenge, "challenge")
            .ok()
            .filter(|c| c.len() == CHALLENGE_BYTES)
            .ok_or_else(|| ApiError::bad_request("challenge: not one of this backend's"))?;
        let device_key = public_key(&request.device_public_key, "devicePublicKey")?;
        let sent = states::bytes(&request.template, "template").unwrap_or_default();
        let template = Template::from_bytes(&sent).ok_or_else(|| {
            ApiError::bad_request(format!(
                "template: not {} little-endian floats of unit length, base64url",
                crate::vision::embed::DIM
            ))
        })?;
        let signature = states::bytes(&request.signature, "signature")
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let message = messages::bind_message(id, &challenge, &device_key, &sent);
        if !keys::verify(&device_key, &message, &signature) {
            return Err(ApiError::bad_request(
                "signature: not the device key's over this request",
            ));
        }
        let mut store = self.store();
        let enrolled = store.template(id).map_err(|e| store_error(e, id))?;
        let matched = matching::score(&enrolled, &template) >= self.settings.threshold;
        let device_id = random(states::random_id)?;
        let device = (device_id.as_str(), DeviceType::Sdk, &device_key[..]);
        let attempt = store
            .attempt(id, &request.challenge, self.clock.now(), device, matched)
            .map_err(|e| store_error(e, id))?;
        drop(store);
        match attempt {
            Attempt::Bound => {
                log::info!(target: "backend", "bound device {device_id} to {id}");
                Ok(Reply::json(
                    201,
                    &Bound {
                        keyless_id: id.into(),
                        device_id,
                        device_type: DeviceType::Sdk,
                    },
                ))
            }
            Attempt::Refused { left } => {
                log::warn!(target: "backend", "refused a device binding for {id}: no match");
                Err(ApiError::new(
                    403,
                    format!(
                        "the face does not match the enrolled person; the challenge is spent \
                         ({left} more refusals lock the account)"
                    ),
                ))
            }
            Attempt::Locked => {
                log::warn!(target: "backend", "refused a device binding for {id}; user locked");
                Err(store_error(StoreError::Locked, id))
            }
        }
    }
}

/// The answer naming user `id`.
fn registered(status: u16, id: &str) -> Reply {
    Reply::json(
        status,
        &Registered {
            keyless_id: id.into(),
        },
    )
}

/// An Ed25519 public key from base64url, or a 400 naming `field`.
fn public_key(value: &str, field: &str) -> Result<[u8; 32], ApiError> {
    states::public_key(value)
        .ok_or_else(|| ApiError::bad_request(format!("{field} is not an Ed25519 public key")))
}

/// What `draw` takes from the OS's random source, or a 500.
fn random<T>(draw: impl FnOnce() -> Result<T, getrandom::Error>) -> Result<T, ApiError> {
    draw().map_err(|e| {
        log::error!("no randomness: {e}");
        ApiError::internal("the backend has no source of randomness")
    })
}

fn store_error(e: StoreError, id: &str) -> ApiError {
    match e {
        StoreError::Exists => ApiError::new(409, format!("user {id} is already registered")),
        StoreError::Deleted => ApiError::new(
            410,
            format!("user {id} was deleted; their states are no longer accepted: enrol again"),
        ),
        StoreError::NotFound => ApiError::new(404, format!("no such user: {id}")),
        StoreError::ChallengeSpent => ApiError::new(
            409,
            "the challenge is unknown, used or expired; ask for a new one",
        ),
        StoreError::TooManyChallenges => ApiError::new(
            429,
            "too many open challenges for this user's attempt budget; use one or wait for \
             them to expire",
        )
        .with_header("Retry-After", "60"),
        StoreError::BackingOff { seconds } => ApiError::new(
            429,
            format!("too many refused attempts for this user; try again in {seconds} s"),
        )
        .with_header("Retry-After", seconds.to_string()),
        StoreError::Locked => ApiError::new(
            423,
            format!(
                "user {id} is locked after too many refused attempts; an administrator must \
                 unlock it (POST /v1/users/{id}/unlock)"
            ),
        ),
        StoreError::NoTemplate => ApiError::new(
            409,
            format!(
                "user {id} was enrolled with version-1 states, which can no longer be \
                 matched; enrol the person again"
            ),
        ),
        StoreError::Database(why) => {
            log::error!(target: "backend", "database: {why}");
            ApiError::internal("the backend's database failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::http::connection::MemoryConnection;
    use crate::protect::keys::KeyFile;
    use crate::protect::rotation::{Rotation, random_unit};
    use crate::service::api_key::HEADER;

    const KEY: &str = "test-key";
    const USER: &str = "5bf847c3-9552-4ae4-974b-6220406c26a3";

    /// A backend on `clock` with one committed user whose template is `template`;
    /// challenges live 60 s.
    fn backend(clock: Arc<ManualClock>, template: &Template) -> Backend {
        let agent = KeyFile::ephemeral().unwrap();
        let mut store = Store::open(":memory:".as_ref()).unwrap();
        let user = NewUser {
            keyless_id: USER,
            template,
            agent_key: &agent.public(),
            scenario: "SELFIE",
            created: clock.now(),
            device: ("d1", DeviceType::Backup),
        };
        store.register(&user, true).unwrap();
        let settings = BackendSettings {
            api_key: ApiKey::new(KEY).unwrap(),
            admin_key: None,
            trusted_agents: vec![agent.public()],
            challenge_ttl: Duration::from_secs(60),
            sealing: SealingKey::from_secret(&[5; 32]),
            threshold: 0.5,
        };
        Backend::new(store, settings).with_clock(clock)
    }

    /// `method path` with `body` and the API key: the status and the JSON answer.
    fn call(
        backend: &Backend,
        method: Method,
        path: &str,
        body: &[u8],
    ) -> (u16, serde_json::Value) {
        let mut conn = MemoryConnection::request(method, path, &[(HEADER, KEY)], body);
        backend.handle(&mut conn).unwrap();
        let response = conn.response().unwrap();
        let json = serde_json::from_slice(&response.body).unwrap_or_default();
        (response.status, json)
    }

    /// A device's binding request for `challenge` that sends the enrolled template.
    fn bind_request(challenge: &str, template: &Template) -> Vec<u8> {
        let device = KeyFile::ephemeral().unwrap();
        let nonce = states::bytes(challenge, "challenge").unwrap();
        let sent = template.to_bytes();
        let message = messages::bind_message(USER, &nonce, &device.public(), &sent);
        serde_json::json!({
            "challenge": challenge,
            "template": states::b64(&sent),
            "devicePublicKey": states::b64(&device.public()),
            "signature": states::b64(&device.sign(&message)),
        })
        .to_string()
        .into_bytes()
    }

    /// A challenge answered within its time binds the device; a second challenge answered
    /// once the backend's clock has passed its time is refused, and binds nothing.
    #[test]
    fn a_challenge_expires_by_the_backends_clock() {
        let clock = Arc::new(ManualClock::at(1_800_000_000));
        let template = Rotation::from_seed(&[6; 32]).protect(&random_unit(1));
        let backend = backend(Arc::clone(&clock), &template);
        let challenges = format!("/v1/users/{USER}/challenges");
        let devices = format!("/v1/users/{USER}/devices");
        let device_count = || {
            call(&backend, Method::Get, &devices, b"").1["devices"]
                .as_array()
                .unwrap()
                .len()
        };

        // A challenge, then its answer once `wait` seconds have passed.
        let answer_after = |wait: u64| {
            let (status, challenge) = call(&backend, Method::Post, &challenges, b"");
            assert_eq!(status, 201);
            assert_eq!(challenge["expiresAt"], clock.now() + 60);
            clock.advance(wait);
            let request = bind_request(challenge["challenge"].as_str().unwrap(), &template);
            call(&backend, Method::Post, &devices, &request)
        };

        assert_eq!(answer_after(59).0, 201, "bound within the challenge's time");
        assert_eq!(device_count(), 2);
        let (status, refused) = answer_after(61);
        assert_eq!(status, 409, "{refused}");
        assert!(
            refused["detail"].as_str().unwrap().contains("expired"),
            "{refused}"
        );
        assert_eq!(device_count(), 2);
    }

    #[test]
    fn routes_take_only_well_formed_ids() {
        let id = "5bf847c3-9552-4ae4-974b-6220406c26a3";
        let devices = format!("/v1/users/{id}/devices");
        assert!(matches!(Route::of(&devices), Some((Route::Devices(u), "GET, POST")) if u == id));
        let device = format!("/v1/users/{id}/devices/d_1");
        assert!(matches!(
            Route::of(&device),
            Some((Route::Device(_, "d_1"), "DELETE"))
        ));
        for bad in [
            "/v1/users//devices",
            "/v1/users/a%2Fb/devices",
            "/v1/users/a.b/challenges",
            "/v1/users/a/devices/b/c",
            "/v1/users/a/devices/",
            "/v2/users",
            "/v1/users/",
        ] {
            assert!(Route::of(bad).is_none(), "{bad}");
        }
        assert!(!valid_id(&"a".repeat(65)));
    }

    #[test]
    fn trusted_agent_keys_are_checked() {
        let key = states::b64(&crate::protect::keys::KeyFile::ephemeral().unwrap().public());
        let got = trusted_agents(&[format!(" {key} "), String::new()]).unwrap();
        assert_eq!(got.len(), 1);
        assert!(trusted_agents(&[]).is_err());
        assert!(
            trusted_agents(&["AAAA".into()])
                .unwrap_err()
                .contains("AAAA")
        );
    }
}
