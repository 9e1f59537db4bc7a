//! From frames to one enrolment: frames are taken from a source at a bounded rate,
//! assessed, and the best over a short window is kept (`recognize-agent capture` and the
//! kiosk).

pub mod assess;
pub mod select;

use std::time::{Duration, Instant};

use crate::frames::SourceError;
use crate::frames::latest::{Latest, Taken};
use crate::frames::pace::Pace;
use crate::vision::Models;
use crate::vision::filters::Policy;
use assess::assess;
use select::{Candidate, NoGoodFrame, Selection, Window};

/// How frames are taken and chosen.
#[derive(Clone, Copy, Debug)]
pub struct CaptureSettings {
    /// Frames assessed per second, at most (> 0); frames in between are dropped.
    pub rate: f64,
    pub window: Window,
    /// Largest frame decoded, in pixels.
    pub max_pixels: u64,
}

/// Why no frame was chosen.
#[derive(Debug)]
pub enum CaptureError {
    /// The source failed (or could not be opened).
    Source(SourceError),
    /// Frames came, but none could be enrolled.
    NoGoodFrame(NoGoodFrame),
    /// A model failed.
    Model(String),
}

impl std::fmt::Display for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaptureError::Source(e) => write!(f, "frame source: {e}"),
            CaptureError::NoGoodFrame(e) => e.fmt(f),
            CaptureError::Model(e) => write!(f, "face pipeline: {e}"),
        }
    }
}

impl std::error::Error for CaptureError {}

/// Takes frames from `latest` at `settings.rate`, assesses each under `policy` (telling
/// `observe`), and returns the best of the window. Stops early if the source ends.
pub fn best_frame(
    latest: &Latest,
    models: &Models,
    policy: &Policy,
    settings: &CaptureSettings,
    mut observe: impl FnMut(&Candidate),
) -> Result<Candidate, CaptureError> {
    let mut pace = Pace::new(settings.rate);
    let mut selection = Selection::new(settings.window, Instant::now());
    let mut undecodable = None;
    while !selection.done(Instant::now()) {
        // One frame per interval: those arriving in between are replaced in the slot.
        pace.wait();
        let (seq, frame) = match latest.take(Duration::from_millis(500)) {
            Taken::Frame(seq, frame) => (seq, frame),
            Taken::Timeout => continue,
            Taken::Ended(None) => break,
            Taken::Ended(Some(e)) => return Err(CaptureError::Source(e)),
        };
        let image = match frame.decode(settings.max_pixels) {
            Ok(image) => image,
            Err(e) => {
                log::warn!("frame {seq} skipped: {e}");
                undecodable = Some(e);
                continue;
            }
        };
        let assessment =
            assess(models, &image, policy).map_err(|e| CaptureError::Model(e.to_string()))?;
        let candidate = Candidate::new(seq, assessment, policy, image);
        observe(&candidate);
        selection.offer(candidate, Instant::now());
    }
    selection.finish().map_err(|none| match undecodable {
        Some(e) if none.seen == 0 => {
            CaptureError::Source(SourceError(format!("no frame could be decoded: {e}")))
        }
        _ => CaptureError::NoGoodFrame(none),
    })
}
