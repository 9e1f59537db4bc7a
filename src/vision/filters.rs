//! The six contract filters: measurements from [`Analysis`] against thresholds, under a
//! scenario's policy. All thresholds live in [`Thresholds`].

use crate::contract::{Filter, FilterStatus, Filters, Scenario};

use super::Analysis;
use super::detect::Face;
use super::occlusion::Occlusion;

/// Every number a filter decision depends on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// Minimum distance between the eyes, in image pixels.
    pub min_interocular: f32,
    /// Another face counts towards `faceMultiple` when its visible size is at least this
    /// fraction of the enrolled face's (documents: the small "ghost" portrait does not).
    pub multiple_relative_size: f32,
    /// `facePartial` when more than this fraction of the face box lies outside the image.
    pub max_outside_fraction: f32,
    /// `imageBlackAndWhite` below this colourfulness (0 for greyscale, >25 for photos).
    pub min_colourfulness: f32,
    /// `faceIsOccluded` when the occlusion classifier's score exceeds this (0: the
    /// operating point its training chose).
    pub max_occlusion_score: f32,
}

impl Thresholds {
    /// Defaults for a scenario.
    pub fn for_scenario(scenario: Scenario) -> Thresholds {
        let base = Thresholds {
            min_interocular: 32.0,
            multiple_relative_size: 0.8,
            max_outside_fraction: 0.12,
            min_colourfulness: 5.0,
            max_occlusion_score: 0.0,
        };
        match scenario {
            Scenario::Document => Thresholds {
                min_interocular: 24.0,
                multiple_relative_size: 0.6,
                ..base
            },
            Scenario::Selfie | Scenario::TrustedSource => base,
        }
    }
}

/// Which filters a scenario runs, and with what thresholds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    /// Whether each filter runs, in [`Filter::ALL`]'s order.
    on: [bool; 6],
    pub thresholds: Thresholds,
}

impl Policy {
    /// The contract's default policy: everything on, except black-and-white for
    /// trusted portraits and documents (official portraits may be greyscale).
    pub fn for_scenario(scenario: Scenario) -> Policy {
        Policy {
            on: Filter::ALL
                .map(|f| f != Filter::ImageBlackAndWhite || scenario == Scenario::Selfie),
            thresholds: Thresholds::for_scenario(scenario),
        }
    }

    /// Whether `filter` runs.
    pub fn runs(&self, filter: Filter) -> bool {
        self.on[filter as usize]
    }

    /// Turns `filter` on or off.
    pub fn set(&mut self, filter: Filter, on: bool) {
        self.on[filter as usize] = on;
    }
}

/// Evaluates the six filters on one analysed image.
pub fn evaluate(analysis: &Analysis, policy: &Policy) -> Filters {
    let t = &policy.thresholds;
    let status = |on: bool, triggered: Option<bool>| match (on, triggered) {
        (false, _) => FilterStatus::TurnedOff,
        (true, None) => FilterStatus::CannotRunOnFrame,
        (true, Some(true)) => FilterStatus::Triggered,
        (true, Some(false)) => FilterStatus::NotTriggered,
    };
    let main = analysis.primary.as_ref();
    let face = main.map(|p| &p.face);
    // Whether `filter` triggers; `None` when it cannot run on this image.
    let triggered = |filter| match filter {
        Filter::FaceMissing => Some(main.is_none()),
        Filter::FaceMultiple => Some(face.is_some_and(|f| others(analysis, f, t) > 0)),
        Filter::FacePartial => face.map(|f| is_partial(f, analysis.width, analysis.height, t)),
        Filter::FaceTooSmall => face.map(|f| f.interocular() < t.min_interocular),
        Filter::FaceIsOccluded => main.map(|p| is_occluded(&p.occlusion, t)),
        Filter::ImageBlackAndWhite => Some(analysis.colourfulness < t.min_colourfulness),
    };
    Filters::from_fn(|filter| status(policy.runs(filter), triggered(filter)))
}

/// Faces other than `main` whose visible size is comparable to its own.
fn others(analysis: &Analysis, main: &Face, t: &Thresholds) -> usize {
    let visible = |f: &Face| f.visible_size(analysis.width, analysis.height);
    analysis
        .faces
        .iter()
        .filter(|f| *f != main && visible(f) >= t.multiple_relative_size * visible(main))
        .count()
}

fn is_partial(face: &Face, width: u32, height: u32, t: &Thresholds) -> bool {
    let inside = |p: &super::geometry::Point| {
        p.x >= 0.0 && p.y >= 0.0 && p.x < width as f32 && p.y < height as f32
    };
    face.outside_fraction(width, height) > t.max_outside_fraction
        || !face.keypoints[..4].iter().all(inside)
}

fn is_occluded(o: &Occlusion, t: &Thresholds) -> bool {
    o.score > t.max_occlusion_score
}
