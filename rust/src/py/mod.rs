//! All pyo3 glue: the `invsync._core` module and its one class.

mod convert;
mod engine;
mod errors;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<engine::Core>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("SNAPSHOT_FORMAT", crate::snapshot::FORMAT_VERSION)?;
    Ok(())
}
