//! A steady rhythm: at most one step per interval, without catching up after a late step.

use std::time::{Duration, Instant};

pub struct Pace {
    interval: Duration,
    due: Option<Instant>,
}

impl Pace {
    /// At most `per_second` steps a second (held between 0.01 and a million).
    pub fn new(per_second: f64) -> Pace {
        let per_second = if per_second.is_nan() {
            1.0
        } else {
            per_second.clamp(0.01, 1e6)
        };
        Pace {
            interval: Duration::from_secs_f64(1.0 / per_second),
            due: None,
        }
    }

    /// Sleeps until the next step is due, then counts one interval from now.
    pub fn wait(&mut self) {
        if let Some(wait) = self
            .due
            .and_then(|d| d.checked_duration_since(Instant::now()))
        {
            std::thread::sleep(wait);
        }
        self.due = Some(Instant::now() + self.interval);
    }

    /// Puts the next step off by `delay` instead of one interval.
    pub fn hold_off(&mut self, delay: Duration) {
        self.due = Some(Instant::now() + delay);
    }
}
