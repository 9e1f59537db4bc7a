//! What a route answers when it succeeds, and the headers every answer carries.

use serde::Serialize;

/// A successful answer: status, content type and body (none for `204`).
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: u16, value: &impl Serialize) -> Reply {
        Reply {
            status,
            content_type: JSON.1,
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    /// `200` with a document served as it is (a page, the OpenAPI description).
    pub fn document(content_type: &'static str, text: &'static str) -> Reply {
        Reply {
            status: 200,
            content_type,
            body: text.as_bytes().to_vec(),
        }
    }

    pub fn no_content() -> Reply {
        Reply {
            status: 204,
            content_type: JSON.1,
            body: Vec::new(),
        }
    }
}

pub const JSON: (&str, &str) = ("Content-Type", "application/json");
/// Answers hold states, faces and frames: never kept by a cache.
pub const NO_STORE: (&str, &str) = ("Cache-Control", "no-store");
/// The media type of the OpenAPI documents (RFC 9512).
pub const YAML: &str = "application/yaml";
