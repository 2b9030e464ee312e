//! All pyo3 glue: the `invsync._core` module, its engine class and the log frame splitter.

mod args;
mod convert;
mod engine;
mod errors;
mod events;
mod frames;
mod plain;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<engine::Core>()?;
    m.add_class::<convert::BatchEffects>()?;
    m.add_class::<frames::FrameSplitter>()?;
    m.add_class::<frames::LogMessage>()?;
    m.add_function(wrap_pyfunction!(engine::check_policy, m)?)?;
    m.add_function(wrap_pyfunction!(engine::partition_of, m)?)?;
    m.add_function(wrap_pyfunction!(engine::auto_buffer, m)?)?;
    m.add_function(wrap_pyfunction!(engine::window_units, m)?)?;
    m.add_function(wrap_pyfunction!(engine::clumps, m)?)?;
    m.add("MAX_TIERS", crate::counters::MAX_TIERS)?;
    m.add("MAX_CHANNELS", crate::policy::MAX_CHANNELS)?;
    m.add("MAX_BUNDLE_DEPTH", crate::policy::MAX_BUNDLE_DEPTH)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("SNAPSHOT_FORMAT", crate::snapshot::FORMAT_VERSION)?;
    m.add("DEFAULT_HOLD_SECONDS", plain::DEFAULT_HOLD_SECONDS)?;
    m.add("MAX_HOLD_SECONDS", plain::MAX_HOLD_SECONDS)?;
    let kinds = crate::event_kind::EventKind::ALL.iter().map(|k| k.tag());
    m.add("EVENT_KINDS", pyo3::types::PyTuple::new(m.py(), kinds)?)?;
    Ok(())
}
