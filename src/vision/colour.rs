//! Colourfulness of an image (the `imageBlackAndWhite` measurement).

use image::RgbImage;

/// Hasler & Süsstrunk's colourfulness metric on a subsample of at most ~64k pixels:
/// 0 for any image whose channels are equal, ~15 for muted colour photos, >40 for vivid ones.
pub fn colourfulness(image: &RgbImage) -> f32 {
    let pixels = u64::from(image.width()) * u64::from(image.height());
    let stride = ((pixels / 65_536) as f64).sqrt().max(1.0) as u32;
    let (mut n, mut s_rg, mut s_yb, mut q_rg, mut q_yb) = (0f64, 0f64, 0f64, 0f64, 0f64);
    for y in (0..image.height()).step_by(stride as usize) {
        for x in (0..image.width()).step_by(stride as usize) {
            let [r, g, b] = image.get_pixel(x, y).0.map(f64::from);
            let rg = r - g;
            let yb = 0.5 * (r + g) - b;
            n += 1.0;
            s_rg += rg;
            s_yb += yb;
            q_rg += rg * rg;
            q_yb += yb * yb;
        }
    }
    if n == 0.0 {
        return 0.0;
    }
    let (m_rg, m_yb) = (s_rg / n, s_yb / n);
    let var_rg = (q_rg / n - m_rg * m_rg).max(0.0);
    let var_yb = (q_yb / n - m_yb * m_yb).max(0.0);
    ((var_rg + var_yb).sqrt() + 0.3 * (m_rg * m_rg + m_yb * m_yb).sqrt()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn grey_is_zero_and_colour_is_not() {
        let grey = RgbImage::from_fn(50, 40, |x, y| {
            let v = ((x * 5 + y * 3) % 256) as u8;
            Rgb([v, v, v])
        });
        assert_eq!(colourfulness(&grey), 0.0);
        let colour = RgbImage::from_fn(50, 40, |x, _| {
            if x % 2 == 0 {
                Rgb([200, 40, 40])
            } else {
                Rgb([40, 40, 200])
            }
        });
        assert!(colourfulness(&colour) > 50.0);
    }
}
