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

/// One of the six filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Filter {
    FaceIsOccluded,
    FaceMissing,
    FaceMultiple,
    FacePartial,
    FaceTooSmall,
    ImageBlackAndWhite,
}

impl Filter {
    /// All six, in the order of a `FilterTriggered` body.
    pub const ALL: [Filter; 6] = [
        Filter::FaceIsOccluded,
        Filter::FaceMissing,
        Filter::FaceMultiple,
        Filter::FacePartial,
        Filter::FaceTooSmall,
        Filter::ImageBlackAndWhite,
    ];

    /// The order in which `detail` names the filters that triggered.
    const DETAIL_ORDER: [Filter; 6] = [
        Filter::FaceMissing,
        Filter::FaceMultiple,
        Filter::FacePartial,
        Filter::FaceTooSmall,
        Filter::FaceIsOccluded,
        Filter::ImageBlackAndWhite,
    ];

    /// The name as the contract spells it.
    pub fn name(self) -> &'static str {
        match self {
            Filter::FaceIsOccluded => "faceIsOccluded",
            Filter::FaceMissing => "faceMissing",
            Filter::FaceMultiple => "faceMultiple",
            Filter::FacePartial => "facePartial",
            Filter::FaceTooSmall => "faceTooSmall",
            Filter::ImageBlackAndWhite => "imageBlackAndWhite",
        }
    }

    /// The filter the contract calls `name`.
    pub fn parse(name: &str) -> Option<Filter> {
        Filter::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The plain words used in `detail` when it triggers.
    fn words(self) -> &'static str {
        match self {
            Filter::FaceMissing => "No face found in the image",
            Filter::FaceMultiple => "More than one face in the image",
            Filter::FacePartial => "Face only partly inside the image",
            Filter::FaceTooSmall => "Face too small for an accurate template",
            Filter::FaceIsOccluded => "Face occluded by object",
            Filter::ImageBlackAndWhite => "Image is black and white",
        }
    }
}

/// The six filters' outcomes, always all present in a `FilterTriggered` body.
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
    /// The outcomes of `status(filter)` for each filter.
    pub fn from_fn(mut status: impl FnMut(Filter) -> FilterStatus) -> Filters {
        Filters {
            face_is_occluded: status(Filter::FaceIsOccluded),
            face_missing: status(Filter::FaceMissing),
            face_multiple: status(Filter::FaceMultiple),
            face_partial: status(Filter::FacePartial),
            face_too_small: status(Filter::FaceTooSmall),
            image_black_and_white: status(Filter::ImageBlackAndWhite),
        }
    }

    /// One filter's outcome.
    pub fn get(&self, filter: Filter) -> FilterStatus {
        match filter {
            Filter::FaceIsOccluded => self.face_is_occluded,
            Filter::FaceMissing => self.face_missing,
            Filter::FaceMultiple => self.face_multiple,
            Filter::FacePartial => self.face_partial,
            Filter::FaceTooSmall => self.face_too_small,
            Filter::ImageBlackAndWhite => self.image_black_and_white,
        }
    }

    /// True when any filter failed.
    pub fn any_triggered(&self) -> bool {
        Filter::ALL
            .iter()
            .any(|f| self.get(*f) == FilterStatus::Triggered)
    }

    /// The `detail` sentence naming every failed filter.
    pub fn detail(&self) -> String {
        let failed: Vec<&str> = Filter::DETAIL_ORDER
            .iter()
            .filter(|f| self.get(**f) == FilterStatus::Triggered)
            .map(|f| f.words())
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

    /// `Filter` and the body agree: each filter's name is its key in a `FilterTriggered`
    /// body, in `Filter::ALL`'s order, which is also the order of its discriminants.
    #[test]
    fn filter_names_are_the_body_keys_in_order() {
        for (i, filter) in Filter::ALL.into_iter().enumerate() {
            assert_eq!(filter as usize, i);
            assert_eq!(Filter::parse(filter.name()), Some(filter));
            let only = Filters::from_fn(|f| {
                if f == filter {
                    FilterStatus::Triggered
                } else {
                    FilterStatus::NotTriggered
                }
            });
            assert_eq!(only.get(filter), FilterStatus::Triggered);
            let text = serde_json::to_string(&only).unwrap();
            let at = Filter::ALL.map(|f| text.find(&format!("\"{}\":", f.name())));
            assert!(
                at.windows(2).all(|w| w[0].is_some() && w[0] < w[1]),
                "{text}"
            );
            let body: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(body.as_object().unwrap().len(), 6);
            assert_eq!(body[filter.name()], "TRIGGERED");
        }
        assert_eq!(Filter::parse("faceBogus"), None);
    }

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
