//! Frames from files, for tests, demos and replays: one image, a directory of images (in
//! name order), or an MJPEG stream file (JPEGs back to back, as cameras and
//! `ffmpeg -f mjpeg` write them). Files are read one frame at a time.

use super::pace::Pace;
use super::{Frame, FrameSource, SourceError};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Largest frame read from a file.
pub const MAX_FRAME_BYTES: usize = 32 * 1024 * 1024;

/// Extensions of the image files a directory source plays.
const IMAGE_EXTENSIONS: [&str; 13] = [
    "jpg", "jpeg", "png", "bmp", "webp", "tif", "tiff", "gif", "qoi", "tga", "pnm", "ppm", "pgm",
];

/// Extensions of MJPEG stream files.
const STREAM_EXTENSIONS: [&str; 2] = ["mjpeg", "mjpg"];

/// How a file source plays.
#[derive(Clone, Copy, Debug, Default)]
pub struct Playback {
    /// Frames per second; `None` delivers them as fast as they are asked for.
    pub fps: Option<f64>,
    /// Start again from the first frame after the last.
    pub looping: bool,
}

pub struct FileSource {
    path: PathBuf,
    frames: Frames,
    playback: Playback,
    pace: Option<Pace>,
    /// Frames delivered since the start (or the last restart).
    delivered: u64,
}

enum Frames {
    Images { files: Vec<PathBuf>, next: usize },
    Stream(Option<BufReader<File>>),
}

impl FileSource {
    /// A source over `path`: a directory of images, an `.mjpeg`/`.mjpg` stream, or one
    /// image.
    pub fn open(path: &Path, playback: Playback) -> Result<FileSource, SourceError> {
        let error = |e: io::Error| SourceError(format!("{}: {e}", path.display()));
        let frames = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(error)?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| has_extension(p, &IMAGE_EXTENSIONS))
                .collect();
            if files.is_empty() {
                return Err(SourceError(format!(
                    "{}: no image files ({})",
                    path.display(),
                    IMAGE_EXTENSIONS.join(", ")
                )));
            }
            files.sort();
            Frames::Images { files, next: 0 }
        } else if has_extension(path, &STREAM_EXTENSIONS) {
            Frames::Stream(Some(BufReader::new(File::open(path).map_err(error)?)))
        } else {
            File::open(path).map_err(error)?;
            Frames::Images {
                files: vec![path.to_path_buf()],
                next: 0,
            }
        };
        if let Some(fps) = playback.fps
            && !(fps.is_finite() && fps > 0.0)
        {
            return Err(SourceError(format!(
                "frame rate must be positive, not {fps}"
            )));
        }
        Ok(FileSource {
            path: path.to_path_buf(),
            frames,
            playback,
            pace: playback.fps.map(Pace::new),
            delivered: 0,
        })
    }

    /// The next frame's bytes, without pacing; from the start again when looping.
    fn read(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        if let Some(bytes) = self.read_once()? {
            return Ok(Some(bytes));
        }
        // A looping source that never delivered a frame would spin: it ends instead.
        if !self.playback.looping || self.delivered == 0 {
            return Ok(None);
        }
        self.delivered = 0;
        self.frames = match &self.frames {
            Frames::Images { files, .. } => Frames::Images {
                files: files.clone(),
                next: 0,
            },
            Frames::Stream(_) => Frames::Stream(Some(BufReader::new(
                File::open(&self.path).map_err(|e| self.error(e))?,
            ))),
        };
        self.read_once()
    }

    fn read_once(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        match &mut self.frames {
            Frames::Images { files, next } => {
                let Some(file) = files.get(*next) else {
                    return Ok(None);
                };
                *next += 1;
                read_file(file)
                    .map(Some)
                    .map_err(|e| SourceError(format!("{}: {e}", file.display())))
            }
            Frames::Stream(reader) => {
                let Some(r) = reader else {
                    return Ok(None);
                };
                let jpeg = read_jpeg(r, MAX_FRAME_BYTES);
                if !matches!(jpeg, Ok(Some(_))) {
                    *reader = None;
                }
                jpeg.map_err(|e| self.error(e))
            }
        }
    }

    fn error(&self, e: io::Error) -> SourceError {
        SourceError(format!("{}: {e}", self.path.display()))
    }
}

impl FrameSource for FileSource {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        let Some(bytes) = self.read()? else {
            return Ok(None);
        };
        self.delivered += 1;
        if let Some(pace) = &mut self.pace {
            pace.wait();
        }
        Ok(Some(Frame::Encoded(bytes)))
    }

    fn describe(&self) -> String {
        let what = match &self.frames {
            Frames::Images { files, .. } if files.len() == 1 => "image",
            Frames::Images { .. } => "images",
            Frames::Stream(_) => "MJPEG stream",
        };
        let rate = self
            .playback
            .fps
            .map_or("unpaced".to_string(), |f| format!("{f} fps"));
        let looping = if self.playback.looping {
            ", looping"
        } else {
            ""
        };
        format!("{what} {} ({rate}{looping})", self.path.display())
    }
}

fn has_extension(path: &Path, extensions: &[&str]) -> bool {
    path.is_file()
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| extensions.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)?
        .take(MAX_FRAME_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

fn too_large() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("a frame is larger than {MAX_FRAME_BYTES} bytes"),
    )
}

/// Reads the next JPEG (SOI to EOI) from an MJPEG stream, skipping anything between
/// images; `None` at the end of the stream. Walks the markers, so a byte pair that looks
/// like a marker inside a segment or in entropy-coded data never splits a frame.
pub fn read_jpeg(r: &mut impl BufRead, max: usize) -> io::Result<Option<Vec<u8>>> {
    // Find SOI: FF D8.
    let mut previous = 0u8;
    loop {
        let Some(byte) = next_byte(r)? else {
            return Ok(None);
        };
        if previous == 0xFF && byte == 0xD8 {
            break;
        }
        previous = byte;
    }
    let mut jpeg = vec![0xFF, 0xD8];
    let truncated = || io::Error::new(io::ErrorKind::UnexpectedEof, "truncated JPEG frame");
    let push = |jpeg: &mut Vec<u8>, bytes: &[u8]| {
        jpeg.extend_from_slice(bytes);
        if jpeg.len() > max {
            Err(too_large())
        } else {
            Ok(())
        }
    };
    let mut marker = None;
    loop {
        let m = match marker.take() {
            Some(m) => m,
            None => {
                // A marker: FF (any fill FFs) then its code.
                if next_byte(r)?.ok_or_else(truncated)? != 0xFF {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "malformed JPEG frame: a marker was expected",
                    ));
                }
                let mut code = 0xFF;
                while code == 0xFF {
                    code = next_byte(r)?.ok_or_else(truncated)?;
                }
                code
            }
        };
        push(&mut jpeg, &[0xFF, m])?;
        match m {
            0xD9 => return Ok(Some(jpeg)),
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let mut len = [0u8; 2];
        r.read_exact(&mut len).map_err(|_| truncated())?;
        push(&mut jpeg, &len)?;
        let len = usize::from(u16::from_be_bytes(len)).saturating_sub(2);
        let start = jpeg.len();
        jpeg.resize(start + len, 0);
        if jpeg.len() > max {
            return Err(too_large());
        }
        r.read_exact(&mut jpeg[start..]).map_err(|_| truncated())?;
        if m == 0xDA {
            // Entropy-coded data runs to the next marker that is not a stuffed FF 00 or
            // a restart marker.
            loop {
                let byte = next_byte(r)?.ok_or_else(truncated)?;
                if byte != 0xFF {
                    push(&mut jpeg, &[byte])?;
                    continue;
                }
                let mut code = 0xFF;
                while code == 0xFF {
                    code = next_byte(r)?.ok_or_else(truncated)?;
                }
                match code {
                    0x00 | 0xD0..=0xD7 => push(&mut jpeg, &[byte, code])?,
                    _ => {
                        marker = Some(code);
                        break;
                    }
                }
            }
        }
    }
}

fn next_byte(r: &mut impl BufRead) -> io::Result<Option<u8>> {
    let byte = r.fill_buf()?.first().copied();
    if byte.is_some() {
        r.consume(1);
    }
    Ok(byte)
}
