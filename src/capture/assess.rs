//! One frame assessed for enrolment: the six filters, how good the face is beyond them
//! (sharpness, pose, size), and what to tell the person in front of the camera.

use image::RgbImage;
use serde::Serialize;
use tract_nnef::prelude::TractResult;

use crate::contract::{FilterStatus, Filters};
use crate::vision::detect::Face;
use crate::vision::filters::{self, Policy};
use crate::vision::{Analysis, Models, PrimaryFace};

/// Sideways turn of the head (nose offset along the eye line, in eye distances) beyond
/// which a face is not frontal: about half the tangent of the turn, so 0.3 is about 30°.
/// The fixtures' portraits measure −0.22 to 0.26.
pub const MAX_YAW: f32 = 0.3;

/// Sharpness ([`Quality::sharpness`]) below which a face is blurred. The fixtures'
/// portraits measure 0.12–0.56 whatever their light; blurred by a Gaussian of σ = 1 px
/// the smaller faces fall to 0.02–0.08, by σ = 1.5 px to 0.01–0.05.
pub const MIN_SHARPNESS: f32 = 0.06;

/// How good a face is, beyond the filters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Quality {
    /// [`PrimaryFace::sharpness`].
    pub sharpness: f32,
    /// Nose offset from the eyes' midpoint along the eye line, in eye distances: 0 facing
    /// the camera, signed by the direction of the turn.
    pub yaw: f32,
    /// Pixels between the eyes.
    pub interocular: f32,
}

impl Quality {
    /// The quality of the enrolled face, from what the analysis measured on it.
    pub fn measure(primary: &PrimaryFace) -> Quality {
        let face = &primary.face;
        Quality {
            sharpness: primary.sharpness,
            yaw: yaw(face),
            interocular: face.interocular(),
        }
    }

    pub fn frontal(&self) -> bool {
        self.yaw.abs() <= MAX_YAW
    }

    pub fn sharp(&self) -> bool {
        self.sharpness >= MIN_SHARPNESS
    }

    /// Ranks acceptable frames of one person, in (0, 1): sharper, closer and more frontal
    /// is better. Sharpness and size count as `x / (x + threshold)`, rising without
    /// bound but ever more slowly, so no one of them outweighs a poor other.
    pub fn score(&self, min_interocular: f32) -> f32 {
        let rising = |x: f32, threshold: f32| x / (x + threshold.max(1e-6));
        let frontal = (1.0 - self.yaw.abs() / (2.0 * MAX_YAW)).max(0.0);
        rising(self.sharpness, MIN_SHARPNESS) * rising(self.interocular, min_interocular) * frontal
    }
}

/// Yaw proxy: the nose's offset from the eyes' midpoint, projected on the eye line.
fn yaw(face: &Face) -> f32 {
    let (r, l, nose) = (face.right_eye(), face.left_eye(), face.nose());
    let mid = r.midpoint(l);
    let d = r.distance(l).max(1e-3);
    ((nose.x - mid.x) * (l.x - r.x) + (nose.y - mid.y) * (l.y - r.y)) / (d * d)
}

/// What the person should do next, most pressing first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Guidance {
    StepIn,
    MoveCloser,
    MoveToCentre,
    OnePerson,
    UncoverFace,
    MoreLight,
    FaceCamera,
    HoldStill,
    Ready,
}

impl Guidance {
    /// The advice in plain words.
    pub fn message(self) -> &'static str {
        match self {
            Guidance::StepIn => "Step in front of the camera and look at it",
            Guidance::OnePerson => "Only one person please",
            Guidance::MoveToCentre => "Move so that your whole face is in the picture",
            Guidance::MoveCloser => "Move closer",
            Guidance::UncoverFace => "Remove anything covering your face",
            Guidance::MoreLight => "More light please: the picture has no colour",
            Guidance::FaceCamera => "Face the camera",
            Guidance::HoldStill => "Hold still",
            Guidance::Ready => "Ready",
        }
    }

    /// The advice for a frame: the first filter that triggered, else the first quality
    /// short of what enrolment wants, else ready.
    pub fn for_frame(filters: &Filters, quality: Option<&Quality>) -> Guidance {
        let triggered = |s: FilterStatus| s == FilterStatus::Triggered;
        // A small face first: the other measurements of a face far away are the least
        // reliable (background detections, occlusion).
        let by_filter = [
            (filters.face_missing, Guidance::StepIn),
            (filters.face_too_small, Guidance::MoveCloser),
            (filters.face_partial, Guidance::MoveToCentre),
            (filters.face_multiple, Guidance::OnePerson),
            (filters.face_is_occluded, Guidance::UncoverFace),
            (filters.image_black_and_white, Guidance::MoreLight),
        ];
        if let Some((_, g)) = by_filter.iter().find(|(s, _)| triggered(*s)) {
            return *g;
        }
        match quality {
            None => Guidance::StepIn,
            Some(q) if !q.frontal() => Guidance::FaceCamera,
            Some(q) if !q.sharp() => Guidance::HoldStill,
            Some(_) => Guidance::Ready,
        }
    }
}

/// One frame, assessed.
#[derive(Debug)]
pub struct Assessment {
    pub analysis: Analysis,
    pub filters: Filters,
    /// Of the enrolled face, when there is one.
    pub quality: Option<Quality>,
    pub guidance: Guidance,
}

impl Assessment {
    /// Whether this frame could be enrolled as it is.
    pub fn acceptable(&self) -> bool {
        self.guidance == Guidance::Ready
    }

    /// Its rank among acceptable frames ([`Quality::score`]); 0 for others.
    pub fn score(&self, policy: &Policy) -> f32 {
        match (&self.quality, self.acceptable()) {
            (Some(q), true) => q.score(policy.thresholds.min_interocular),
            _ => 0.0,
        }
    }
}

/// Analyses `image` and assesses it under `policy`.
pub fn assess(models: &Models, image: &RgbImage, policy: &Policy) -> TractResult<Assessment> {
    let analysis = models.analyse(image)?;
    let filters = filters::evaluate(&analysis, policy);
    let quality = analysis.primary.as_ref().map(Quality::measure);
    let guidance = Guidance::for_frame(&filters, quality.as_ref());
    Ok(Assessment {
        analysis,
        filters,
        quality,
        guidance,
    })
}
