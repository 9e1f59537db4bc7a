//! The one error type of the HTTP API, rendered as `{"title", "statusCode", "detail"}`.

use super::reply::{JSON, NO_STORE};
use crate::contract::Problem;

/// An HTTP error with its JSON body and any headers it needs.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub detail: String,
    /// Extra response headers (`Allow`, `Retry-After`).
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: u16, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            detail: detail.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> ApiError {
        self.headers.push((name, value.into()));
        self
    }

    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(400, detail)
    }

    pub fn too_large(detail: impl Into<String>) -> ApiError {
        ApiError::new(413, detail)
    }

    pub fn internal(detail: impl Into<String>) -> ApiError {
        ApiError::new(500, detail)
    }

    /// The answer's headers (JSON, never cached, then the error's own) and body.
    pub fn answer(&self) -> (Vec<(&str, &str)>, Vec<u8>) {
        let mut headers = vec![JSON, NO_STORE];
        headers.extend(self.headers.iter().map(|(n, v)| (*n, v.as_str())));
        (
            headers,
            serde_json::to_vec(&self.problem()).unwrap_or_default(),
        )
    }

    /// The body clients receive.
    pub fn problem(&self) -> Problem {
        Problem {
            title: title(self.status).into(),
            status_code: self.status,
            detail: self.detail.clone(),
        }
    }
}

/// The standard reason phrase used as `title`.
pub fn title(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        417 => "Expectation Failed",
        422 => "Filter Triggered",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}
