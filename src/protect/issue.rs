//! Issuing the two states of an accepted face: a fresh seed draws the secret rotation
//! `Q`; the client state keeps the seed, the server state the template `Q·e` sealed to
//! the backend. Neither alone says anything about the face.

use rand_chacha::rand_core::{CryptoRng, RngCore};

use super::keys::KeyFile;
use super::rotation::Rotation;
use super::seal::{SealError, SealingPublicKey};
use super::states::{self, ClientState, ClientType, MODEL_ID, ServerState};
use crate::contract::{OfflineEnrollment, Scenario};
use crate::vision::embed::DIM;

/// How long a server state may wait to be registered: an offline enrolment's states go
/// through the customer's systems first.
pub const REGISTRATION_WINDOW_SECONDS: u64 = 30 * 24 * 3600;

/// The agent's side of an enrolment: its identity, which signs the states, and the
/// backend key templates are sealed to.
pub struct Issuer {
    identity: KeyFile,
    sealed_to: SealingPublicKey,
}

impl Issuer {
    pub fn new(identity: KeyFile, sealed_to: SealingPublicKey) -> Issuer {
        Issuer {
            identity,
            sealed_to,
        }
    }

    /// The backend key this issuer seals to.
    pub fn sealed_to(&self) -> &SealingPublicKey {
        &self.sealed_to
    }

    /// The signed states of the unit `embedding`, at time `now`, with ids, seed and
    /// sealing drawn from `rng`.
    pub fn issue<R: CryptoRng + RngCore>(
        &self,
        embedding: &[f32; DIM],
        scenario: Scenario,
        client_type: ClientType,
        now: u64,
        rng: &mut R,
    ) -> Result<OfflineEnrollment, SealError> {
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let keyless_id = states::uuid_of(id);
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let template = Rotation::from_seed(&seed).protect(embedding);
        let sealed = self.sealed_to.seal(
            &template.to_bytes(),
            &states::template_aad(&keyless_id, MODEL_ID),
            rng,
        )?;
        let client = ClientState {
            keyless_id: keyless_id.clone(),
            client_type,
            model: MODEL_ID.into(),
            seed,
            iat: now,
        };
        let server = ServerState {
            keyless_id: keyless_id.clone(),
            client_type,
            scenario,
            model: MODEL_ID.into(),
            iat: now,
            exp: now.saturating_add(REGISTRATION_WINDOW_SECONDS),
            sealed_to: self.sealed_to.id(),
            enc: sealed.enc,
            template: sealed.ciphertext,
        };
        Ok(OfflineEnrollment {
            keyless_id,
            client_state: states::encode(&client, &self.identity),
            server_state: states::encode(&server, &self.identity),
        })
    }
}
