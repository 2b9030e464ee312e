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
    /// Bad input about a whole event (not one partition's line), refused by every
    /// partition and reported by partition 0 only: elsewhere it is this.
    ReportedElsewhere(String),
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
            CoreError::ReportedElsewhere(m) => write!(f, "{m} (reported by partition 0)"),
        }
    }
}

impl std::error::Error for CoreError {}

pub type CoreResult<T> = Result<T, CoreError>;

impl CoreError {
    /// This refusal of a whole event as partition `partition` reports it.
    pub fn whole_event(self, partition: crate::partition::Partition) -> CoreError {
        match self {
            CoreError::BadInput { .. } if !partition.is_first() => {
                CoreError::ReportedElsewhere(self.to_string())
            }
            other => other,
        }
    }
}

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
