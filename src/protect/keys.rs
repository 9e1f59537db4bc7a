//! Keys: the biometric key pair derived from a recovered secret, and the agent's identity
//! key, which signs the states it makes.

use std::io::Write;
use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

/// HKDF's `info` for the biometric key, so that no other use of the secret derives it.
const BIOMETRIC_INFO: &[u8] = b"recognize-agent biometric key v1";

/// The Ed25519 key pair of a secret (one bit per byte), salted per enrolment.
pub fn biometric_key(secret: &[u8], salt: &[u8]) -> SigningKey {
    let mut seed = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's limit of 8160, so `expand` cannot fail.
    let _ = Hkdf::<Sha256>::new(Some(salt), secret).expand(BIOMETRIC_INFO, &mut *seed);
    SigningKey::from_bytes(&seed)
}

/// Whether `signature` (64 bytes) is `key`'s (32 bytes) over `message`.
pub fn verify(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let (Ok(key), Ok(signature)) = (<[u8; 32]>::try_from(key), Signature::from_slice(signature))
    else {
        return false;
    };
    VerifyingKey::from_bytes(&key).is_ok_and(|k| k.verify(message, &signature).is_ok())
}

/// Whether `key` is a well-formed Ed25519 public key (a curve point).
pub fn is_public_key(key: &[u8; 32]) -> bool {
    VerifyingKey::from_bytes(key).is_ok()
}

/// A key pair kept in a file of its 32-byte secret, readable by its owner only.
pub struct KeyFile {
    pub key: SigningKey,
}

impl KeyFile {
    /// The key in `path`, created (mode 0600) with a fresh key if there is no file. The
    /// new key is written to a file of its own, then linked to `path` only if that is
    /// still free, so agents starting together all end up with the same complete key.
    pub fn load_or_create(path: &Path) -> std::io::Result<KeyFile> {
        match Self::load(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            loaded => return loaded,
        }
        let made = Self::ephemeral()?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut draft = path.as_os_str().to_owned();
        let mut tag = [0u8; 8];
        fill_random(&mut tag)?;
        draft.push(format!(".new-{}", u64::from_le_bytes(tag)));
        let draft = std::path::PathBuf::from(draft);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(&draft)?.write_all(made.key.as_bytes())?;
        let linked = std::fs::hard_link(&draft, path);
        std::fs::remove_file(&draft)?;
        match linked {
            Ok(()) => Ok(made),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(path),
            Err(e) => Err(e),
        }
    }

    /// The key in `path`.
    fn load(path: &Path) -> std::io::Result<KeyFile> {
        let bytes = Zeroizing::new(std::fs::read(path)?);
        let secret = Zeroizing::new(<[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: not a 32-byte key", path.display()),
            )
        })?);
        Ok(KeyFile {
            key: SigningKey::from_bytes(&secret),
        })
    }

    /// A fresh key kept in memory only.
    pub fn ephemeral() -> std::io::Result<KeyFile> {
        let mut secret = Zeroizing::new([0u8; 32]);
        fill_random(&mut *secret)?;
        Ok(KeyFile {
            key: SigningKey::from_bytes(&secret),
        })
    }

    /// The public key's 32 bytes.
    pub fn public(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

/// `bytes` filled from the OS's random source.
fn fill_random(bytes: &mut [u8]) -> std::io::Result<()> {
    getrandom::fill(bytes).map_err(|e| std::io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn biometric_keys_depend_on_secret_and_salt() {
        let k = biometric_key(&[1, 0, 1], b"salt");
        assert_eq!(k.to_bytes(), biometric_key(&[1, 0, 1], b"salt").to_bytes());
        assert_ne!(k.to_bytes(), biometric_key(&[1, 0, 0], b"salt").to_bytes());
        assert_ne!(
            k.to_bytes(),
            biometric_key(&[1, 0, 1], b"pepper").to_bytes()
        );
        let signature = k.sign(b"challenge").to_bytes();
        let public = k.verifying_key().to_bytes();
        assert!(verify(&public, b"challenge", &signature));
        assert!(!verify(&public, b"challengf", &signature));
        assert!(!verify(&public[1..], b"challenge", &signature));
    }

    #[test]
    fn key_files_are_created_private_and_reloaded() {
        let dir = std::env::temp_dir().join(format!("ra-key-{}", std::process::id()));
        let path = dir.join("identity.key");
        let _ = std::fs::remove_dir_all(&dir);
        let made = KeyFile::load_or_create(&path).unwrap();
        let again = KeyFile::load_or_create(&path).unwrap();
        assert_eq!(made.public(), again.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Agents starting together agree on one key.
        std::fs::remove_file(&path).unwrap();
        let keys: Vec<[u8; 32]> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..4)
                .map(|_| s.spawn(|| KeyFile::load_or_create(&path).unwrap().public()))
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|k| *k == keys[0]));
        assert_eq!(KeyFile::load_or_create(&path).unwrap().public(), keys[0]);
        std::fs::write(&path, b"short").unwrap();
        assert!(KeyFile::load_or_create(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
