//! Sealing the protected template to the backend: HPKE (RFC 9180, base mode,
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305) through the `hpke` crate.
//! Whoever handles a server state on its way (the customer, during an offline enrolment)
//! cannot open it; only the backend holding the private key can.

use std::path::Path;

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use rand_chacha::rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

use super::keys::secret_file;

type Kem = X25519HkdfSha256;

/// HPKE's `info`: binds a sealed box to this use.
const INFO: &[u8] = b"recognize-agent/template/v2";

/// The backend's public sealing key, which agents seal server states to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealingPublicKey(<Kem as hpke::Kem>::PublicKey);

/// The backend's sealing key pair.
pub struct SealingKey {
    private: <Kem as hpke::Kem>::PrivateKey,
    public: SealingPublicKey,
}

/// A sealed box: the encapsulated key and the ciphertext (with its tag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    pub enc: [u8; 32],
    pub ciphertext: Vec<u8>,
}

/// Why a box could not be sealed or opened.
#[derive(Debug, PartialEq, Eq)]
pub enum SealError {
    /// The public key is one no box can be sealed to (a low-order point).
    BadKey,
    /// The box does not open: sealed to another key, for another `aad`, or altered.
    Open,
}

impl std::fmt::Display for SealError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SealError::BadKey => "the backend's sealing key is not a usable X25519 key",
            SealError::Open => "the sealed template does not open with this backend's key",
        })
    }
}

impl std::error::Error for SealError {}

impl SealingPublicKey {
    /// The key of its 32 bytes (any 32 bytes are an X25519 public key).
    pub fn from_bytes(bytes: &[u8]) -> Option<SealingPublicKey> {
        (bytes.len() == 32)
            .then(|| <Kem as hpke::Kem>::PublicKey::from_bytes(bytes).ok())
            .flatten()
            .map(SealingPublicKey)
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes().into()
    }

    /// Its id in states: the first 12 bytes of its SHA-256.
    pub fn id(&self) -> [u8; 12] {
        let digest = Sha256::digest(self.to_bytes());
        let mut id = [0u8; 12];
        id.copy_from_slice(&digest[..12]);
        id
    }

    /// `plaintext` sealed to this key, bound to `aad`.
    pub fn seal<R: CryptoRng + RngCore>(
        &self,
        plaintext: &[u8],
        aad: &[u8],
        rng: &mut R,
    ) -> Result<Sealed, SealError> {
        let (enc, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem, R>(
            &OpModeS::Base,
            &self.0,
            INFO,
            plaintext,
            aad,
            rng,
        )
        .map_err(|_| SealError::BadKey)?;
        Ok(Sealed {
            enc: enc.to_bytes().into(),
            ciphertext,
        })
    }
}

impl SealingKey {
    /// The key pair derived (RFC 9180 `DeriveKeyPair`) from a 32-byte secret.
    pub fn from_secret(secret: &[u8; 32]) -> SealingKey {
        let (private, public) = Kem::derive_keypair(secret);
        SealingKey {
            private,
            public: SealingPublicKey(public),
        }
    }

    /// The key pair of the secret in `path`, created (mode 0600) on first use.
    pub fn load_or_create(path: &Path) -> std::io::Result<SealingKey> {
        Ok(SealingKey::from_secret(&*secret_file(path)?))
    }

    pub fn public(&self) -> &SealingPublicKey {
        &self.public
    }

    /// The plaintext of a box sealed to this key with `aad`.
    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&sealed.enc)
            .map_err(|_| SealError::Open)?;
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeR::Base,
            &self.private,
            &enc,
            INFO,
            &sealed.ciphertext,
            aad,
        )
        .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn a_sealed_box_opens_with_its_key_and_aad_only() {
        let key = SealingKey::from_secret(&[1; 32]);
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let sealed = key.public().seal(b"template", b"user-1", &mut rng).unwrap();
        assert_eq!(key.open(&sealed, b"user-1").unwrap(), b"template");
        assert_eq!(key.open(&sealed, b"user-2"), Err(SealError::Open));
        let other = SealingKey::from_secret(&[3; 32]);
        assert_eq!(other.open(&sealed, b"user-1"), Err(SealError::Open));
        let mut altered = sealed.clone();
        altered.ciphertext[0] ^= 1;
        assert_eq!(key.open(&altered, b"user-1"), Err(SealError::Open));
        let mut altered = sealed;
        altered.enc[0] ^= 1;
        assert_eq!(key.open(&altered, b"user-1"), Err(SealError::Open));
        let public = SealingPublicKey::from_bytes(&key.public().to_bytes()).unwrap();
        assert_eq!(&public, key.public());
        assert_ne!(public.id(), other.public().id());
        assert!(SealingPublicKey::from_bytes(&[0; 31]).is_none());
        let low_order = SealingPublicKey::from_bytes(&[0; 32]).unwrap();
        assert_eq!(low_order.seal(b"t", b"u", &mut rng), Err(SealError::BadKey));
    }
}
