//! TLS for the front: rustls with the ring provider, a certificate chain and its key from
//! PEM files. The handshake runs under the connection's head deadline.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::Stream;
use super::timed::Timed;

/// The server configuration for the chain in `cert` and the key in `key`.
pub fn config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("TLS_CERT_FILE {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("TLS_CERT_FILE {}: no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("TLS_KEY_FILE {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("TLS_CERT_FILE and TLS_KEY_FILE: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Completes the handshake on `timed`; `None` if it fails or its deadline passes.
pub(super) fn accept(timed: Timed, config: Arc<ServerConfig>) -> Option<Box<dyn Stream>> {
    let mut stream = StreamOwned::new(ServerConnection::new(config).ok()?, timed);
    while stream.conn.is_handshaking() {
        if let Err(e) = stream.conn.complete_io(&mut stream.sock) {
            log::debug!("TLS handshake: {e}");
            return None;
        }
    }
    Some(Box::new(stream))
}

impl Stream for StreamOwned<ServerConnection, Timed> {
    fn set_deadline(&mut self, deadline: std::time::Instant) {
        self.sock.set_deadline(deadline);
    }
    fn close(&mut self, request_read: bool) {
        self.conn.send_close_notify();
        let _ = self.conn.complete_io(&mut self.sock);
        self.sock.finish(request_read);
    }
}
