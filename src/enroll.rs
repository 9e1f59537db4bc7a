//! One enrolment, transport-free: image bytes + scenario → states, or the filters that failed.

use std::time::{SystemTime, UNIX_EPOCH};

use image::RgbImage;

use crate::contract::{Filters, OfflineEnrollment, Scenario};
use crate::protect::states::{self, ClientState, ClientType, Envelope, ServerState};
use crate::vision::Models;
use crate::vision::decode::{self, DecodeError, DecodeOptions};
use crate::vision::filters::{self, Policy};

/// The enrolment service: models plus the per-scenario policies.
pub struct Enroller {
    pub models: Models,
    policies: [Policy; 3],
}

/// Result of an enrolment that ran to the end.
#[derive(Debug)]
pub enum Outcome {
    Enrolled(OfflineEnrollment),
    /// At least one filter triggered; nothing was enrolled.
    Filtered(Filters),
}

/// Why an enrolment could not run.
#[derive(Debug)]
pub enum EnrollError {
    /// The body is not an acceptable image (client error).
    Decode(DecodeError),
    /// A model or the OS failed (server error).
    Internal(String),
}

impl From<DecodeError> for EnrollError {
    fn from(e: DecodeError) -> Self {
        EnrollError::Decode(e)
    }
}

impl Enroller {
    pub fn new(models: Models, policies: [Policy; 3]) -> Enroller {
        Enroller { models, policies }
    }

    /// The policy in force for `scenario`.
    pub fn policy(&self, scenario: Scenario) -> &Policy {
        &self.policies[scenario.index()]
    }

    /// Decodes `body` and enrols the face in it.
    pub fn enroll(
        &self,
        body: &[u8],
        scenario: Scenario,
        opts: &DecodeOptions,
    ) -> Result<Outcome, EnrollError> {
        let image = decode::decode(body, opts)?;
        self.enroll_image(&image, scenario)
    }

    /// Enrols the face in an already decoded image.
    pub fn enroll_image(
        &self,
        image: &RgbImage,
        scenario: Scenario,
    ) -> Result<Outcome, EnrollError> {
        let analysis = self
            .models
            .analyse(image)
            .map_err(|e| EnrollError::Internal(format!("face pipeline: {e}")))?;
        let filters = filters::evaluate(&analysis, self.policy(scenario));
        if filters.any_triggered() {
            return Ok(Outcome::Filtered(filters));
        }
        make_states(scenario).map(Outcome::Enrolled)
    }
}

/// Builds the version-1 states for an accepted enrolment.
fn make_states(scenario: Scenario) -> Result<OfflineEnrollment, EnrollError> {
    let id = states::random_bytes::<16>().map_err(random_error)?;
    let keyless_id = uuid::Builder::from_random_bytes(id).into_uuid().to_string();
    let client = ClientState {
        keyless_id: keyless_id.clone(),
        client_type: ClientType::Backup,
        model: states::MODEL_ID.into(),
        seed: states::random_b64::<32>().map_err(random_error)?,
        salt: states::random_b64::<16>().map_err(random_error)?,
        bits: None,
        helper: None,
        public_key: None,
    };
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let server = ServerState {
        keyless_id: keyless_id.clone(),
        scenario,
        created,
        model: states::MODEL_ID.into(),
        public_key: None,
        agent_key: None,
        signature: None,
    };
    Ok(OfflineEnrollment {
        keyless_id,
        client_state: client.encode(),
        server_state: server.encode(),
    })
}

fn random_error(e: getrandom::Error) -> EnrollError {
    EnrollError::Internal(format!("random source: {e}"))
}
