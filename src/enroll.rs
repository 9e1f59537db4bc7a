//! One enrolment, transport-free: image bytes + scenario → states, or the filters that failed.

use std::sync::Arc;

use image::RgbImage;

use crate::clock::{Clock, SystemClock};
use crate::contract::{FilterTriggered, Filters, OfflineEnrollment, Scenario};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

use crate::protect::issue::Issuer;
use crate::protect::states::{self, ClientType};
use crate::vision::decode::{self, DecodeError, DecodeOptions};
use crate::vision::embed::Embedding;
use crate::vision::filters::{self, Policy};
use crate::vision::liveness::Liveness;
use crate::vision::{Analysis, Models};

/// The enrolment service: models, the per-scenario policies, the optional liveness
/// check, the issuer of the states and the clock that dates them.
pub struct Enroller {
    pub models: Models,
    policies: [Policy; 3],
    liveness: Option<LivenessCheck>,
    issuer: Issuer,
    clock: Arc<dyn Clock>,
}

/// Result of an enrolment that ran to the end.
#[derive(Debug)]
pub enum Outcome {
    Enrolled(OfflineEnrollment),
    /// At least one filter triggered; nothing was enrolled.
    Filtered(Filters),
    /// Every filter passed but the face does not look live; nothing was enrolled.
    NotLive {
        filters: Filters,
        score: f32,
        threshold: f32,
    },
}

impl Outcome {
    /// The states, or the `422` body of an enrolment refused by a filter or by the
    /// liveness check.
    pub fn into_result(self) -> Result<OfflineEnrollment, FilterTriggered> {
        match self {
            Outcome::Enrolled(states) => Ok(states),
            Outcome::Filtered(filters) => Err(filters.into()),
            Outcome::NotLive {
                filters,
                score,
                threshold,
            } => Err(FilterTriggered {
                detail: format!(
                    "Liveness check failed: the face may be a photo or a screen \
                     (spoof score {score:.2}, threshold {threshold:.2})"
                ),
                ..filters.into()
            }),
        }
    }
}

/// Passive liveness for `SELFIE` enrolments: the model and the spoof score above which
/// a face is refused.
pub struct LivenessCheck {
    pub model: Liveness,
    pub threshold: f32,
}

/// Why an enrolment could not run.
#[derive(Debug)]
pub enum EnrollError {
    /// The body is not an acceptable image (client error).
    Decode(DecodeError),
    /// No face to enrol, while the filters that would say so are turned off (client
    /// error).
    NoFace,
    /// A model or the OS failed (server error).
    Internal(String),
}

impl std::fmt::Display for EnrollError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnrollError::Decode(d) => d.fmt(f),
            EnrollError::NoFace => f.write_str("no single face to enrol"),
            EnrollError::Internal(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for EnrollError {}

impl From<DecodeError> for EnrollError {
    fn from(e: DecodeError) -> Self {
        EnrollError::Decode(e)
    }
}

impl Enroller {
    pub fn new(models: Models, policies: [Policy; 3], issuer: Issuer) -> Enroller {
        Enroller {
            models,
            policies,
            liveness: None,
            issuer,
            clock: Arc::new(SystemClock),
        }
    }

    /// Dates the states by `clock` instead of the system's.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Enroller {
        self.clock = clock;
        self
    }

    /// Who signs the states and whom they are sealed to.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// Checks the liveness of `SELFIE` faces before enrolling them.
    pub fn with_liveness(mut self, check: LivenessCheck) -> Enroller {
        self.liveness = Some(check);
        self
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
        client_type: ClientType,
        opts: &DecodeOptions,
    ) -> Result<Outcome, EnrollError> {
        let image = decode::decode(body, opts)?;
        self.enroll_image(&image, scenario, client_type)
    }

    /// Enrols the face in an already decoded image.
    pub fn enroll_image(
        &self,
        image: &RgbImage,
        scenario: Scenario,
        client_type: ClientType,
    ) -> Result<Outcome, EnrollError> {
        let analysis = self
            .models
            .analyse(image)
            .map_err(|e| EnrollError::Internal(format!("face pipeline: {e}")))?;
        self.enroll_analysis(image, analysis, scenario, client_type)
    }

    /// Enrols the face of `image`, already analysed (a frame chosen by `capture`).
    pub fn enroll_analysis(
        &self,
        image: &RgbImage,
        analysis: Analysis,
        scenario: Scenario,
        client_type: ClientType,
    ) -> Result<Outcome, EnrollError> {
        let filters = filters::evaluate(&analysis, self.policy(scenario));
        if filters.any_triggered() {
            return Ok(Outcome::Filtered(filters));
        }
        let Some(face) = analysis.primary else {
            return Err(EnrollError::NoFace);
        };
        if let Some(check) = self
            .liveness
            .as_ref()
            .filter(|_| scenario == Scenario::Selfie)
        {
            let score = check
                .model
                .score(image, &face.face)
                .map_err(|e| EnrollError::Internal(format!("liveness model: {e}")))?;
            if score.is_nan() || score > check.threshold {
                return Ok(Outcome::NotLive {
                    filters,
                    score,
                    threshold: check.threshold,
                });
            }
        }
        self.states(scenario, client_type, &face.embedding)
            .map(Outcome::Enrolled)
    }

    /// The signed states of an accepted face, drawn from a generator seeded by the OS.
    fn states(
        &self,
        scenario: Scenario,
        client_type: ClientType,
        embedding: &Embedding,
    ) -> Result<OfflineEnrollment, EnrollError> {
        let seed = states::random_bytes::<32>().map_err(random_error)?;
        let mut rng = ChaCha20Rng::from_seed(seed);
        self.issuer
            .issue(
                &embedding.vector,
                scenario,
                client_type,
                self.clock.now(),
                &mut rng,
            )
            .map_err(|e| EnrollError::Internal(format!("sealing the template: {e}")))
    }
}

fn random_error(e: getrandom::Error) -> EnrollError {
    EnrollError::Internal(format!("random source: {e}"))
}
