//! Per-scenario filter configuration from the environment.

use crate::contract::{Filter, Scenario};
use crate::vision::filters::Policy;

/// Builds the three scenario policies: the contract's defaults, then
/// `FILTERS_OFF_<SCENARIO>` / `FILTERS_ON_<SCENARIO>` (comma-separated filter names) and
/// `MIN_INTEROCULAR_<SCENARIO>` (pixels) from `env`.
pub fn policies(env: impl Fn(&str) -> Option<String>) -> Result<[Policy; 3], String> {
    let mut out = Scenario::ALL.map(Policy::for_scenario);
    for (policy, scenario) in out.iter_mut().zip(Scenario::ALL) {
        for (var, on) in [("FILTERS_OFF", false), ("FILTERS_ON", true)] {
            let key = format!("{var}_{}", scenario.as_str());
            for name in env(&key)
                .iter()
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|n| !n.is_empty())
            {
                let Some(filter) = Filter::parse(name) else {
                    let known = Filter::ALL.map(Filter::name).join(", ");
                    return Err(format!("{key}: unknown filter '{name}' (known: {known})"));
                };
                policy.set(filter, on);
            }
        }
        let key = format!("MIN_INTEROCULAR_{}", scenario.as_str());
        if let Some(v) = env(&key) {
            policy.thresholds.min_interocular = v
                .trim()
                .parse()
                .map_err(|_| format!("{key}: not a number: '{v}'"))?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_per_scenario() {
        let env = |k: &str| match k {
            "FILTERS_OFF_SELFIE" => Some("faceTooSmall, imageBlackAndWhite".to_string()),
            "FILTERS_ON_DOCUMENT" => Some("imageBlackAndWhite".to_string()),
            "MIN_INTEROCULAR_TRUSTED_SOURCE" => Some("50".to_string()),
            _ => None,
        };
        let [selfie, trusted, document] = policies(env).unwrap();
        assert!(!selfie.runs(Filter::FaceTooSmall) && !selfie.runs(Filter::ImageBlackAndWhite));
        assert!(selfie.runs(Filter::FaceMissing));
        assert!(document.runs(Filter::ImageBlackAndWhite));
        assert!(!trusted.runs(Filter::ImageBlackAndWhite));
        assert_eq!(trusted.thresholds.min_interocular, 50.0);
        assert!(policies(|k| (k == "FILTERS_OFF_SELFIE").then(|| "faceBogus".into())).is_err());
    }
}
