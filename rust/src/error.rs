//! The core's one error type. It becomes a Python exception only at the boundary (`py::errors`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreError {
    /// An event or request that must be refused: names the field and why.
    BadInput { field: String, message: String },
    /// The resolved policy tables could not be read.
    Policy(String),
    /// A snapshot that is corrupt, truncated, or from another format version.
    Snapshot(String),
    /// A bug in the core (a caught panic): reported, never a crash of the host.
    Internal(String),
}

impl CoreError {
    pub fn bad(field: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::BadInput {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::BadInput { field, message } => write!(f, "{field}: {message}"),
            CoreError::Policy(m) => write!(f, "policy: {m}"),
            CoreError::Snapshot(m) => write!(f, "snapshot: {m}"),
            CoreError::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for CoreError {}

pub type CoreResult<T> = Result<T, CoreError>;

/// Checked addition that reports an overflow as bad input instead of wrapping.
pub fn add(field: &str, a: i64, b: i64) -> CoreResult<i64> {
    a.checked_add(b)
        .ok_or_else(|| CoreError::bad(field, "quantity overflows 64 bits"))
}

/// Checked multiplication, same rule as [`add`].
pub fn mul(field: &str, a: i64, b: i64) -> CoreResult<i64> {
    a.checked_mul(b)
        .ok_or_else(|| CoreError::bad(field, "quantity overflows 64 bits"))
}
