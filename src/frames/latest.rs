//! The newest frame, handed from the thread that reads a source to the one that analyses
//! frames. The slot holds one frame: a slow reader of the slot skips frames, and nothing
//! queues. A lossless slot (files played unpaced) makes the source wait instead, so every
//! frame is seen.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Frame, FrameSource, SourceError};

pub struct Latest {
    lossless: bool,
    slot: Mutex<Slot>,
    changed: Condvar,
}

#[derive(Default)]
struct Slot {
    frame: Option<Frame>,
    /// Frames put so far.
    seq: u64,
    /// Frames replaced before anyone took them.
    dropped: u64,
    /// Set once the source has ended: `Some(error)` if it failed.
    ended: Option<Option<SourceError>>,
    /// The reader of the slot has gone: the source stops.
    closed: bool,
}

/// What [`Latest::take`] found.
pub enum Taken {
    /// A frame and its sequence number (1 for the source's first frame).
    Frame(u64, Frame),
    /// The source has ended, with its error if it failed.
    Ended(Option<SourceError>),
    /// No new frame in time.
    Timeout,
}

impl Latest {
    pub fn new(lossless: bool) -> Arc<Latest> {
        Arc::new(Latest {
            lossless,
            slot: Mutex::default(),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a frame, replacing one not yet taken (or, lossless, waiting until it is).
    /// False once the slot is closed.
    pub fn put(&self, frame: Frame) -> bool {
        let mut slot = self.lock();
        while self.lossless && slot.frame.is_some() && !slot.closed {
            slot = self
                .changed
                .wait(slot)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if slot.closed {
            return false;
        }
        if slot.frame.replace(frame).is_some() {
            slot.dropped += 1;
        }
        slot.seq += 1;
        self.changed.notify_all();
        true
    }

    /// Marks the source as ended.
    pub fn end(&self, error: Option<SourceError>) {
        self.lock().ended = Some(error);
        self.changed.notify_all();
    }

    /// Stops the source at its next frame.
    pub fn close(&self) {
        let mut slot = self.lock();
        slot.closed = true;
        slot.frame = None;
        self.changed.notify_all();
    }

    /// The newest frame not yet taken, waiting up to `timeout` for one.
    pub fn take(&self, timeout: Duration) -> Taken {
        let deadline = Instant::now() + timeout;
        let mut slot = self.lock();
        loop {
            if let Some(frame) = slot.frame.take() {
                self.changed.notify_all();
                return Taken::Frame(slot.seq, frame);
            }
            if let Some(error) = &slot.ended {
                return Taken::Ended(error.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return Taken::Timeout;
            }
            slot = self
                .changed
                .wait_timeout(slot, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Frames replaced before they were taken.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

/// The source a reader thread opens.
pub type Opener = Box<dyn FnOnce() -> Result<Box<dyn FrameSource>, SourceError> + Send>;

/// Opens a source on a thread of its own and reads it into `latest` until the source ends
/// or the slot is closed; a failure to open ends the slot with that error.
pub fn spawn_reader(open: Opener, latest: Arc<Latest>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("frames".into())
        .spawn(move || {
            let mut source = match open() {
                Ok(source) => source,
                Err(e) => return latest.end(Some(e)),
            };
            log::info!("frames from {}", source.describe());
            loop {
                match source.next_frame() {
                    Ok(Some(frame)) => {
                        if !latest.put(frame) {
                            return;
                        }
                    }
                    Ok(None) => return latest.end(None),
                    Err(e) => return latest.end(Some(e)),
                }
            }
        })
}
