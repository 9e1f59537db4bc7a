//! Sharpness of the aligned face: how much fine detail it holds for its contrast.

use image::RgbImage;

/// Variance of the 4-neighbour Laplacian of the grey image over the variance of the
/// grey image itself, so that light and contrast do not count as sharpness.
pub fn measure(face: &RgbImage) -> f32 {
    let (w, h) = face.dimensions();
    let grey: Vec<f32> = face
        .pixels()
        .map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]))
        .collect();
    let at = |x: u32, y: u32| grey[(y * w + x) as usize];
    let mut laplacian = Moments::default();
    let mut level = Moments::default();
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            level.add(at(x, y));
            laplacian
                .add(at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1) - 4.0 * at(x, y));
        }
    }
    (laplacian.variance() / level.variance().max(1.0)) as f32
}

/// Running sums for a variance.
#[derive(Default)]
struct Moments {
    n: f64,
    sum: f64,
    sum_sq: f64,
}

impl Moments {
    fn add(&mut self, v: f32) {
        let v = f64::from(v);
        self.n += 1.0;
        self.sum += v;
        self.sum_sq += v * v;
    }

    fn variance(&self) -> f64 {
        if self.n == 0.0 {
            return 0.0;
        }
        let mean = self.sum / self.n;
        self.sum_sq / self.n - mean * mean
    }
}
