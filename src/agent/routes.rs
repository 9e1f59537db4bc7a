//! The agent's routes, written against `embedded-svc`'s HTTP server traits.

use embedded_svc::http::server::Connection;
use embedded_svc::http::{Headers, Method};

use super::Agent;
use crate::backend::client::{CallError, Client};
use crate::contract::{Health, OfflineEnrollment, Scenario};
use crate::enroll::EnrollError;
use crate::protect::states::ClientType;
use crate::service::Peer;
use crate::service::error::ApiError;
use crate::service::exchange::{check_length, exchange, method_not_allowed, read_body};
use crate::service::reply::{Reply, YAML};
use crate::vision::decode::{DecodeError, DecodeOptions};

/// The agent's OpenAPI description, served at `/openapi.yaml`.
pub const OPENAPI: &str = include_str!("openapi.yaml");

/// Handles one exchange on `conn`.
pub fn handle<C: Connection + Peer>(agent: &Agent, conn: &mut C) -> Result<(), C::Error> {
    exchange(conn, |conn, method, path| route(agent, conn, method, path))
}

/// A route of the agent.
enum Route {
    Health,
    OpenApi,
    Enroll {
        online: bool,
    },
    /// Anything under `/kiosk`, which the kiosk routes itself.
    Kiosk,
}

impl Route {
    /// The route of `path`, and the methods it accepts (the kiosk decides its own).
    fn of(path: &str) -> Option<(Route, &'static str)> {
        Some(match path {
            "/health-check" => (Route::Health, "GET"),
            "/openapi.yaml" => (Route::OpenApi, "GET"),
            "/v1/offline-enrollment" => (Route::Enroll { online: false }, "POST"),
            "/v1/online-enrollment" => (Route::Enroll { online: true }, "POST"),
            _ if path == "/kiosk" || path.starts_with("/kiosk/") => (Route::Kiosk, ""),
            _ => return None,
        })
    }
}

fn route<C: Connection + Peer>(
    agent: &Agent,
    conn: &mut C,
    method: Method,
    path: &str,
) -> Result<Reply, ApiError> {
    let (route, allowed) =
        Route::of(path).ok_or_else(|| ApiError::new(404, format!("no such endpoint: {path}")))?;
    // The key guards the enrolments, whatever the method.
    if let (Route::Enroll { .. }, Some(key)) = (&route, &agent.api_key) {
        key.check(conn)?;
    }
    match (route, method) {
        (Route::Kiosk, _) => match &agent.kiosk {
            Some(kiosk) => crate::kiosk::routes::route(kiosk, conn, method, path),
            None => Err(ApiError::new(404, "kiosk mode is off (serve --kiosk)")),
        },
        (Route::Enroll { online }, Method::Post) => enroll(agent, conn, online),
        (Route::Health, Method::Get) => Ok(Reply::json(200, &Health::ok())),
        (Route::OpenApi, Method::Get) => Ok(Reply::document(YAML, OPENAPI)),
        _ => Err(method_not_allowed(path, allowed)),
    }
}

/// The enrolment headers, validated.
struct EnrollmentHeaders {
    scenario: Scenario,
    /// `Client-State-Type` (an extension of the contract): `BACKUP` unless asked.
    client_type: ClientType,
    exif_transpose: bool,
    base64: bool,
}

fn enrollment_headers(h: &impl Headers) -> Result<EnrollmentHeaders, ApiError> {
    let scenario = match h.header("Scenario") {
        None => {
            return Err(ApiError::bad_request(
                "the Scenario header is required: SELFIE, TRUSTED_SOURCE or DOCUMENT",
            ));
        }
        Some(v) => Scenario::parse(v.trim()).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown Scenario '{}': use SELFIE, TRUSTED_SOURCE or DOCUMENT",
                printable(v)
            ))
        })?,
    };
    let exif = match h.header("Exif-Transpose").map(str::trim) {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "Exif-Transpose must be true or false, not '{}'",
                printable(v)
            )));
        }
    };
    let base64 = match h.header("Content-Encoding").map(str::trim) {
        None | Some("") => false,
        Some(v) if v.eq_ignore_ascii_case("base64") => true,
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "unsupported Content-Encoding '{}': the only accepted value is base64",
                printable(v)
            )));
        }
    };
    let client_type = match h.header("Client-State-Type").map(str::trim) {
        None | Some("") => ClientType::Backup,
        Some(v) => ClientType::parse(v).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown Client-State-Type '{}': use BACKUP or TEMPORARY",
                printable(v)
            ))
        })?,
    };
    Ok(EnrollmentHeaders {
        scenario,
        client_type,
        exif_transpose: exif,
        base64,
    })
}

/// Why an image without a face is refused when `faceMissing` is turned off.
const NO_FACE: &str = "the image holds no single face to enrol (faceMissing is turned off)";

/// A header value shortened and stripped of control characters, safe to echo back.
fn printable(v: &str) -> String {
    v.chars().filter(|c| !c.is_control()).take(40).collect()
}

fn enroll<C: Connection>(agent: &Agent, conn: &mut C, online: bool) -> Result<Reply, ApiError> {
    // Where an online enrolment is registered; refused before any work if nowhere.
    let backend = match (online, &agent.backend) {
        (false, _) => None,
        (true, Some(backend)) => Some(backend),
        (true, None) => {
            return Err(ApiError::new(
                409,
                "online enrolment is not configured: set AUTH_SERVER_URL and AUTH_SERVER_API_KEY",
            ));
        }
    };
    let headers = enrollment_headers(conn)?;
    let max = agent.limits.max_body_bytes;
    check_length(conn, max)?;
    let outcome = {
        let Some(_permit) = agent.gate.enter() else {
            return Err(
                ApiError::new(429, "too many enrolments are running; retry shortly")
                    .with_header("Retry-After", "1"),
            );
        };
        let body = read_body(conn, max)?;
        let opts = DecodeOptions {
            base64: headers.base64,
            exif_transpose: headers.exif_transpose,
            max_pixels: agent.limits.max_pixels,
        };
        agent
            .enroller
            .enroll(&body, headers.scenario, headers.client_type, &opts)
            .map_err(|e| match e {
                EnrollError::Decode(d @ DecodeError::TooManyPixels { .. }) => {
                    ApiError::too_large(d.to_string())
                }
                EnrollError::Decode(d) => ApiError::bad_request(d.to_string()),
                EnrollError::NoFace => ApiError::bad_request(NO_FACE),
                EnrollError::Internal(why) => {
                    log::error!("enrolment failed: {why}");
                    ApiError::internal("the enrolment could not be completed")
                }
            })?
    };
    let states = match outcome.into_result() {
        Ok(states) => states,
        Err(refused) => return Ok(Reply::json(422, &refused)),
    };
    // The enrolment slot is free again while the backend registers the user.
    match backend {
        Some(backend) => register_online(backend, states),
        None => Ok(Reply::json(200, &states)),
    }
}

/// Registers and commits an enrolment on the backend: `200` with the client state, or
/// `503` (unreachable) / `502` (refused) with nothing registered.
fn register_online(backend: &Client, states: OfflineEnrollment) -> Result<Reply, ApiError> {
    backend
        .enrol_online(states)
        .map(|online| Reply::json(200, &online))
        .map_err(|e| {
            log::warn!("online registration failed: {e}");
            match e {
                CallError::Unreachable(_) => ApiError::new(
                    503,
                    "the backend cannot be reached or did not answer in time; retry later",
                )
                .with_header("Retry-After", "5"),
                CallError::Refused { status, detail } => ApiError::new(
                    502,
                    format!("the backend refused the registration ({status}: {detail})"),
                ),
                CallError::Invalid(_) => {
                    ApiError::new(502, "the backend answered something that is not its API")
                }
            }
        })
}
