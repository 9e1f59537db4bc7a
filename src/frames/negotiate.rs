//! Choosing a camera mode: the resolution, frame rate and pixel format to ask for, among
//! those the camera offers. Pure, so it is tested without a camera.

use std::fmt;
use std::str::FromStr;

/// Pixel formats a camera may deliver, in the order they are preferred: MJPEG frames are
/// small to copy and decoded only when analysed; grey comes last, as it would trigger
/// `imageBlackAndWhite` on every frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PixelFormat {
    Mjpeg,
    Yuyv,
    Nv12,
    Rgb,
    Bgr,
    Grey,
}

impl PixelFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            PixelFormat::Mjpeg => "MJPEG",
            PixelFormat::Yuyv => "YUYV",
            PixelFormat::Nv12 => "NV12",
            PixelFormat::Rgb => "RGB",
            PixelFormat::Bgr => "BGR",
            PixelFormat::Grey => "GREY",
        }
    }
}

/// One mode a camera offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mode {
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
    pub fps: u32,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}x{} {} {} fps",
            self.width,
            self.height,
            self.format.as_str(),
            self.fps
        )
    }
}

/// A resolution, as `640x480`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub width: u32,
    pub height: u32,
}

impl FromStr for Resolution {
    type Err = String;

    fn from_str(s: &str) -> Result<Resolution, String> {
        let parsed = s
            .split_once(['x', 'X'])
            .and_then(|(w, h)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)));
        match parsed {
            Some((width, height)) if width > 0 && height > 0 => Ok(Resolution { width, height }),
            _ => Err(format!("'{s}' is not a resolution such as 640x480")),
        }
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// What the agent asks of a camera.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Wanted {
    pub resolution: Resolution,
    pub fps: u32,
    /// Modes larger than this many pixels are never chosen (the agent's image limit).
    pub max_pixels: u64,
}

/// No offered mode can be used.
#[derive(Debug, PartialEq, Eq)]
pub struct NoMode {
    pub why: String,
    pub offered: Vec<Mode>,
}

impl fmt::Display for NoMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.why)?;
        if self.offered.is_empty() {
            return f.write_str("; the camera offers no mode");
        }
        f.write_str("; the camera offers: ")?;
        for (i, mode) in self.offered.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{mode}")?;
        }
        Ok(())
    }
}

impl std::error::Error for NoMode {}

/// The smallest resolution worth analysing: below it, a face at arm's length is too small
/// for the `faceTooSmall` filter.
pub const MIN_RESOLUTION: Resolution = Resolution {
    width: 320,
    height: 240,
};

/// Chooses among `offered`: the wanted resolution if offered, else the smallest larger
/// one, else the largest smaller one (never below [`MIN_RESOLUTION`] nor above
/// `max_pixels`); then the lowest frame rate at or above the wanted one, else the
/// highest; then the preferred pixel format.
pub fn negotiate(offered: &[Mode], wanted: &Wanted) -> Result<Mode, NoMode> {
    let fail = |why: String| NoMode {
        why,
        offered: offered.to_vec(),
    };
    let area = |m: &Mode| u64::from(m.width) * u64::from(m.height);
    let usable: Vec<&Mode> = offered
        .iter()
        .filter(|m| m.width >= MIN_RESOLUTION.width && m.height >= MIN_RESOLUTION.height)
        .filter(|m| area(m) <= wanted.max_pixels)
        .collect();
    if usable.is_empty() {
        return Err(fail(format!(
            "no mode between {MIN_RESOLUTION} and {} pixels",
            wanted.max_pixels
        )));
    }
    let want = wanted.resolution;
    let covers = |m: &&&Mode| m.width >= want.width && m.height >= want.height;
    let size = usable
        .iter()
        .filter(covers)
        .min_by_key(|m| area(m))
        .or_else(|| usable.iter().max_by_key(|m| area(m)))
        .map(|m| (m.width, m.height))
        .ok_or_else(|| fail("no usable mode".into()))?;
    let same_size: Vec<&Mode> = usable
        .into_iter()
        .filter(|m| (m.width, m.height) == size)
        .collect();
    let fps = same_size
        .iter()
        .map(|m| m.fps)
        .filter(|&f| f >= wanted.fps)
        .min()
        .or_else(|| same_size.iter().map(|m| m.fps).max())
        .unwrap_or(0);
    same_size
        .into_iter()
        .filter(|m| m.fps == fps)
        .min_by_key(|m| m.format)
        .copied()
        .ok_or_else(|| fail("no usable mode".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(width: u32, height: u32, format: PixelFormat, fps: u32) -> Mode {
        Mode {
            width,
            height,
            format,
            fps,
        }
    }

    fn wanted(width: u32, height: u32, fps: u32) -> Wanted {
        Wanted {
            resolution: Resolution { width, height },
            fps,
            max_pixels: 25_000_000,
        }
    }

    /// A typical UVC webcam: MJPEG at every size, YUYV slower at large sizes.
    fn webcam() -> Vec<Mode> {
        use PixelFormat::*;
        vec![
            mode(1920, 1080, Yuyv, 5),
            mode(1920, 1080, Mjpeg, 30),
            mode(1280, 720, Yuyv, 10),
            mode(1280, 720, Mjpeg, 30),
            mode(640, 480, Yuyv, 30),
            mode(640, 480, Mjpeg, 30),
            mode(640, 480, Mjpeg, 15),
            mode(160, 120, Mjpeg, 30),
        ]
    }

    #[test]
    fn the_wanted_mode_is_taken_when_offered_in_the_preferred_format() {
        let m = negotiate(&webcam(), &wanted(640, 480, 30)).unwrap();
        assert_eq!(m, mode(640, 480, PixelFormat::Mjpeg, 30));
        let m = negotiate(&webcam(), &wanted(640, 480, 15)).unwrap();
        assert_eq!(m, mode(640, 480, PixelFormat::Mjpeg, 15));
    }

    #[test]
    fn otherwise_the_next_larger_resolution_then_the_next_faster_rate() {
        let m = negotiate(&webcam(), &wanted(800, 600, 20)).unwrap();
        assert_eq!(m, mode(1280, 720, PixelFormat::Mjpeg, 30));
        // Nothing as large: the largest there is; nothing as fast: the fastest.
        let m = negotiate(&webcam(), &wanted(4000, 3000, 60)).unwrap();
        assert_eq!(m, mode(1920, 1080, PixelFormat::Mjpeg, 30));
        // Grey only when nothing else is offered at that size.
        let grey = [mode(640, 480, PixelFormat::Grey, 30)];
        let m = negotiate(&grey, &wanted(640, 480, 30)).unwrap();
        assert_eq!(m.format, PixelFormat::Grey);
    }

    #[test]
    fn modes_too_small_or_beyond_the_pixel_limit_are_never_chosen() {
        let m = negotiate(&webcam(), &wanted(100, 100, 30)).unwrap();
        assert_eq!((m.width, m.height), (640, 480));
        let limited = Wanted {
            max_pixels: 500_000,
            ..wanted(1920, 1080, 30)
        };
        let m = negotiate(&webcam(), &limited).unwrap();
        assert_eq!((m.width, m.height), (640, 480));
        let tiny = [mode(160, 120, PixelFormat::Mjpeg, 30)];
        let err = negotiate(&tiny, &wanted(640, 480, 30)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no mode between 320x240 and 25000000 pixels; the camera offers: 160x120 MJPEG 30 fps"
        );
        let err = negotiate(&[], &wanted(640, 480, 30)).unwrap_err();
        assert!(
            err.to_string().ends_with("the camera offers no mode"),
            "{err}"
        );
    }

    #[test]
    fn resolutions_parse_as_width_x_height() {
        let r: Resolution = "640x480".parse().unwrap();
        assert_eq!((r.width, r.height), (640, 480));
        assert_eq!(r.to_string(), "640x480");
        assert_eq!("1280X720".parse::<Resolution>().unwrap().height, 720);
        for bad in ["640", "x480", "0x480", "axb", ""] {
            assert!(bad.parse::<Resolution>().is_err(), "{bad}");
        }
    }
}
