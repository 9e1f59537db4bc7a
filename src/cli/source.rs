//! The frame source `capture` and `serve --kiosk` share: the camera, or files.

use std::path::PathBuf;

use recognize_agent::frames::{self, files::Playback, negotiate::Resolution};

use super::Error;

/// Where frames come from: the camera, or files.
#[derive(clap::Args)]
pub(super) struct SourceArgs {
    /// The camera: an index (0), a device (/dev/video0) or part of its name
    #[arg(long, env = "CAMERA_DEVICE", default_value = "0")]
    camera: String,
    /// Resolution asked of the camera (the nearest it offers is taken)
    #[arg(long, env = "CAMERA_RESOLUTION", default_value = "640x480")]
    camera_resolution: Resolution,
    /// Frame rate asked of the camera
    #[arg(long, env = "CAMERA_FPS", default_value_t = 30)]
    camera_fps: u32,
    /// Frames from files instead of the camera: an image, a directory of images (in name
    /// order) or an MJPEG stream file (.mjpeg)
    #[arg(long)]
    frames: Option<PathBuf>,
    /// Play --frames at this many frames per second, like a camera [default: as fast as
    /// they are assessed, none dropped]
    #[arg(long, value_parser = parse_rate)]
    frames_fps: Option<f64>,
    /// Frames assessed per second, at most; the others are dropped
    #[arg(long, env = "ANALYSIS_FPS", default_value = "5", value_parser = parse_rate)]
    pub(super) analysis_fps: f64,
}

impl SourceArgs {
    pub(super) fn spec(&self, max_pixels: u64, looping: bool) -> Result<frames::Spec, Error> {
        if let Some(path) = &self.frames {
            let playback = Playback {
                fps: self.frames_fps,
                looping,
            };
            return Ok(frames::Spec::Files {
                path: path.clone(),
                playback,
            });
        }
        self.camera_spec(max_pixels)
    }

    #[cfg(feature = "camera")]
    fn camera_spec(&self, max_pixels: u64) -> Result<frames::Spec, Error> {
        Ok(frames::Spec::Camera {
            device: self.camera.parse().map_err(|e| format!("--camera: {e}"))?,
            wanted: frames::negotiate::Wanted {
                resolution: self.camera_resolution,
                fps: self.camera_fps,
                max_pixels,
            },
        })
    }

    #[cfg(not(feature = "camera"))]
    fn camera_spec(&self, _: u64) -> Result<frames::Spec, Error> {
        // The camera settings are still accepted (presets set them for every build).
        let _ = (&self.camera, self.camera_resolution, self.camera_fps);
        Err("this build has no camera support (cargo feature `camera`); use --frames".into())
    }
}

/// A positive rate, per second.
fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!("'{s}' is not a positive number per second")),
    }
}
