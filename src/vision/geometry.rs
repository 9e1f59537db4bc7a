//! Points, boxes and the similarity transforms used to align faces.

/// A point in image pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

impl Point {
    pub const fn new(x: f32, y: f32) -> Point {
        Point { x, y }
    }

    pub fn distance(self, other: Point) -> f32 {
        (self.x - other.x).hypot(self.y - other.y)
    }

    pub fn midpoint(self, other: Point) -> Point {
        Point::new((self.x + other.x) / 2.0, (self.y + other.y) / 2.0)
    }
}

/// An axis-aligned box, `x0 <= x1`, `y0 <= y1`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rect {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

impl Rect {
    /// The whole of a `width`×`height` image.
    pub fn of_image(width: u32, height: u32) -> Rect {
        Rect {
            x0: 0.0,
            y0: 0.0,
            x1: width as f32,
            y1: height as f32,
        }
    }

    pub fn width(&self) -> f32 {
        self.x1 - self.x0
    }

    pub fn height(&self) -> f32 {
        self.y1 - self.y0
    }

    pub fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }

    pub fn intersection(&self, o: &Rect) -> Rect {
        Rect {
            x0: self.x0.max(o.x0),
            y0: self.y0.max(o.y0),
            x1: self.x1.min(o.x1),
            y1: self.y1.min(o.y1),
        }
    }

    /// Intersection over union.
    pub fn iou(&self, o: &Rect) -> f32 {
        let inter = self.intersection(o).area();
        let union = self.area() + o.area() - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }
}

/// `p ↦ [a −b; b a]·p + t`: rotation, uniform scale and translation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Similarity {
    pub a: f32,
    pub b: f32,
    pub tx: f32,
    pub ty: f32,
}

impl Similarity {
    /// The least-squares similarity taking each `from[i]` to `to[i]`.
    pub fn fit(from: &[Point], to: &[Point]) -> Similarity {
        let n = from.len().min(to.len()) as f32;
        let mean = |ps: &[Point]| {
            let (sx, sy) = ps.iter().fold((0.0, 0.0), |(x, y), p| (x + p.x, y + p.y));
            Point::new(sx / n, sy / n)
        };
        let (mf, mt) = (mean(from), mean(to));
        let (mut num_a, mut num_b, mut den) = (0.0, 0.0, 0.0);
        for (p, q) in from.iter().zip(to) {
            let (px, py, qx, qy) = (p.x - mf.x, p.y - mf.y, q.x - mt.x, q.y - mt.y);
            num_a += px * qx + py * qy;
            num_b += px * qy - py * qx;
            den += px * px + py * py;
        }
        let (a, b) = if den > 0.0 {
            (num_a / den, num_b / den)
        } else {
            (1.0, 0.0)
        };
        Similarity {
            a,
            b,
            tx: mt.x - (a * mf.x - b * mf.y),
            ty: mt.y - (b * mf.x + a * mf.y),
        }
    }

    pub fn apply(&self, p: Point) -> Point {
        Point::new(
            self.a * p.x - self.b * p.y + self.tx,
            self.b * p.x + self.a * p.y + self.ty,
        )
    }

    /// The scale factor (length ratio) of the transform.
    pub fn scale(&self) -> f32 {
        self.a.hypot(self.b)
    }

    pub fn inverse(&self) -> Similarity {
        let d = self.a * self.a + self.b * self.b;
        let (a, b) = (self.a / d, -self.b / d);
        Similarity {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_a_known_similarity() {
        let t = Similarity {
            a: 0.8,
            b: 0.3,
            tx: 5.0,
            ty: -2.0,
        };
        let from = [
            Point::new(0.0, 0.0),
            Point::new(10.0, 0.0),
            Point::new(3.0, 7.0),
            Point::new(-4.0, 2.0),
        ];
        let to: Vec<Point> = from.iter().map(|&p| t.apply(p)).collect();
        let fit = Similarity::fit(&from, &to);
        for (x, y) in [(fit.a, t.a), (fit.b, t.b), (fit.tx, t.tx), (fit.ty, t.ty)] {
            assert!((x - y).abs() < 1e-4, "{fit:?} != {t:?}");
        }
        let back = fit.inverse().apply(fit.apply(Point::new(1.5, -2.5)));
        assert!(back.distance(Point::new(1.5, -2.5)) < 1e-4);
    }

    #[test]
    fn iou_of_boxes() {
        let a = Rect {
            x0: 0.0,
            y0: 0.0,
            x1: 2.0,
            y1: 2.0,
        };
        let b = Rect {
            x0: 1.0,
            y0: 0.0,
            x1: 3.0,
            y1: 2.0,
        };
        assert!((a.iou(&b) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(
            a.iou(&Rect {
                x0: 5.0,
                y0: 5.0,
                x1: 6.0,
                y1: 6.0
            }),
            0.0
        );
    }
}
