//! Kiosk mode (`serve --kiosk`): the agent watches its camera while its page is open,
//! tells the person what to do, and enrols the best frame when they press start. The
//! camera runs only while someone watches or an enrolment runs; frames, the preview and
//! the result stay in memory and are served to the kiosk's own browser only (loopback).

pub mod routes;

use std::io::Cursor;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use image::RgbImage;
use image::codecs::jpeg::JpegEncoder;
use serde::Serialize;

use crate::backend::client::Client;
use crate::capture::assess::{Assessment, Guidance, assess};
use crate::capture::select::{Candidate, Selection, Window};
use crate::contract::Scenario;
use crate::enroll::{EnrollError, Enroller, Outcome};
use crate::frames::Spec;
use crate::frames::latest::{Latest, Taken};
use crate::frames::pace::Pace;
use crate::protect::states::ClientType;

/// How the kiosk runs.
pub struct KioskSettings {
    pub source: Spec,
    /// Frames assessed per second, at most.
    pub rate: f64,
    pub window: Window,
    pub max_pixels: u64,
    pub scenario: Scenario,
    /// The camera is released when the page has not asked for news for this long.
    pub idle: Duration,
}

/// Widest preview sent to the page.
const PREVIEW_WIDTH: u32 = 640;

/// What the page shows.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct View {
    pub phase: Phase,
    /// Advice for the last frame assessed.
    pub guidance: Option<Advice>,
    /// The enrolled face's box in the preview, as fractions of its width and height.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face: Option<[f32; 4]>,
    /// Sequence number of the preview frame.
    pub frame: u64,
    /// The last enrolment's outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Finished>,
    /// Why the camera cannot be used, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    /// Nobody is watching; the camera is off.
    #[default]
    Idle,
    /// Frames are assessed and advice given.
    Watching,
    /// An enrolment is choosing its frame.
    Capturing,
    /// The camera (or frame source) failed; retried shortly.
    Unavailable,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Advice {
    pub code: Guidance,
    pub message: &'static str,
}

impl From<Guidance> for Advice {
    fn from(code: Guidance) -> Advice {
        Advice {
            code,
            message: code.message(),
        }
    }
}

/// The outcome of one enrolment, as the page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finished {
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyless_id: Option<String>,
    pub message: String,
}

impl Finished {
    fn enrolled(keyless_id: String) -> Finished {
        Finished {
            success: true,
            keyless_id: Some(keyless_id),
            message: "Enrolled".into(),
        }
    }

    fn failed(message: String) -> Finished {
        Finished {
            success: false,
            keyless_id: None,
            message,
        }
    }
}

pub struct Kiosk {
    settings: KioskSettings,
    enroller: Arc<Enroller>,
    backend: Option<Client>,
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// What the worker last saw; [`Kiosk::view`] adds whether a capture runs.
    view: View,
    watched_until: Option<Instant>,
    preview: Option<Arc<Vec<u8>>>,
    capture: Option<Selection>,
    /// The last enrolment's full answer (states included), for the integrating system.
    answer: Option<serde_json::Value>,
}

/// Why a capture cannot start.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

impl Kiosk {
    /// Starts the kiosk's worker thread.
    pub fn start(
        settings: KioskSettings,
        enroller: Arc<Enroller>,
        backend: Option<Client>,
    ) -> std::io::Result<Arc<Kiosk>> {
        let kiosk = Arc::new(Kiosk {
            settings,
            enroller,
            backend,
            state: Mutex::default(),
            wake: Condvar::new(),
        });
        let worker = Arc::clone(&kiosk);
        std::thread::Builder::new()
            .name("kiosk".into())
            .spawn(move || worker.run())?;
        Ok(kiosk)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the page shows; asking keeps the camera on for [`KioskSettings::idle`].
    pub fn view(&self) -> View {
        let mut state = self.lock();
        state.watched_until = Some(Instant::now() + self.settings.idle);
        self.wake.notify_all();
        let mut view = state.view.clone();
        if state.capture.is_some() {
            view.phase = Phase::Capturing;
        }
        view
    }

    /// The latest preview frame (JPEG).
    pub fn preview(&self) -> Option<Arc<Vec<u8>>> {
        self.lock().preview.clone()
    }

    /// The last enrolment's full answer: the endpoint's JSON.
    pub fn answer(&self) -> Option<serde_json::Value> {
        self.lock().answer.clone()
    }

    /// Starts choosing a frame to enrol; the previous result is forgotten.
    pub fn capture(&self) -> Result<(), Busy> {
        let mut state = self.lock();
        if state.capture.is_some() {
            return Err(Busy);
        }
        state.capture = Some(Selection::new(self.settings.window, Instant::now()));
        state.answer = None;
        state.view.result = None;
        state.watched_until = Some(Instant::now() + self.settings.idle);
        self.wake.notify_all();
        Ok(())
    }

    /// Whether the camera should be on: someone watches, or a capture runs.
    fn wanted(state: &State) -> bool {
        state.capture.is_some() || state.watched_until.is_some_and(|t| t > Instant::now())
    }

    /// The worker: opens the source while wanted, assesses frames at the configured rate,
    /// feeds a running capture, and releases the source when nobody watches.
    fn run(&self) {
        let mut pace = Pace::new(self.settings.rate);
        let mut slot: Option<Arc<Latest>> = None;
        loop {
            self.wait_until_wanted(&mut slot);
            pace.wait();
            if slot.is_none() {
                match self.settings.source.start() {
                    Ok(started) => slot = Some(started),
                    Err(e) => self.unavailable(format!("cannot read frames: {e}"), &mut pace),
                }
            }
            if let Some(latest) = &slot {
                match latest.take(Duration::from_millis(500)) {
                    Taken::Frame(seq, frame) => match frame.decode(self.settings.max_pixels) {
                        Ok(image) => self.frame(seq, &image),
                        Err(e) => log::warn!("kiosk frame {seq} skipped: {e}"),
                    },
                    Taken::Timeout => {}
                    Taken::Ended(error) => {
                        slot = None;
                        let why = error.map_or("the frame source ended".to_string(), |e| e.0);
                        self.unavailable(why, &mut pace);
                    }
                }
            }
            // A capture ends on time even while frames do not come.
            self.finish_if_done();
        }
    }

    /// Blocks while nobody watches and no capture runs, with the source released and
    /// the preview forgotten.
    fn wait_until_wanted(&self, slot: &mut Option<Arc<Latest>>) {
        let mut state = self.lock();
        while !Self::wanted(&state) {
            if let Some(s) = slot.take() {
                s.close();
            }
            state.preview = None;
            state.view = View {
                result: state.view.result.take(),
                ..View::default()
            };
            state = self
                .wake
                .wait_timeout(state, Duration::from_secs(1))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Records that the source failed; it is opened again in two seconds.
    fn unavailable(&self, why: String, pace: &mut Pace) {
        log::warn!("kiosk: {why}");
        let mut state = self.lock();
        state.view.phase = Phase::Unavailable;
        state.view.error = Some(why);
        state.preview = None;
        pace.hold_off(Duration::from_secs(2));
    }

    fn frame(&self, seq: u64, image: &RgbImage) {
        let policy = self.enroller.policy(self.settings.scenario);
        let assessment = match assess(&self.enroller.models, image, policy) {
            Ok(a) => a,
            Err(e) => {
                log::error!("kiosk: face pipeline: {e}");
                return;
            }
        };
        let preview = preview(image);
        let face = face_box(&assessment, image);
        let mut state = self.lock();
        state.preview = preview.map(Arc::new);
        state.view.phase = Phase::Watching;
        state.view.frame = seq;
        state.view.face = face;
        state.view.error = None;
        state.view.guidance = Some(assessment.guidance.into());
        if let Some(selection) = &mut state.capture {
            selection.offer(
                Candidate::new(seq, assessment, policy, image.clone()),
                Instant::now(),
            );
        }
    }

    /// Ends a capture whose window has closed: enrols its best frame.
    fn finish_if_done(&self) {
        let selection = {
            let mut state = self.lock();
            match &state.capture {
                Some(s) if s.done(Instant::now()) => state.capture.take(),
                _ => None,
            }
        };
        let Some(selection) = selection else {
            return;
        };
        let (finished, answer) = match selection.finish() {
            Ok(chosen) => match self.enrol(&chosen.image, chosen.assessment) {
                Ok((keyless_id, answer)) => (Finished::enrolled(keyless_id), answer),
                Err(message) => (Finished::failed(message), None),
            },
            Err(none) => (Finished::failed(none.to_string()), None),
        };
        log::info!(
            "kiosk enrolment {}",
            if finished.success {
                "succeeded"
            } else {
                "failed"
            }
        );
        let mut state = self.lock();
        state.view.result = Some(finished);
        state.answer = answer;
    }

    /// Enrols the chosen frame (online when a backend is configured): its keylessId and
    /// the endpoint's JSON, or why it failed, in words for the page.
    fn enrol(
        &self,
        image: &RgbImage,
        assessment: Assessment,
    ) -> Result<(String, Option<serde_json::Value>), String> {
        let outcome = self.enroller.enroll_analysis(
            image,
            assessment.analysis,
            self.settings.scenario,
            ClientType::Backup,
        );
        let states = match outcome.map(Outcome::into_result) {
            Ok(Ok(states)) => states,
            Ok(Err(refused)) => return Err(refused.detail),
            Err(EnrollError::Internal(why)) => {
                log::error!("kiosk enrolment: {why}");
                return Err("the enrolment could not be completed".into());
            }
            Err(e) => return Err(e.to_string()),
        };
        let keyless_id = states.keyless_id.clone();
        let answer = match &self.backend {
            None => serde_json::to_value(&states),
            Some(backend) => match backend.enrol_online(states) {
                Ok(online) => serde_json::to_value(&online),
                Err(e) => {
                    log::warn!("kiosk online registration failed: {e}");
                    return Err(format!("the backend did not register the enrolment: {e}"));
                }
            },
        };
        Ok((keyless_id, answer.ok()))
    }
}

/// The frame as a JPEG at most [`PREVIEW_WIDTH`] wide.
pub fn preview(image: &RgbImage) -> Option<Vec<u8>> {
    let small;
    let image = if image.width() > PREVIEW_WIDTH {
        let height = (u64::from(image.height()) * u64::from(PREVIEW_WIDTH)
            / u64::from(image.width()))
        .max(1) as u32;
        // Area averaging, much faster than a filtered resize and as good for a preview.
        small = image::imageops::thumbnail(image, PREVIEW_WIDTH, height);
        &small
    } else {
        image
    };
    let mut out = Cursor::new(Vec::new());
    image
        .write_with_encoder(JpegEncoder::new_with_quality(&mut out, 75))
        .ok()?;
    Some(out.into_inner())
}

/// The enrolled face's box as fractions of the frame.
fn face_box(assessment: &Assessment, image: &RgbImage) -> Option<[f32; 4]> {
    let b = assessment.analysis.primary.as_ref()?.face.bbox;
    let (w, h) = (image.width() as f32, image.height() as f32);
    Some([b.x0 / w, b.y0 / h, b.x1 / w, b.y1 / h].map(|v| v.clamp(0.0, 1.0)))
}
