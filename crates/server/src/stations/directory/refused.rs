//! Refused changes and the HTTP status each maps to.

use axum::http::StatusCode;
use tracing::warn;

use crate::files::HttpError;
use crate::stations::convert::ConvertError;

/// A refused change, with the HTTP status it maps to and a message for the admin.
#[derive(Debug)]
pub struct Refused {
    /// The status.
    pub status: StatusCode,
    /// Machine-readable code.
    pub code: &'static str,
    /// What went wrong, for the admin.
    pub message: String,
}

impl Refused {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Refused {
            status,
            code,
            message: message.into(),
        }
    }

    pub(super) fn internal(context: &str, e: impl std::fmt::Display) -> Self {
        warn!("{context}: {e}");
        Refused::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "The server could not complete this; please try again.",
        )
    }

    pub(super) fn not_found(name: &str) -> Self {
        Refused::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("There is no station called {name:?}."),
        )
    }
}

impl From<HttpError> for Refused {
    fn from(e: HttpError) -> Self {
        let (status, code, message) = e.parts();
        Refused::new(status, code, message)
    }
}

impl From<ConvertError> for Refused {
    fn from(e: ConvertError) -> Self {
        let (status, code) = match e {
            ConvertError::NoFfmpeg { .. } => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported"),
            ConvertError::Unreadable { .. } | ConvertError::NoMedia { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "unreadable")
            }
            ConvertError::Failed { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "conversion_failed"),
        };
        Refused::new(status, code, e.to_string())
    }
}
