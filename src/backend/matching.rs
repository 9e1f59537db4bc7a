//! The backend's match: a device's template against the enrolled one, scored by their
//! cosine, accepted at a threshold set from a false-match target. Thresholds are the
//! impostor score quantiles that `scripts/accuracy` measures through the protected path
//! (docs/biometrics.md, *Accuracy*); configuration names the false-match rate, and the threshold
//! between two measured points is interpolated in log(FMR).

use crate::protect::rotation::Template;
use crate::protect::states::MODEL_ID;

/// The score of a probe against the enrolled template: both rotated by the enrolment's
/// `Q`, so the cosine of the faces' embeddings.
pub fn score(enrolled: &Template, probe: &Template) -> f32 {
    enrolled.cosine(probe)
}

/// (false-match rate, cosine threshold) for [`MODEL_ID`], most permissive first: the
/// impostor score quantiles of `faces-dev` (563,623 impostor pairs), to two decimals. Below
/// 1e-4 the set holds too few impostor pairs above the threshold (fewer than 56) to place
/// it, so no lower rate is offered.
const MEASURED: [(f64, f32); 3] = [(1e-2, 0.35), (1e-3, 0.46), (1e-4, 0.55)];

/// The default target: FIDO's biometric bar of at most 1 false accept in 10,000.
pub const DEFAULT_FMR: f64 = 1e-4;

/// The threshold for a target false-match rate within the measured range.
pub fn for_fmr(fmr: f64) -> Result<f32, String> {
    let (most, least) = (MEASURED[0].0, MEASURED[MEASURED.len() - 1].0);
    if !(least..=most).contains(&fmr) {
        return Err(format!(
            "{fmr} is outside the false-match rates measured for {MODEL_ID} ({least} to {most})"
        ));
    }
    let pair = MEASURED
        .windows(2)
        .find(|w| fmr <= w[0].0 && fmr >= w[1].0)
        .unwrap_or(&MEASURED[..2]);
    let ((f0, t0), (f1, t1)) = (pair[0], pair[1]);
    let at = (fmr.ln() - f0.ln()) / (f1.ln() - f0.ln());
    Ok(t0 + (t1 - t0) * at as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_follow_the_measured_points() {
        for (fmr, threshold) in MEASURED {
            assert!((for_fmr(fmr).unwrap() - threshold).abs() < 1e-6);
        }
        let between = for_fmr(3e-4).unwrap();
        assert!(MEASURED[2].1 > between && between > MEASURED[1].1);
        assert!(for_fmr(1e-5).is_err() && for_fmr(0.5).is_err() && for_fmr(f64::NAN).is_err());
        assert!(
            MEASURED
                .windows(2)
                .all(|w| w[0].0 > w[1].0 && w[0].1 < w[1].1)
        );
    }
}
