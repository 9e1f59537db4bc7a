//! The `X-Api-Key` check shared by the agent (optional) and the backend (required).

use embedded_svc::http::Headers;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// The header that carries the key.
pub const HEADER: &str = "X-Api-Key";

/// A configured API key, kept as its SHA-256 so that comparing it takes the same time
/// whatever the key sent, its length included.
pub struct ApiKey {
    digest: [u8; 32],
}

impl ApiKey {
    /// The key; `None` if it is empty.
    pub fn new(key: &str) -> Option<ApiKey> {
        (!key.is_empty()).then(|| ApiKey {
            digest: Sha256::digest(key.as_bytes()).into(),
        })
    }

    /// Whether `sent` is the key, compared in constant time.
    pub fn matches(&self, sent: &str) -> bool {
        let sent: [u8; 32] = Sha256::digest(sent.as_bytes()).into();
        bool::from(sent.ct_eq(&self.digest))
    }

    /// `401` unless the request carries the key in `X-Api-Key`.
    pub fn check(&self, headers: &impl Headers) -> Result<(), ApiError> {
        match headers.header(HEADER) {
            Some(sent) if self.matches(sent) => Ok(()),
            Some(_) => Err(ApiError::new(401, "the X-Api-Key header holds a wrong key")),
            None => Err(ApiError::new(401, "the X-Api-Key header is required")),
        }
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct H(Option<&'static str>);

    impl Headers for H {
        fn header(&self, name: &str) -> Option<&str> {
            (name == HEADER).then_some(self.0).flatten()
        }
    }

    #[test]
    fn only_the_key_itself_passes() {
        assert!(ApiKey::new("").is_none());
        let key = ApiKey::new("k3y").unwrap();
        assert!(key.check(&H(Some("k3y"))).is_ok());
        for wrong in [
            None,
            Some(""),
            Some("k3"),
            Some("k3y "),
            Some("K3Y"),
            Some("k3yk3y"),
        ] {
            let err = key.check(&H(wrong)).unwrap_err();
            assert_eq!(err.status, 401, "{wrong:?}");
        }
        assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
    }
}
