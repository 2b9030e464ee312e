//! Arguments as Python passes them: order lines and reservation requests, borrowed
//! from Python strings without copies. A leaf module: nothing else in `py/` is needed.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use smallvec::SmallVec;

use crate::state::LineIn;

/// An order line as Python passes it: borrowed strings, no copies.
pub type LineArg = (PyBackedStr, PyBackedStr, PyBackedStr, i64);
/// Orders have a handful of lines: up to four stay on the stack.
pub type Lines<T> = SmallVec<[T; 4]>;

/// Reads order lines straight from the decoded Structs (`line_id`, `sku`, `condition`,
/// `qty` attributes), so the hot path builds no intermediate tuples in Python.
pub fn line_args(py: Python<'_>, lines: &Bound<'_, PyAny>) -> PyResult<Lines<LineArg>> {
    let mut out = Lines::new();
    for line in lines.try_iter()? {
        let line = line?;
        out.push((
            line.getattr(intern!(py, "line_id"))?.extract()?,
            line.getattr(intern!(py, "sku"))?.extract()?,
            line.getattr(intern!(py, "condition"))?.extract()?,
            line.getattr(intern!(py, "qty"))?.extract()?,
        ));
    }
    Ok(out)
}

pub fn borrowed(lines: &[LineArg]) -> Lines<LineIn<'_>> {
    lines
        .iter()
        .map(|(l, s, c, q)| (&**l, &**s, &**c, *q))
        .collect()
}

/// A reservation request as the core reads it, from a decoded Struct or a plain dict.
pub struct Request {
    pub request_id: PyBackedStr,
    pub order_id: PyBackedStr,
    pub channel: PyBackedStr,
    pub lines: Lines<LineArg>,
    pub hold_seconds: i64,
    pub ts: i64,
}
