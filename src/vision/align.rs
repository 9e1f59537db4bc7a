//! Face alignment: warp the face onto the standard 112×112 template from its keypoints.

use image::{Rgb, RgbImage};

use super::detect::Face;
use super::geometry::{Point, Similarity};

/// Side of the aligned face crop.
pub const ALIGNED: u32 = 112;

/// Where the image-left eye, image-right eye, nose tip and mouth centre go in the
/// 112×112 crop (the five-point ArcFace template with the mouth corners averaged).
pub const TEMPLATE: [Point; 4] = [
    Point::new(38.2946, 51.6963),
    Point::new(73.5318, 51.5014),
    Point::new(56.0252, 71.7366),
    Point::new(56.1396, 92.2848),
];

/// The transform from image pixels to template pixels for `face`.
pub fn to_template(face: &Face) -> Similarity {
    let (e0, e1, nose) = (face.right_eye(), face.left_eye(), face.nose());
    // Which eye is on the image-left of the face, whatever its rotation: the one to the
    // right of the "down" vector (eyes' midpoint → nose) in image coordinates.
    let mid = e0.midpoint(e1);
    let down = Point::new(nose.x - mid.x, nose.y - mid.y);
    let cross = down.x * (e0.y - mid.y) - down.y * (e0.x - mid.x);
    let (left, right) = if cross > 0.0 { (e0, e1) } else { (e1, e0) };
    Similarity::fit(&[left, right, nose, face.mouth()], &TEMPLATE)
}

/// Warps `face` into a 112×112 crop. Bilinear sampling, averaged over the source
/// footprint when the face is larger than the crop (no aliasing on big selfies).
pub fn align(image: &RgbImage, face: &Face) -> RgbImage {
    let forward = to_template(face);
    let back = forward.inverse();
    let step = (1.0 / forward.scale()).clamp(1.0, 4.0);
    let taps = step.ceil() as u32;
    RgbImage::from_fn(ALIGNED, ALIGNED, |u, v| {
        let mut sum = [0.0f32; 3];
        for j in 0..taps {
            for i in 0..taps {
                let du = (i as f32 + 0.5) / taps as f32;
                let dv = (j as f32 + 0.5) / taps as f32;
                let p = back.apply(Point::new(u as f32 + du, v as f32 + dv));
                let s = bilinear(image, p.x - 0.5, p.y - 0.5);
                for c in 0..3 {
                    sum[c] += s[c];
                }
            }
        }
        let n = (taps * taps) as f32;
        Rgb(sum.map(|s| (s / n).round().clamp(0.0, 255.0) as u8))
    })
}

/// Bilinear sample at pixel-centre coordinates; black outside the image.
fn bilinear(image: &RgbImage, x: f32, y: f32) -> [f32; 3] {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let px = |xi: f32, yi: f32| -> [f32; 3] {
        if xi < 0.0 || yi < 0.0 || xi >= image.width() as f32 || yi >= image.height() as f32 {
            return [0.0; 3];
        }
        image.get_pixel(xi as u32, yi as u32).0.map(f32::from)
    };
    let (a, b, c, d) = (
        px(x0, y0),
        px(x0 + 1.0, y0),
        px(x0, y0 + 1.0),
        px(x0 + 1.0, y0 + 1.0),
    );
    std::array::from_fn(|k| {
        let top = a[k] + (b[k] - a[k]) * fx;
        let bottom = c[k] + (d[k] - c[k]) * fx;
        top + (bottom - top) * fy
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::geometry::Rect;

    fn face_at(points: [Point; 4]) -> Face {
        let [a, b, n, m] = points;
        Face {
            score: 1.0,
            bbox: Rect::default(),
            keypoints: [a, b, n, m, a, b],
        }
    }

    #[test]
    fn template_face_maps_to_itself_whichever_eye_comes_first() {
        for face in [
            face_at(TEMPLATE),
            face_at([TEMPLATE[1], TEMPLATE[0], TEMPLATE[2], TEMPLATE[3]]),
        ] {
            let t = to_template(&face);
            assert!((t.a - 1.0).abs() < 1e-4 && t.b.abs() < 1e-4, "{t:?}");
        }
    }

    #[test]
    fn upside_down_face_is_rotated_upright() {
        // The template turned 180° about (56, 56).
        let turned = TEMPLATE.map(|p| Point::new(112.0 - p.x, 112.0 - p.y));
        let t = to_template(&face_at(turned));
        assert!((t.a + 1.0).abs() < 1e-3 && t.b.abs() < 1e-3, "{t:?}");
        // A marker near the turned face's nose lands near the template's nose.
        let nose = t.apply(turned[2]);
        assert!(nose.distance(TEMPLATE[2]) < 2.0);
    }
}
