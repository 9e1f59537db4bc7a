//! The best frame over a short window: frames are offered as they are assessed; the
//! window closes a fixed time after the first acceptable frame (so the person gets a
//! moment to settle and the sharpest, most frontal frame of that moment wins), or when
//! the attempt gives up without one.

use std::time::{Duration, Instant};

use image::RgbImage;

use super::assess::{Assessment, Guidance};
use crate::vision::filters::Policy;

/// How long a selection runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Time after the first acceptable frame during which better ones may come.
    pub settle: Duration,
    /// Time after the start at which an attempt without an acceptable frame ends.
    pub give_up: Duration,
}

impl Default for Window {
    fn default() -> Window {
        Window {
            settle: Duration::from_millis(1500),
            give_up: Duration::from_secs(15),
        }
    }
}

/// An assessed frame.
#[derive(Debug)]
pub struct Candidate {
    /// Its sequence number in the source.
    pub seq: u64,
    pub score: f32,
    pub assessment: Assessment,
    /// The frame itself: the liveness check and `--save-frame` need it.
    pub image: RgbImage,
}

impl Candidate {
    /// A frame assessed under `policy`, ranked by [`Assessment::score`].
    pub fn new(seq: u64, assessment: Assessment, policy: &Policy, image: RgbImage) -> Candidate {
        Candidate {
            seq,
            score: assessment.score(policy),
            assessment,
            image,
        }
    }
}

/// No frame of the attempt was acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoGoodFrame {
    /// Frames assessed.
    pub seen: u32,
    /// The advice for the last of them.
    pub last: Option<Guidance>,
}

impl std::fmt::Display for NoGoodFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.last {
            None => write!(f, "no frame was assessed"),
            Some(g) => write!(
                f,
                "none of the {} frames assessed could be enrolled; the last one needed: {}",
                self.seen,
                g.message()
            ),
        }
    }
}

impl std::error::Error for NoGoodFrame {}

pub struct Selection {
    window: Window,
    started: Instant,
    first_good: Option<Instant>,
    best: Option<Candidate>,
    seen: u32,
    last: Option<Guidance>,
}

impl Selection {
    pub fn new(window: Window, now: Instant) -> Selection {
        Selection {
            window,
            started: now,
            first_good: None,
            best: None,
            seen: 0,
            last: None,
        }
    }

    /// Offers a frame; it is kept if acceptable (score > 0) and better than the best so
    /// far. Frames offered once the selection is done are ignored.
    pub fn offer(&mut self, candidate: Candidate, now: Instant) {
        if self.done(now) {
            return;
        }
        self.seen += 1;
        self.last = Some(candidate.assessment.guidance);
        if candidate.score <= 0.0 {
            return;
        }
        self.first_good.get_or_insert(now);
        if self.best.as_ref().is_none_or(|b| candidate.score > b.score) {
            self.best = Some(candidate);
        }
    }

    /// Whether the window has closed.
    pub fn done(&self, now: Instant) -> bool {
        match self.first_good {
            Some(t) => now.duration_since(t) >= self.window.settle,
            None => now.duration_since(self.started) >= self.window.give_up,
        }
    }

    /// The best frame, or why there is none.
    pub fn finish(self) -> Result<Candidate, NoGoodFrame> {
        self.best.ok_or(NoGoodFrame {
            seen: self.seen,
            last: self.last,
        })
    }
}
