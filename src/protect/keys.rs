//! Keys kept in files: the agent's identity and a device's key (Ed25519), which sign;
//! the backend's sealing key (X25519, [`super::seal`]) is kept the same way.

use std::io::Write;
use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use zeroize::Zeroizing;

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

/// The 32-byte secret in `path`, created (mode 0600) from the OS's random source if there
/// is no file. The new secret is written to a file of its own, then linked to `path` only
/// if that is still free, so processes starting together all end up with the same key.
pub fn secret_file(path: &Path) -> std::io::Result<Zeroizing<[u8; 32]>> {
    match read_secret(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        loaded => return loaded,
    }
    let mut made = Zeroizing::new([0u8; 32]);
    fill_random(&mut *made)?;
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
    options.open(&draft)?.write_all(&*made)?;
    let linked = std::fs::hard_link(&draft, path);
    std::fs::remove_file(&draft)?;
    match linked {
        Ok(()) => Ok(made),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_secret(path),
        Err(e) => Err(e),
    }
}

/// The secret in `path`.
fn read_secret(path: &Path) -> std::io::Result<Zeroizing<[u8; 32]>> {
    let bytes = Zeroizing::new(std::fs::read(path)?);
    let secret = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: not a 32-byte key", path.display()),
        )
    })?;
    Ok(Zeroizing::new(secret))
}

/// An Ed25519 key pair kept in a file of its 32-byte secret, readable by its owner only.
pub struct KeyFile {
    pub key: SigningKey,
}

impl KeyFile {
    /// The key in `path`, created with a fresh key if there is no file ([`secret_file`]).
    pub fn load_or_create(path: &Path) -> std::io::Result<KeyFile> {
        Ok(KeyFile {
            key: SigningKey::from_bytes(&*secret_file(path)?),
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
    fn signatures_verify_with_their_key_only() {
        let k = KeyFile::ephemeral().unwrap();
        let signature = k.sign(b"challenge");
        let public = k.public();
        assert!(verify(&public, b"challenge", &signature));
        assert!(!verify(&public, b"challengf", &signature));
        assert!(!verify(&public[1..], b"challenge", &signature));
        assert!(!verify(
            &KeyFile::ephemeral().unwrap().public(),
            b"challenge",
            &signature
        ));
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
