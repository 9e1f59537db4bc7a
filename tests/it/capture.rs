//! Frames to one enrolment: file sources, the frame slot, assessment and the choice of
//! the best frame, on the fixture photos.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::{self, enroller, fixture};
use image::{ImageFormat, RgbImage};
use recognize_agent::capture::assess::{Guidance, assess};
use recognize_agent::capture::select::Window;
use recognize_agent::capture::{CaptureError, CaptureSettings, best_frame};
use recognize_agent::contract::Scenario;
use recognize_agent::frames::files::{FileSource, Playback, read_jpeg};
use recognize_agent::frames::latest::{Latest, Taken};
use recognize_agent::frames::{Frame, FrameSource, Spec};
use recognize_agent::protect::states::ClientType;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("capture")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn decode(name: &str) -> RgbImage {
    image::load_from_memory(&fixture(name)).unwrap().to_rgb8()
}

fn jpeg(image: &RgbImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

fn bytes(frame: Frame) -> Vec<u8> {
    match frame {
        Frame::Encoded(b) => b,
        #[allow(unreachable_patterns)]
        _ => panic!("a file source gives encoded frames"),
    }
}

fn all_frames(source: &mut FileSource) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| source.next_frame().unwrap().map(bytes)).collect()
}

/// A directory of frames, named so that they play in the order given.
fn sequence(name: &str, frames: &[RgbImage]) -> PathBuf {
    let dir = scratch(name);
    for (i, f) in frames.iter().enumerate() {
        std::fs::write(dir.join(format!("{i:03}.jpg")), jpeg(f)).unwrap();
    }
    dir
}

fn settings() -> CaptureSettings {
    CaptureSettings {
        rate: 1000.0,
        window: Window {
            settle: Duration::from_secs(600),
            give_up: Duration::from_secs(600),
        },
        max_pixels: 25_000_000,
    }
}

#[test]
fn an_mjpeg_stream_splits_into_its_jpegs_whatever_lies_between() {
    let frames = [
        "clean/obama.jpg",
        "clean/biden.jpg",
        "exif/obama_orientation6.jpg",
    ]
    .map(fixture);
    let mut stream = b"--boundary\r\nContent-Type: image/jpeg\r\n\r\n".to_vec();
    for f in &frames {
        stream.extend_from_slice(f);
        stream.extend_from_slice(b"\r\n--boundary\r\n\xff\x00junk\r\n");
    }
    let mut r = Cursor::new(&stream);
    for f in &frames {
        assert_eq!(read_jpeg(&mut r, 1 << 24).unwrap().as_deref(), Some(&f[..]));
    }
    assert_eq!(read_jpeg(&mut r, 1 << 24).unwrap(), None);

    // Too large or cut short: an error, never a partial frame.
    let e = read_jpeg(&mut Cursor::new(&frames[0]), 1000).unwrap_err();
    assert!(e.to_string().contains("larger than"), "{e}");
    let cut = &frames[0][..frames[0].len() / 2];
    assert!(read_jpeg(&mut Cursor::new(cut), 1 << 24).is_err());

    // As a file source, once or looping.
    let file = scratch("stream").join("three.mjpeg");
    std::fs::write(&file, &stream).unwrap();
    let mut once = FileSource::open(&file, Playback::default()).unwrap();
    assert_eq!(all_frames(&mut once), frames.to_vec());
    let looping = Playback {
        looping: true,
        ..Playback::default()
    };
    let mut source = FileSource::open(&file, looping).unwrap();
    let seven: Vec<_> = (0..7)
        .map(|_| bytes(source.next_frame().unwrap().unwrap()))
        .collect();
    assert_eq!(seven[3], frames[0]);
    assert_eq!(seven[6], frames[0]);
}

#[test]
fn directories_play_their_images_in_name_order_and_bad_paths_say_why() {
    let dir = scratch("dir");
    std::fs::write(dir.join("b.jpg"), fixture("clean/biden.jpg")).unwrap();
    std::fs::write(dir.join("a.png"), fixture("grey/camera.jpg")).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a frame").unwrap();
    let mut source = FileSource::open(&dir, Playback::default()).unwrap();
    assert_eq!(
        all_frames(&mut source),
        vec![fixture("grey/camera.jpg"), fixture("clean/biden.jpg")]
    );
    assert!(
        source.describe().contains("images"),
        "{}",
        source.describe()
    );

    let empty = scratch("empty");
    let e = FileSource::open(&empty, Playback::default()).err().unwrap();
    assert!(e.to_string().contains("no image files"), "{e}");
    let e = FileSource::open(&empty.join("missing.jpg"), Playback::default())
        .err()
        .unwrap();
    assert!(e.to_string().contains("missing.jpg"), "{e}");
    let bad_rate = Playback {
        fps: Some(0.0),
        looping: false,
    };
    assert!(FileSource::open(&dir, bad_rate).is_err());
}

#[test]
fn the_slot_keeps_the_newest_frame_unless_lossless() {
    let frame = |n: u8| Frame::Encoded(vec![n]);
    let lossy = Latest::new(false);
    for n in 1..=3 {
        assert!(lossy.put(frame(n)));
    }
    match lossy.take(Duration::ZERO) {
        Taken::Frame(seq, f) => assert_eq!((seq, bytes(f)), (3, vec![3])),
        _ => panic!("a frame was put"),
    }
    assert_eq!(lossy.dropped(), 2);
    assert!(matches!(lossy.take(Duration::ZERO), Taken::Timeout));
    lossy.end(None);
    assert!(matches!(lossy.take(Duration::ZERO), Taken::Ended(None)));

    // Lossless: the source waits for each frame to be taken.
    let dir = sequence(
        "lossless",
        &[decode("clean/obama.jpg"), decode("clean/biden.jpg")],
    );
    let spec = Spec::Files {
        path: dir,
        playback: Playback::default(),
    };
    let slot = spec.start().unwrap();
    let mut seen = Vec::new();
    while let Taken::Frame(seq, _) = slot.take(Duration::from_secs(30)) {
        seen.push(seq);
    }
    assert_eq!(seen, [1, 2]);
    assert_eq!(slot.dropped(), 0);
    slot.close();
    assert!(!slot.put(frame(9)), "a closed slot refuses frames");
}

#[test]
fn guidance_follows_the_filters_then_pose_and_sharpness() {
    let policy = enroller().policy(Scenario::Selfie);
    let models = &enroller().models;
    for (file, expected) in [
        ("missing/brick.jpg", Guidance::StepIn),
        ("small/obama.jpg", Guidance::MoveCloser),
        ("multiple/obama_obama2.jpg", Guidance::OnePerson),
        ("occluded/astronaut_mask_black.jpg", Guidance::UncoverFace),
        ("grey/obama.jpg", Guidance::MoreLight),
        ("clean/obama.jpg", Guidance::Ready),
        ("clean/obama2.jpg", Guidance::Ready),
        ("partial/obama_left.jpg", Guidance::MoveToCentre),
        ("partial/biden_top.jpg", Guidance::MoveToCentre),
    ] {
        let a = assess(models, &decode(file), policy).unwrap();
        assert_eq!(
            a.guidance, expected,
            "{file}: {:?} {:?}",
            a.filters, a.quality
        );
        assert_eq!(a.acceptable(), expected == Guidance::Ready, "{file}");
    }

    // Blur: the same frame, acceptable sharp, "hold still" blurred.
    let sharp = decode("clean/obama2.jpg");
    let blurred = image::imageops::blur(&sharp, 2.5);
    let a = assess(models, &blurred, policy).unwrap();
    assert_eq!(a.guidance, Guidance::HoldStill, "{:?}", a.quality);
    assert_eq!(a.score(policy), 0.0);
}

#[test]
fn the_sharpest_acceptable_frame_of_the_window_is_chosen() {
    let sharp = decode("clean/obama.jpg");
    let frames = [
        decode("missing/brick.jpg"),
        image::imageops::blur(&sharp, 6.0),
        decode("small/obama.jpg"),
        sharp.clone(),
        image::imageops::blur(&sharp, 1.5),
    ];
    let spec = Spec::Files {
        path: sequence("best", &frames),
        playback: Playback::default(),
    };
    let slot = spec.start().unwrap();
    let (mut guidance, mut scores) = (Vec::new(), Vec::new());
    let policy = enroller().policy(Scenario::Selfie);
    let chosen = best_frame(&slot, &enroller().models, policy, &settings(), |c| {
        guidance.push(c.assessment.guidance);
        scores.push(c.score);
    })
    .unwrap();
    assert_eq!(
        chosen.seq, 4,
        "the sharp frame, not the slightly blurred one after it"
    );
    assert!(scores[3] > scores[4] && scores[4] > 0.0, "{scores:?}");
    assert_eq!(
        guidance[..4],
        [
            Guidance::StepIn,
            Guidance::HoldStill,
            Guidance::MoveCloser,
            Guidance::Ready
        ]
    );
    assert_eq!(guidance.len(), 5);
    assert_eq!(chosen.image.dimensions(), sharp.dimensions());

    // The chosen frame enrols, and another photo of him matches its states.
    let outcome = enroller()
        .enroll_analysis(
            &chosen.image,
            chosen.assessment.analysis,
            Scenario::Selfie,
            ClientType::Backup,
        )
        .unwrap();
    let recognize_agent::enroll::Outcome::Enrolled(states) = outcome else {
        panic!("the chosen frame enrols");
    };
    let other = enroller()
        .models
        .analyse(&decode("clean/obama_bright.jpg"))
        .unwrap();
    let embedding = other.primary.unwrap().embedding;
    let score = common::match_score(&states.client_state, &states.server_state, &embedding);
    assert!(score >= common::threshold(), "{score}");
}

#[test]
fn without_an_acceptable_frame_capture_says_what_was_missing() {
    let spec = Spec::Files {
        path: sequence(
            "none",
            &[decode("missing/coffee.jpg"), decode("small/biden.jpg")],
        ),
        playback: Playback::default(),
    };
    let slot = spec.start().unwrap();
    let policy = enroller().policy(Scenario::Selfie);
    match best_frame(&slot, &enroller().models, policy, &settings(), |_| ()) {
        Err(CaptureError::NoGoodFrame(none)) => {
            assert_eq!((none.seen, none.last), (2, Some(Guidance::MoveCloser)));
            assert!(none.to_string().contains("Move closer"), "{none}");
        }
        other => panic!("{other:?}"),
    }

    // Frames that are not images, and sources that cannot open: source errors.
    let junk = scratch("junk");
    std::fs::write(junk.join("0.jpg"), b"not a jpeg").unwrap();
    for path in [junk.clone(), junk.join("nothing-here")] {
        let spec = Spec::Files {
            path,
            playback: Playback::default(),
        };
        let slot = spec.start().unwrap();
        let r = best_frame(&slot, &enroller().models, policy, &settings(), |_| ());
        assert!(matches!(r, Err(CaptureError::Source(_))), "{r:?}");
    }
}
