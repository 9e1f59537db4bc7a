//! Where the kiosk and `capture` get their pictures: a camera (feature `camera`) or files,
//! behind one trait. Frames stay encoded (or raw) until someone decides to look at them,
//! so frames that are dropped cost nothing but the copy.

#[cfg(feature = "camera")]
pub mod camera;
pub mod files;
pub mod latest;
pub mod negotiate;
pub mod pace;

use image::RgbImage;

use crate::vision::decode::{self, DecodeError, DecodeOptions};

/// One frame as its source delivered it.
pub enum Frame {
    /// An encoded image: a JPEG from an MJPEG camera or stream, or an image file.
    Encoded(Vec<u8>),
    /// Raw camera pixels (YUYV, NV12, grey, RGB, BGR), converted when decoded.
    #[cfg(feature = "camera")]
    Camera(nokhwa::Buffer),
}

impl Frame {
    /// The frame as RGB, refusing more than `max_pixels`.
    pub fn decode(&self, max_pixels: u64) -> Result<RgbImage, DecodeError> {
        match self {
            Frame::Encoded(bytes) => decode::decode(bytes, &DecodeOptions::file(max_pixels)),
            #[cfg(feature = "camera")]
            Frame::Camera(buffer) => camera::decode(buffer, max_pixels),
        }
    }
}

/// A source of frames. Sources need not be `Send` (a camera handle is not): they are
/// opened on the thread that reads them ([`latest::spawn_reader`]).
pub trait FrameSource {
    /// The next frame, waiting for it as long as the source paces them; `None` once the
    /// source has no more.
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError>;

    /// What the source reads, for logs (`camera 0 (HD Webcam), 640x480 MJPEG 30 fps`).
    fn describe(&self) -> String;
}

/// Why a source cannot deliver frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError(pub String);

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceError {}

/// Which source to open.
#[derive(Clone, Debug)]
pub enum Spec {
    Files {
        path: std::path::PathBuf,
        playback: files::Playback,
    },
    #[cfg(feature = "camera")]
    Camera {
        device: camera::Device,
        wanted: negotiate::Wanted,
    },
}

impl Spec {
    /// Opens the source (on the reader's thread).
    fn opener(&self) -> latest::Opener {
        match self.clone() {
            Spec::Files { path, playback } => Box::new(move || {
                Ok(Box::new(files::FileSource::open(&path, playback)?) as Box<dyn FrameSource>)
            }),
            #[cfg(feature = "camera")]
            Spec::Camera { device, wanted } => Box::new(move || {
                Ok(Box::new(camera::CameraSource::open(&device, &wanted)?) as Box<dyn FrameSource>)
            }),
        }
    }

    /// Whether every frame should be seen: files played as fast as they are read. Live
    /// sources drop frames instead.
    pub fn lossless(&self) -> bool {
        matches!(self, Spec::Files { playback, .. } if playback.fps.is_none())
    }

    /// Starts reading the source into a new slot.
    pub fn start(&self) -> std::io::Result<std::sync::Arc<latest::Latest>> {
        let slot = latest::Latest::new(self.lossless());
        latest::spawn_reader(self.opener(), std::sync::Arc::clone(&slot))?;
        Ok(slot)
    }
}
