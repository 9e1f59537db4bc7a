//! A client of the backend's API, for the agent (online enrolment) and the device
//! (recovery).

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::messages::{Bind, Bound, Challenge, Device, Devices, Register, Registered};
use crate::contract::{OfflineEnrollment, OnlineEnrollment, Problem};

/// How long one call may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Largest answer read from the backend.
const MAX_ANSWER_BYTES: u64 = 1024 * 1024;

/// Why a call failed.
#[derive(Debug, PartialEq, Eq)]
pub enum CallError {
    /// The backend could not be reached or did not answer in time.
    Unreachable(String),
    /// The backend answered with an error status; `detail` is its explanation.
    Refused { status: u16, detail: String },
    /// The backend answered something that is not its API.
    Invalid(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(why) => write!(f, "the backend cannot be reached: {why}"),
            CallError::Refused { status, detail } => {
                write!(f, "the backend refused ({status}): {detail}")
            }
            CallError::Invalid(why) => write!(f, "the backend answered unexpectedly: {why}"),
        }
    }
}

impl std::error::Error for CallError {}

/// Trust in the PEM certificates in `ca`, or in the Mozilla roots.
#[cfg(feature = "tls")]
fn tls_config(ca: Option<&std::path::Path>) -> Result<ureq::tls::TlsConfig, String> {
    use ureq::tls::{PemItem, RootCerts, TlsConfig};
    let Some(path) = ca else {
        return Ok(TlsConfig::builder().build());
    };
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(Ok(c)),
            Ok(_) => None,
            Err(e) => Some(Err(format!("{}: {e}", path.display()))),
        })
        .collect::<Result<_, _>>()?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", path.display()));
    }
    Ok(TlsConfig::builder()
        .root_certs(RootCerts::new_with_certs(&certs))
        .build())
}

/// A backend at a base URL, with its API key. Clones share one connection pool.
#[derive(Clone)]
pub struct Client {
    base: String,
    api_key: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client of the backend at `base_url` (`http://` or, in builds with TLS,
    /// `https://host:port`, optionally with a path prefix).
    pub fn new(base_url: &str, api_key: &str) -> Result<Client, String> {
        Client::with_ca(base_url, api_key, None)
    }

    /// As [`Client::new`]; an `https://` backend's certificate must chain to the PEM
    /// certificates in `ca` if given, else to the Mozilla roots.
    pub fn with_ca(
        base_url: &str,
        api_key: &str,
        ca: Option<&std::path::Path>,
    ) -> Result<Client, String> {
        let base = base_url.trim().trim_end_matches('/');
        match base.split_once("://") {
            Some(("http", rest)) if !rest.is_empty() => {}
            Some(("https", rest)) if !rest.is_empty() && cfg!(feature = "tls") => {}
            Some(("https", _)) if !cfg!(feature = "tls") => {
                return Err(format!(
                    "{base}: this build speaks plain HTTP only (built without the tls \
                     feature); put the backend behind a local TLS proxy or use an http:// URL"
                ));
            }
            _ => return Err(format!("{base}: not an http:// or https:// URL")),
        }
        if api_key.is_empty() {
            return Err("the backend API key is empty".into());
        }
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(0);
        #[cfg(feature = "tls")]
        let config = config.tls_config(tls_config(ca)?);
        #[cfg(not(feature = "tls"))]
        if let Some(ca) = ca {
            return Err(format!("{}: this build has no TLS", ca.display()));
        }
        let agent = config.build().into();
        Ok(Client {
            base: base.to_string(),
            api_key: api_key.to_string(),
            agent,
        })
    }

    /// Registers and commits the user of `server_state`, in one step; returns its id.
    pub fn register(&self, server_state: &str) -> Result<String, CallError> {
        self.register_at("/v1/users", server_state)
    }

    /// Registers and commits an enrolment, as `/v1/online-enrollment` does; the client's
    /// part comes back.
    pub fn enrol_online(&self, states: OfflineEnrollment) -> Result<OnlineEnrollment, CallError> {
        let id = self.register(&states.server_state)?;
        if id != states.keyless_id {
            return Err(CallError::Invalid(format!(
                "the backend registered the user under another keylessId ({id}, not {})",
                states.keyless_id
            )));
        }
        Ok(OnlineEnrollment {
            keyless_id: states.keyless_id,
            client_state: states.client_state,
        })
    }

    /// Registers the user of `server_state`, to be committed later; returns its id.
    pub fn register_uncommitted(&self, server_state: &str) -> Result<String, CallError> {
        self.register_at("/v1/uncommitted-users", server_state)
    }

    fn register_at(&self, path: &str, server_state: &str) -> Result<String, CallError> {
        let body = Register {
            server_state: server_state.to_string(),
        };
        let r: Registered = self.call("POST", path, Some(&body))?;
        Ok(r.keyless_id)
    }

    pub fn commit(&self, keyless_id: &str) -> Result<(), CallError> {
        let path = format!("/v1/uncommitted-users/{keyless_id}/commit");
        self.call::<Registered>("POST", &path, None::<&()>)
            .map(drop)
    }

    pub fn challenge(&self, keyless_id: &str) -> Result<Challenge, CallError> {
        let path = format!("/v1/users/{keyless_id}/challenges");
        self.call("POST", &path, None::<&()>)
    }

    pub fn bind(&self, keyless_id: &str, request: &Bind) -> Result<Bound, CallError> {
        let path = format!("/v1/users/{keyless_id}/devices");
        self.call("POST", &path, Some(request))
    }

    /// Lifts a user's lock after too many refused attempts (a management call: the client
    /// must hold the backend's admin key).
    pub fn unlock(&self, keyless_id: &str) -> Result<(), CallError> {
        let path = format!("/v1/users/{keyless_id}/unlock");
        self.call::<Registered>("POST", &path, None::<&()>)
            .map(drop)
    }

    /// Deletes a user: their states no longer register, recover or bind anything (a
    /// management call: the client must hold the backend's admin key).
    pub fn delete_user(&self, keyless_id: &str) -> Result<(), CallError> {
        let path = format!("/v1/users/{keyless_id}");
        self.call::<()>("DELETE", &path, None::<&()>)
    }

    pub fn devices(&self, keyless_id: &str) -> Result<Vec<Device>, CallError> {
        let path = format!("/v1/users/{keyless_id}/devices");
        let d: Devices = self.call("GET", &path, None::<&()>)?;
        Ok(d.devices)
    }

    pub fn delete_device(&self, keyless_id: &str, device_id: &str) -> Result<(), CallError> {
        let path = format!("/v1/users/{keyless_id}/devices/{device_id}");
        self.call::<()>("DELETE", &path, None::<&()>)
    }

    /// One call; a `2xx` answer's JSON is read into `T` (`()` for an empty answer).
    fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, CallError> {
        let url = format!("{}{path}", self.base);
        let key = self.api_key.as_str();
        let sent = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("X-Api-Key", key).call(),
            ("DELETE", _) => self.agent.delete(&url).header("X-Api-Key", key).call(),
            (_, Some(body)) => self
                .agent
                .post(&url)
                .header("X-Api-Key", key)
                .send_json(body),
            (_, None) => self.agent.post(&url).header("X-Api-Key", key).send_empty(),
        };
        let mut response = sent.map_err(|e| match e {
            ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed => CallError::Unreachable(e.to_string()),
            other => CallError::Invalid(other.to_string()),
        })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .map_err(|e| CallError::Invalid(format!("{method} {path}: {e}")))?;
        if !(200..300).contains(&status) {
            // A short explanation only: it may be passed on to the agent's clients.
            let detail = serde_json::from_str::<Problem>(&text)
                .map(|p| p.detail.chars().take(300).collect())
                .unwrap_or_else(|_| format!("{method} {path} answered {status}"));
            return Err(CallError::Refused { status, detail });
        }
        let text = if text.is_empty() { "null" } else { &text };
        serde_json::from_str(text).map_err(|e| CallError::Invalid(format!("{method} {path}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_and_a_key_are_accepted() {
        assert!(Client::new("http://backend:8090/", "k").is_ok());
        assert!(Client::new("http://10.0.0.2/prefix", "k").is_ok());
        assert_eq!(
            Client::new("https://backend", "k").is_ok(),
            cfg!(feature = "tls")
        );
        let missing = std::path::Path::new("/nonexistent/ca.pem");
        let e = Client::with_ca("http://backend", "k", Some(missing))
            .err()
            .unwrap();
        assert!(e.contains("ca.pem"), "{e}");
        for (url, key, why) in [
            ("https://", "k", "not an http://"),
            ("backend:8090", "k", "not an http://"),
            ("http://", "k", "not an http://"),
            ("http://backend", "", "empty"),
        ] {
            let e = Client::new(url, key).err().unwrap();
            assert!(e.contains(why), "{url}: {e}");
        }
    }

    #[test]
    fn an_unreachable_backend_is_told_apart() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let client = Client::new(&url, "k").unwrap();
        assert!(matches!(
            client.devices("u"),
            Err(CallError::Unreachable(_))
        ));
    }
}
