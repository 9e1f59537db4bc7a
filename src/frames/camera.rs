//! Frames from a UVC/V4L2 camera through `nokhwa`: device by index, `/dev/videoN` or name,
//! the mode chosen by [`negotiate`](super::negotiate), pixels converted only when a frame
//! is decoded.

use std::str::FromStr;

use image::RgbImage;
use nokhwa::Camera;
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraInfo, FrameFormat, RequestedFormat, RequestedFormatType,
};

use super::negotiate::{self, Mode, PixelFormat, Wanted};
use super::{Frame, FrameSource, SourceError};
use crate::vision::decode::{self, DecodeError, DecodeOptions};

/// Which camera: an index (`0`, or `/dev/video0`), else a part of its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Device {
    Index(u32),
    Name(String),
}

impl FromStr for Device {
    type Err = String;

    fn from_str(s: &str) -> Result<Device, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("name a camera by index (0), device (/dev/video0) or name".into());
        }
        let digits = s.strip_prefix("/dev/video").unwrap_or(s);
        Ok(digits
            .parse()
            .map_or_else(|_| Device::Name(s.to_string()), Device::Index))
    }
}

pub struct CameraSource {
    camera: Camera,
    description: String,
}

impl CameraSource {
    /// Opens `device` in the mode [`negotiate`](negotiate::negotiate) picks for `wanted`
    /// and starts its stream.
    pub fn open(device: &Device, wanted: &Wanted) -> Result<CameraSource, SourceError> {
        let cameras = nokhwa::query(ApiBackend::Video4Linux)
            .map_err(|e| SourceError(format!("listing cameras: {e}")))?;
        let info = find(&cameras, device)?;
        let name = format!("camera {} ({})", info.index(), info.human_name());
        let error =
            |what: &str, e: nokhwa::NokhwaError| SourceError(format!("{name}: {what}: {e}"));
        // Opened in any colour format first, to read what it offers.
        let any = RequestedFormat::new::<RgbFormat>(RequestedFormatType::None);
        let mut camera = Camera::with_backend(info.index().clone(), any, ApiBackend::Video4Linux)
            .map_err(|e| {
                error(
                    "cannot open it (is another program using it? does this user have access to /dev/video*?) or it offers none of MJPEG, YUYV, NV12, GREY, RGB, BGR",
                    e,
                )
            })?;
        let offered: Vec<Mode> = camera
            .compatible_camera_formats()
            .map_err(|e| error("reading its modes", e))?
            .iter()
            .map(mode)
            .collect();
        let chosen = negotiate::negotiate(&offered, wanted)
            .map_err(|e| SourceError(format!("{name}: {e}")))?;
        let format = CameraFormat::new_from(
            chosen.width,
            chosen.height,
            frame_format(chosen.format),
            chosen.fps,
        );
        let formats = [format.format()];
        camera
            .set_camera_requset(RequestedFormat::with_formats(
                RequestedFormatType::Exact(format),
                &formats,
            ))
            .map_err(|e| error(&format!("setting {chosen}"), e))?;
        camera
            .open_stream()
            .map_err(|e| error("starting the stream", e))?;
        Ok(CameraSource {
            camera,
            description: format!("{name}, {chosen}"),
        })
    }
}

fn find<'a>(cameras: &'a [CameraInfo], device: &Device) -> Result<&'a CameraInfo, SourceError> {
    let found = cameras.iter().find(|c| match device {
        Device::Index(i) => c.index().as_index().ok() == Some(*i),
        Device::Name(n) => c.human_name().to_lowercase().contains(&n.to_lowercase()),
    });
    found.ok_or_else(|| {
        let attached: Vec<String> = cameras
            .iter()
            .map(|c| format!("{} ({})", c.index(), c.human_name()))
            .collect();
        let attached = if attached.is_empty() {
            "no camera is attached".to_string()
        } else {
            format!("attached: {}", attached.join(", "))
        };
        SourceError(format!("no camera {device:?}; {attached}"))
    })
}

fn mode(f: &CameraFormat) -> Mode {
    Mode {
        width: f.width(),
        height: f.height(),
        format: match f.format() {
            FrameFormat::MJPEG => PixelFormat::Mjpeg,
            FrameFormat::YUYV => PixelFormat::Yuyv,
            FrameFormat::NV12 => PixelFormat::Nv12,
            FrameFormat::GRAY => PixelFormat::Grey,
            FrameFormat::RAWRGB => PixelFormat::Rgb,
            FrameFormat::RAWBGR => PixelFormat::Bgr,
        },
        fps: f.frame_rate(),
    }
}

fn frame_format(f: PixelFormat) -> FrameFormat {
    match f {
        PixelFormat::Mjpeg => FrameFormat::MJPEG,
        PixelFormat::Yuyv => FrameFormat::YUYV,
        PixelFormat::Nv12 => FrameFormat::NV12,
        PixelFormat::Grey => FrameFormat::GRAY,
        PixelFormat::Rgb => FrameFormat::RAWRGB,
        PixelFormat::Bgr => FrameFormat::RAWBGR,
    }
}

impl FrameSource for CameraSource {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        self.camera
            .frame()
            .map(|buffer| Some(Frame::Camera(buffer)))
            .map_err(|e| SourceError(format!("{}: reading a frame: {e}", self.description)))
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// A camera buffer as RGB: MJPEG through the agent's own decoder, raw formats through
/// nokhwa's converters.
pub fn decode(buffer: &nokhwa::Buffer, max_pixels: u64) -> Result<RgbImage, DecodeError> {
    let res = buffer.resolution();
    if u64::from(res.width()) * u64::from(res.height()) > max_pixels {
        return Err(DecodeError::TooManyPixels {
            width: res.width(),
            height: res.height(),
            max: max_pixels,
        });
    }
    if buffer.source_frame_format() == FrameFormat::MJPEG {
        let opts = DecodeOptions {
            exif_transpose: false,
            ..DecodeOptions::file(max_pixels)
        };
        return decode::decode(buffer.buffer(), &opts);
    }
    buffer
        .decode_image::<RgbFormat>()
        .map_err(|e| DecodeError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_named_by_index_path_or_name() {
        assert_eq!("0".parse(), Ok(Device::Index(0)));
        assert_eq!("/dev/video2".parse(), Ok(Device::Index(2)));
        assert_eq!(" HD Webcam ".parse(), Ok(Device::Name("HD Webcam".into())));
        assert!("".parse::<Device>().is_err());
    }

    #[test]
    fn raw_frames_convert_and_oversized_ones_are_refused() {
        use nokhwa::utils::Resolution;
        // YUYV: one pair of pixels per 4 bytes; mid-grey in, mid-grey out.
        let yuyv = nokhwa::Buffer::new(
            Resolution::new(2, 1),
            &[128, 128, 128, 128],
            FrameFormat::YUYV,
        );
        let rgb = decode(&yuyv, 100).unwrap();
        assert_eq!(rgb.dimensions(), (2, 1));
        assert!(
            rgb.pixels()
                .all(|p| p.0.iter().all(|&c| c.abs_diff(128) <= 2)),
            "{rgb:?}"
        );
        let big = nokhwa::Buffer::new(Resolution::new(2000, 2000), &[], FrameFormat::MJPEG);
        assert!(matches!(
            decode(&big, 1_000_000),
            Err(DecodeError::TooManyPixels { .. })
        ));
    }
}
