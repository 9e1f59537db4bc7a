//! BlazeFace face detection: letterboxing, anchor decoding, weighted NMS, tiling for small faces.

use std::path::Path;

use image::RgbImage;
use image::imageops::{self, FilterType};
use tract_nnef::prelude::*;

use super::geometry::{Point, Rect};
use super::model::{self, Floats, Plan, Precision};

/// At most this many faces are kept per image (the strongest).
pub const MAX_FACES: usize = 32;

/// Margin added around the image, as a fraction of its longer side, before detection.
const EDGE_MARGIN: f32 = 0.1;

/// The wide pass's margin ([`Detector::detect_wide`]): the image shrunk to half the input.
const WIDE_MARGIN: f32 = 0.5;

/// The wide pass's minimum confidence: lower, since only a face the embedder confirms is
/// kept and the pass runs only when the others confirmed none.
const WIDE_SCORE_THRESHOLD: f32 = 0.3;

/// The wide pass keeps only faces at least this fraction of the frame's shorter side: it
/// is for faces that fill the frame, and at its lower confidence, small candidates are
/// more often textures than faces.
const WIDE_MIN_SIZE: f32 = 0.25;

/// Faces found in one image, strongest first; fixed capacity, no per-request heap growth.
pub type Faces = heapless::Vec<Face, MAX_FACES>;

/// One detected face, in image pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Face {
    /// Detector confidence in [0, 1].
    pub score: f32,
    /// The face box as the detector regresses it (may extend past the image).
    pub bbox: Rect,
    /// Right eye, left eye (of the person), nose tip, mouth centre, right ear, left ear.
    pub keypoints: [Point; 6],
}

/// As `{"score", "box": [x0, y0, x1, y1], "keypoints": [[x, y]; 6]}`, for the examples
/// that print what the detector found.
impl serde::Serialize for Face {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let b = &self.bbox;
        let mut face = s.serialize_struct("Face", 3)?;
        face.serialize_field("score", &self.score)?;
        face.serialize_field("box", &[b.x0, b.y0, b.x1, b.y1])?;
        face.serialize_field("keypoints", &self.keypoints.map(|p| [p.x, p.y]))?;
        face.end()
    }
}

impl Face {
    pub fn right_eye(&self) -> Point {
        self.keypoints[0]
    }
    pub fn left_eye(&self) -> Point {
        self.keypoints[1]
    }
    pub fn nose(&self) -> Point {
        self.keypoints[2]
    }
    pub fn mouth(&self) -> Point {
        self.keypoints[3]
    }

    /// Distance between the eye centres, the usual measure of face resolution.
    pub fn interocular(&self) -> f32 {
        self.right_eye().distance(self.left_eye())
    }

    /// Face size: the larger side of its box.
    pub fn size(&self) -> f32 {
        self.bbox.width().max(self.bbox.height())
    }

    /// Fraction of the face box outside a `width`×`height` image.
    pub fn outside_fraction(&self, width: u32, height: u32) -> f32 {
        let area = self.bbox.area();
        if area > 0.0 {
            1.0 - self
                .bbox
                .intersection(&Rect::of_image(width, height))
                .area()
                / area
        } else {
            1.0
        }
    }

    /// Size of the part of the face inside the image: its size times the fraction of its
    /// box inside, so a face cut by the border weighs less than a whole one.
    pub fn visible_size(&self, width: u32, height: u32) -> f32 {
        self.size() * (1.0 - self.outside_fraction(width, height))
    }
}

/// Detector settings.
#[derive(Clone, Copy, Debug)]
pub struct DetectorConfig {
    /// Minimum confidence of a face.
    pub score_threshold: f32,
    /// Boxes overlapping more than this (IoU) are merged.
    pub nms_iou: f32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        // Low enough for masked and small faces; non-faces are then rejected by the
        // embedder (see `vision::MIN_FACE_NORM`).
        DetectorConfig {
            score_threshold: 0.5,
            nms_iou: 0.3,
        }
    }
}

/// A BlazeFace model (256 "back" or 128 "front") with its anchors.
pub struct Detector {
    plan: Plan,
    size: u32,
    anchors: Vec<Point>,
    config: DetectorConfig,
}

impl Detector {
    /// Loads a BlazeFace model whose input is `size`×`size` (128 or 256).
    pub fn load(
        path: &Path,
        size: u32,
        precision: Precision,
        config: DetectorConfig,
    ) -> TractResult<Detector> {
        let plan = model::load(path, &[1, size as usize, size as usize, 3], &[], precision)?;
        // Two heads: a 16×16 grid with 2 anchors per cell, an 8×8 grid with 6.
        let mut anchors = Vec::with_capacity(896);
        for (grid, per_cell) in [(16u32, 2), (8, 6)] {
            for y in 0..grid {
                for x in 0..grid {
                    let centre = Point::new(
                        (x as f32 + 0.5) / grid as f32,
                        (y as f32 + 0.5) / grid as f32,
                    );
                    anchors.extend(std::iter::repeat_n(centre, per_cell));
                }
            }
        }
        Ok(Detector {
            plan,
            size,
            anchors,
            config,
        })
    }

    /// Finds faces in the whole of `image`.
    pub fn detect(&self, image: &RgbImage) -> TractResult<Faces> {
        let faces = self.detect_in(
            image,
            Rect::of_image(image.width(), image.height()),
            EDGE_MARGIN,
            self.config.score_threshold,
        )?;
        Ok(weighted_nms(faces, self.config.nms_iou))
    }

    /// A last pass for a frame where the others found no face: the whole image shrunk
    /// into the middle of the input, at a lower confidence, keeping large faces only.
    /// Finds faces that fill the frame (tight crops) or that a mask or dark glasses make
    /// less face-like.
    pub fn detect_wide(&self, image: &RgbImage) -> TractResult<Faces> {
        let threshold = WIDE_SCORE_THRESHOLD.min(self.config.score_threshold);
        let mut faces = self.detect_in(
            image,
            Rect::of_image(image.width(), image.height()),
            WIDE_MARGIN,
            threshold,
        )?;
        let shorter = image.width().min(image.height()) as f32;
        faces.retain(|f| f.size() >= WIDE_MIN_SIZE * shorter);
        Ok(weighted_nms(faces, self.config.nms_iou))
    }

    /// Searches overlapping tiles of a frame much larger than the model input, so that
    /// faces too small to be seen in the whole frame are found (and can be reported as
    /// too small rather than missing). Empty for frames that need no tiling.
    pub fn detect_tiled(&self, image: &RgbImage) -> TractResult<Faces> {
        let longest = image.width().max(image.height());
        let mut candidates = Vec::new();
        if longest > 2 * self.size {
            let side = (longest / 3)
                .max(2 * self.size)
                .min(image.width().min(image.height()));
            let step = (side * 3 / 4).max(1);
            for y in tile_starts(image.height(), side, step) {
                for x in tile_starts(image.width(), side, step) {
                    let tile = Rect {
                        x0: x as f32,
                        y0: y as f32,
                        x1: (x + side) as f32,
                        y1: (y + side) as f32,
                    };
                    let threshold = self.config.score_threshold;
                    candidates.extend(self.detect_in(image, tile, EDGE_MARGIN, threshold)?);
                }
            }
        }
        Ok(weighted_nms(candidates, self.config.nms_iou))
    }

    /// Runs the model on the `region` of `image`, letterboxed into the input square with
    /// `margin` (a fraction of the region's longer side) around it; keeps the candidates
    /// of at least `threshold` confidence.
    fn detect_in(
        &self,
        image: &RgbImage,
        region: Rect,
        margin: f32,
        threshold: f32,
    ) -> TractResult<Vec<Face>> {
        let (rx, ry) = (region.x0 as u32, region.y0 as u32);
        let (rw, rh) = (region.width() as u32, region.height() as u32);
        let n = self.size as usize;
        // A margin around the region lets the detector see faces cut by its edges.
        let scale = self.size as f32 / (rw.max(rh) as f32 * (1.0 + 2.0 * margin));
        let (sw, sh) = (
            ((rw as f32 * scale).round() as u32).clamp(1, self.size),
            ((rh as f32 * scale).round() as u32).clamp(1, self.size),
        );
        let view = imageops::crop_imm(image, rx, ry, rw, rh);
        let small = if scale < 0.5 {
            imageops::thumbnail(&*view, sw, sh)
        } else {
            imageops::resize(&*view, sw, sh, FilterType::Triangle)
        };
        let (pad_x, pad_y) = ((self.size - sw) / 2, (self.size - sh) / 2);
        let mut input = tract_ndarray::Array4::<f32>::from_elem((1, n, n, 3), 0.0);
        for (x, y, p) in small.enumerate_pixels() {
            for c in 0..3 {
                input[[0, (y + pad_y) as usize, (x + pad_x) as usize, c]] =
                    p.0[c] as f32 / 127.5 - 1.0;
            }
        }
        let out = self.plan.run(Tensor::from(input))?;
        let to_image = |px: f32, py: f32| {
            Point::new(
                (px - pad_x as f32) / scale + region.x0,
                (py - pad_y as f32) / scale + region.y0,
            )
        };
        let size = self.size as f32;
        let mut faces = Vec::new();
        let mut anchors = self.anchors.iter();
        for (scores, boxes) in [(&out[0], &out[2]), (&out[1], &out[3])] {
            let scores = scores.floats()?;
            let boxes = boxes.floats()?;
            for (logit, raw) in scores.iter().zip(boxes.chunks_exact(16)) {
                let anchor = anchors.next().copied().unwrap_or_default();
                let score = 1.0 / (1.0 + (-logit.clamp(-100.0, 100.0)).exp());
                if score < threshold {
                    continue;
                }
                let (cx, cy) = (anchor.x * size + raw[0], anchor.y * size + raw[1]);
                let (hw, hh) = (raw[2] / 2.0, raw[3] / 2.0);
                let (p0, p1) = (to_image(cx - hw, cy - hh), to_image(cx + hw, cy + hh));
                let mut keypoints = [Point::default(); 6];
                for (k, kp) in keypoints.iter_mut().enumerate() {
                    *kp = to_image(
                        anchor.x * size + raw[4 + 2 * k],
                        anchor.y * size + raw[5 + 2 * k],
                    );
                }
                faces.push(Face {
                    score,
                    bbox: Rect {
                        x0: p0.x,
                        y0: p0.y,
                        x1: p1.x,
                        y1: p1.y,
                    },
                    keypoints,
                });
            }
        }
        Ok(faces)
    }
}

fn tile_starts(length: u32, side: u32, step: u32) -> Vec<u32> {
    let last = length.saturating_sub(side);
    let mut starts: Vec<u32> = (0..=last).step_by(step as usize).collect();
    if starts.last() != Some(&last) {
        starts.push(last);
    }
    starts
}

/// MediaPipe's weighted non-maximum suppression: each cluster of overlapping boxes
/// becomes one face whose box and keypoints are the score-weighted mean of the cluster.
fn weighted_nms(mut candidates: Vec<Face>, iou: f32) -> Faces {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut faces = Faces::new();
    while let Some(best) = candidates.first().copied() {
        let (cluster, rest): (Vec<Face>, Vec<Face>) = candidates
            .into_iter()
            .partition(|f| f.bbox.iou(&best.bbox) > iou);
        candidates = rest;
        let total: f32 = cluster.iter().map(|f| f.score).sum();
        let mut merged = Face {
            score: best.score,
            bbox: Rect::default(),
            keypoints: [Point::default(); 6],
        };
        for f in &cluster {
            let w = f.score / total;
            merged.bbox.x0 += w * f.bbox.x0;
            merged.bbox.y0 += w * f.bbox.y0;
            merged.bbox.x1 += w * f.bbox.x1;
            merged.bbox.y1 += w * f.bbox.y1;
            for (m, k) in merged.keypoints.iter_mut().zip(&f.keypoints) {
                m.x += w * k.x;
                m.y += w * k.y;
            }
        }
        if faces.push(merged).is_err() {
            break;
        }
    }
    faces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(score: f32, x0: f32) -> Face {
        Face {
            score,
            bbox: Rect {
                x0,
                y0: 0.0,
                x1: x0 + 10.0,
                y1: 10.0,
            },
            keypoints: [Point::new(x0, 5.0); 6],
        }
    }

    #[test]
    fn nms_merges_overlaps_by_weight_and_keeps_separate_faces() {
        let faces = weighted_nms(vec![face(0.9, 0.0), face(0.6, 100.0), face(0.3, 2.0)], 0.3);
        assert_eq!(faces.len(), 2);
        assert_eq!(faces[0].score, 0.9);
        assert!(
            (faces[0].bbox.x0 - 0.5).abs() < 1e-5,
            "weighted mean of 0 and 2"
        );
        assert_eq!(faces[1].bbox.x0, 100.0);
    }

    #[test]
    fn tiles_cover_the_whole_length() {
        assert_eq!(tile_starts(1000, 512, 384), vec![0, 384, 488]);
        assert_eq!(tile_starts(512, 512, 384), vec![0]);
    }
}
