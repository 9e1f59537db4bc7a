//! The public API's data types, with the byte-exact names of the agent contract.

use serde::{Deserialize, Serialize};

/// Value of the required `Scenario` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Scenario {
    /// A live capture of the person.
    Selfie,
    /// A portrait from a trusted record (KYC photo, passport chip image).
    TrustedSource,
    /// A photo or scan of an identity document.
    Document,
}

impl Scenario {
    pub const ALL: [Scenario; 3] = [
        Scenario::Selfie,
        Scenario::TrustedSource,
        Scenario::Document,
    ];

    /// The header value, e.g. `TRUSTED_SOURCE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Selfie => "SELFIE",
            Scenario::TrustedSource => "TRUSTED_SOURCE",
            Scenario::Document => "DOCUMENT",
        }
    }

    /// Position in [`Scenario::ALL`], for per-scenario tables.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Parses the header value exactly (the contract's values are upper case).
    pub fn parse(value: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

/// Outcome of one filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FilterStatus {
    Triggered,
    NotTriggered,
    TurnedOff,
    CannotRunOnFrame,
}

/// The six filters, always all present in a `FilterTriggered` body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filters {
    pub face_is_occluded: FilterStatus,
    pub face_missing: FilterStatus,
    pub face_multiple: FilterStatus,
    pub face_partial: FilterStatus,
    pub face_too_small: FilterStatus,
    pub image_black_and_white: FilterStatus,
}

impl Filters {
    /// The filters' names as the contract spells them.
    pub const NAMES: [&'static str; 6] = [
        "faceIsOccluded",
        "faceMissing",
        "faceMultiple",
        "facePartial",
        "faceTooSmall",
        "imageBlackAndWhite",
    ];

    /// A filter's status by its contract name.
    pub fn get(&self, name: &str) -> Option<FilterStatus> {
        Some(match name {
            "faceIsOccluded" => self.face_is_occluded,
            "faceMissing" => self.face_missing,
            "faceMultiple" => self.face_multiple,
            "facePartial" => self.face_partial,
            "faceTooSmall" => self.face_too_small,
            "imageBlackAndWhite" => self.image_black_and_white,
            _ => return None,
        })
    }

    /// Each filter with the plain words used in `detail` when it triggers.
    pub fn entries(&self) -> [(FilterStatus, &'static str); 6] {
        [
            (self.face_missing, "No face found in the image"),
            (self.face_multiple, "More than one face in the image"),
            (self.face_partial, "Face only partly inside the image"),
            (
                self.face_too_small,
                "Face too small for an accurate template",
            ),
            (self.face_is_occluded, "Face occluded by object"),
            (self.image_black_and_white, "Image is black and white"),
        ]
    }

    /// True when any filter failed.
    pub fn any_triggered(&self) -> bool {
        self.entries()
            .iter()
            .any(|(s, _)| *s == FilterStatus::Triggered)
    }

    /// The `detail` sentence naming every failed filter.
    pub fn detail(&self) -> String {
        let failed: Vec<&str> = self
            .entries()
            .iter()
            .filter(|(s, _)| *s == FilterStatus::Triggered)
            .map(|(_, words)| *words)
            .collect();
        failed.join("; ")
    }
}

/// `200` body of `POST /v1/offline-enrollment`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfflineEnrollment {
    pub keyless_id: String,
    pub client_state: String,
    pub server_state: String,
}

/// `200` body of `POST /v1/online-enrollment`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnlineEnrollment {
    pub keyless_id: String,
    pub client_state: String,
}

/// `422` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterTriggered {
    pub title: String,
    pub status_code: u16,
    pub detail: String,
    pub filters: Filters,
}

impl From<Filters> for FilterTriggered {
    fn from(filters: Filters) -> Self {
        FilterTriggered {
            title: "Filter Triggered".into(),
            status_code: 422,
            detail: filters.detail(),
            filters,
        }
    }
}

/// Every other error body: `{"title", "statusCode", "detail"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub title: String,
    pub status_code: u16,
    pub detail: String,
}

/// `200` body of `GET /health-check`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub version: String,
    pub status: String,
}

impl Health {
    /// This build, serving.
    pub fn ok() -> Health {
        Health {
            version: env!("CARGO_PKG_VERSION").into(),
            status: "ok".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_triggered_has_the_contract_names() {
        let filters = Filters {
            face_is_occluded: FilterStatus::Triggered,
            face_missing: FilterStatus::NotTriggered,
            face_multiple: FilterStatus::NotTriggered,
            face_partial: FilterStatus::TurnedOff,
            face_too_small: FilterStatus::CannotRunOnFrame,
            image_black_and_white: FilterStatus::NotTriggered,
        };
        let json = serde_json::to_value(FilterTriggered::from(filters)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "title": "Filter Triggered",
                "statusCode": 422,
                "detail": "Face occluded by object",
                "filters": {
                    "faceIsOccluded": "TRIGGERED",
                    "faceMissing": "NOT_TRIGGERED",
                    "faceMultiple": "NOT_TRIGGERED",
                    "facePartial": "TURNED_OFF",
                    "faceTooSmall": "CANNOT_RUN_ON_FRAME",
                    "imageBlackAndWhite": "NOT_TRIGGERED"
                }
            })
        );
    }

    #[test]
    fn scenario_parses_only_exact_values() {
        assert_eq!(
            Scenario::parse("TRUSTED_SOURCE"),
            Some(Scenario::TrustedSource)
        );
        assert_eq!(Scenario::parse("selfie"), None);
        assert_eq!(Scenario::parse(""), None);
    }
}
