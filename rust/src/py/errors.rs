//! CoreError becomes a Python exception here, and only here. The exception classes are
//! declared once, in `invsync.errors`.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::error::CoreError;

fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
    Ok(py
        .import("invsync.errors")?
        .getattr(name)?
        .cast_into::<PyType>()?)
}

pub fn to_py(py: Python<'_>, e: CoreError) -> PyErr {
    let name = match &e {
        CoreError::BadInput { .. } => "BadInputError",
        CoreError::Policy(_) => "InvsyncError",
        CoreError::Internal(_) => "CoreBugError",
        CoreError::Snapshot(_) => "SnapshotError",
        CoreError::ReportedElsewhere(_) => "ReportedElsewhereError",
    };
    match class(py, name) {
        Ok(cls) => PyErr::from_type(cls, e.to_string()),
        Err(_) => PyRuntimeError::new_err(e.to_string()),
    }
}

pub trait IntoPy<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPy<T> for Result<T, CoreError> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}

fn panic_text(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

/// Runs short core work with any panic caught: a bug in the core becomes an
/// `InvsyncError` the service can dead-letter, never a `PanicException` that slips
/// past `except Exception` and takes the process down.
pub fn caught<T>(py: Python<'_>, work: impl FnOnce() -> Result<T, CoreError>) -> PyResult<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
        Ok(result) => result.py_err(py),
        Err(panic) => Err(to_py(py, CoreError::Internal(panic_text(panic)))),
    }
}

/// [`caught`], with the GIL released: for long calls (batches, snapshots, drains).
pub fn guarded<T: Send>(
    py: Python<'_>,
    work: impl FnOnce() -> Result<T, CoreError> + Send,
) -> PyResult<T> {
    let outcome = py.detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)));
    match outcome {
        Ok(result) => result.py_err(py),
        Err(panic) => Err(to_py(py, CoreError::Internal(panic_text(panic)))),
    }
}
