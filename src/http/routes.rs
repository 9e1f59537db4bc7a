//! The agent's routes, written against `embedded-svc`'s HTTP server traits.

use std::time::Instant;

use embedded_svc::http::server::Connection;
use embedded_svc::http::{Headers, Method};
use serde::Serialize;

use super::App;
use super::error::ApiError;
use crate::contract::{FilterTriggered, Health, Scenario};
use crate::enroll::{EnrollError, Outcome};
use crate::protect::states::ClientType;
use crate::vision::decode::{DecodeError, DecodeOptions};

/// A successful answer: status and JSON body.
struct Reply {
    status: u16,
    body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, value: &impl Serialize) -> Reply {
        Reply {
            status,
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

/// Handles one exchange on `conn`, logging method, path, status and time (never content).
pub fn handle<C: Connection>(app: &App, conn: &mut C) -> Result<(), C::Error> {
    let started = Instant::now();
    let method = conn.method();
    let path = conn.uri().split('?').next().unwrap_or("").to_string();
    let result = route(app, conn, method, &path);
    let status = match &result {
        Ok(r) => r.status,
        Err(e) => e.status,
    };
    log::info!(target: "http", "{method:?} {path} {status} {:.1}ms", started.elapsed().as_secs_f64() * 1e3);
    match result {
        Ok(reply) => {
            conn.initiate_response(reply.status, None, &[JSON])?;
            conn.write_all(&reply.body)
        }
        Err(e) => {
            let mut headers: Vec<(&str, &str)> = vec![JSON];
            headers.extend(e.headers.iter().map(|(n, v)| (*n, v.as_str())));
            conn.initiate_response(e.status, None, &headers)?;
            conn.write_all(&serde_json::to_vec(&e.problem()).unwrap_or_default())
        }
    }
}

fn route<C: Connection>(
    app: &App,
    conn: &mut C,
    method: Method,
    path: &str,
) -> Result<Reply, ApiError> {
    let allowed = match path {
        "/health-check" => "GET",
        "/v1/offline-enrollment" | "/v1/online-enrollment" => "POST",
        _ => return Err(ApiError::new(404, format!("no such endpoint: {path}"))),
    };
    match (method, path) {
        (Method::Get, "/health-check") => Ok(Reply::json(
            200,
            &Health {
                version: env!("CARGO_PKG_VERSION").into(),
                status: "ok".into(),
            },
        )),
        (Method::Post, "/v1/offline-enrollment") => enroll(app, conn, false),
        (Method::Post, "/v1/online-enrollment") => enroll(app, conn, true),
        _ => Err(ApiError::new(405, format!("{path} accepts only {allowed}"))
            .with_header("Allow", allowed)),
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

fn enroll<C: Connection>(app: &App, conn: &mut C, online: bool) -> Result<Reply, ApiError> {
    if online {
        return Err(match app.backend {
            None => ApiError::new(
                409,
                "online enrolment is not configured: set AUTH_SERVER_URL and AUTH_SERVER_API_KEY",
            ),
            // Registration on a backend arrives with the recovery backend.
            Some(_) => ApiError::new(
                501,
                "online registration on a backend is not implemented yet",
            ),
        });
    }
    let headers = enrollment_headers(conn)?;
    let max = app.limits.max_body_bytes;
    if conn.content_len().is_some_and(|n| n > max as u64) {
        return Err(ApiError::too_large(format!(
            "the body is larger than the {max}-byte limit"
        )));
    }
    let Some(_permit) = app.gate.enter() else {
        return Err(
            ApiError::new(429, "too many enrolments are running; retry shortly")
                .with_header("Retry-After", "1"),
        );
    };
    let body = read_body(conn, max)?;
    let opts = DecodeOptions {
        base64: headers.base64,
        exif_transpose: headers.exif_transpose,
        max_pixels: app.limits.max_pixels,
    };
    let outcome = app
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
        })?;
    match outcome {
        Outcome::Filtered(filters) => Ok(Reply::json(422, &FilterTriggered::from(filters))),
        Outcome::Enrolled(states) => Ok(Reply::json(200, &states)),
    }
}

/// Reads the whole body, refusing more than `max` bytes however it is framed.
fn read_body<C: Connection>(conn: &mut C, max: usize) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::with_capacity(
        conn.content_len()
            .map_or(64 * 1024, |n| n as usize)
            .min(max),
    );
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = conn
            .read(&mut chunk)
            .map_err(|_| ApiError::bad_request("the request body could not be read"))?;
        if n == 0 {
            return Ok(body);
        }
        if body.len() + n > max {
            return Err(ApiError::too_large(format!(
                "the body is larger than the {max}-byte limit"
            )));
        }
        body.extend_from_slice(&chunk[..n]);
    }
}
