//! One request/response exchange, the same for every service: route it, log it (method,
//! path, status, time; never content), answer in JSON; reading bodies within a limit.

use std::time::Instant;

use embedded_svc::http::Method;
use embedded_svc::http::server::Connection;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::reply::{NO_STORE, Reply};

/// Routes the request on `conn` with `route(conn, method, path)` and writes its answer.
pub fn exchange<C, F>(conn: &mut C, route: F) -> Result<(), C::Error>
where
    C: Connection,
    F: FnOnce(&mut C, Method, &str) -> Result<Reply, ApiError>,
{
    let started = Instant::now();
    let method = conn.method();
    let path = conn.uri().split('?').next().unwrap_or("").to_string();
    let result = route(conn, method, &path);
    let status = match &result {
        Ok(r) => r.status,
        Err(e) => e.status,
    };
    log::info!(target: "http", "{method:?} {path} {status} {:.1}ms", started.elapsed().as_secs_f64() * 1e3);
    match result {
        Ok(reply) if reply.body.is_empty() => {
            conn.initiate_response(reply.status, None, &[NO_STORE])
        }
        Ok(reply) => {
            let content_type = ("Content-Type", reply.content_type);
            conn.initiate_response(reply.status, None, &[content_type, NO_STORE])?;
            conn.write_all(&reply.body)
        }
        Err(e) => {
            let (headers, body) = e.answer();
            conn.initiate_response(e.status, None, &headers)?;
            conn.write_all(&body)
        }
    }
}

/// The `405` for `path`, which accepts only `allowed`.
pub fn method_not_allowed(path: &str, allowed: &'static str) -> ApiError {
    ApiError::new(405, format!("{path} accepts only {allowed}")).with_header("Allow", allowed)
}

/// Reads the whole body, refusing more than `max` bytes however it is framed.
pub fn read_body<C: Connection>(conn: &mut C, max: usize) -> Result<Vec<u8>, ApiError> {
    check_length(conn, max)?;
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
            return Err(too_large(max));
        }
        body.extend_from_slice(&chunk[..n]);
    }
}

/// Refuses at once a body whose announced length exceeds `max` bytes.
pub fn check_length<C: Connection>(conn: &C, max: usize) -> Result<(), ApiError> {
    match conn.content_len() {
        Some(n) if n > max as u64 => Err(too_large(max)),
        _ => Ok(()),
    }
}

/// Reads a JSON body of at most `max` bytes into `T`.
pub fn read_json<T: DeserializeOwned, C: Connection>(
    conn: &mut C,
    max: usize,
) -> Result<T, ApiError> {
    let body = read_body(conn, max)?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body is not the expected JSON: {e}")))
}

fn too_large(max: usize) -> ApiError {
    ApiError::too_large(format!("the body is larger than the {max}-byte limit"))
}
