//! Rust results as plain Python tuples and lists (the Python side wraps them in Structs).

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::engine::LineArg;
use crate::reservation::Decision;
use crate::state::Effects;
use crate::timefmt::rfc3339;

pub type AlertT = (&'static str, Option<String>, Option<String>, String);

pub fn alerts(alerts: Vec<crate::state::AlertOut>) -> Vec<AlertT> {
    alerts
        .into_iter()
        .map(|a| (a.kind, a.sku, a.channel, a.detail))
        .collect()
}

/// Collections come back as tuples: an empty one is Python's shared empty tuple, so
/// an event with few effects allocates (and hands the collector) almost nothing.
pub fn effects<'py>(py: Python<'py>, fx: Effects) -> PyResult<Bound<'py, PyTuple>> {
    let routes = PyTuple::new(
        py,
        fx.routes
            .into_iter()
            .map(|r| (r.order_id, r.line_id, r.sku, r.qty, r.location)),
    )?;
    let alerts = PyTuple::new(py, alerts(fx.alerts))?;
    let backorders = PyTuple::new(
        py,
        fx.backorders
            .into_iter()
            .map(|b| (b.order_id, b.line_id, b.sku, b.condition, b.channel, b.qty)),
    )?;
    let audit = PyTuple::new(
        py,
        fx.audit
            .into_iter()
            .map(|a| (a.sku, a.condition, a.location, a.field, a.before, a.after)),
    )?;
    let expired = PyTuple::new(py, fx.expired)?;
    (fx.duplicate, routes, alerts, backorders, audit, expired).into_pyobject(py)
}

/// The contract reply dict, built from the request's own lines and the decision. The
/// request's string objects go into the reply as they are, not copied.
pub fn reply<'py>(
    py: Python<'py>,
    order_id: &PyBackedStr,
    lines: &[LineArg],
    d: &Decision,
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item(intern!(py, "ok"), d.ok())?;
    out.set_item(intern!(py, "order_id"), order_id)?;
    let items = PyList::empty(py);
    for (n, (line_id, sku, _, qty)) in lines.iter().enumerate() {
        let line = PyDict::new(py);
        line.set_item(intern!(py, "line_id"), line_id)?;
        line.set_item(intern!(py, "sku"), sku)?;
        line.set_item(intern!(py, "qty"), qty)?;
        line.set_item(intern!(py, "granted"), d.ok())?;
        line.set_item(intern!(py, "reason"), d.reason(n))?;
        items.append(line)?;
    }
    out.set_item(intern!(py, "lines"), items)?;
    out.set_item(intern!(py, "expires_at"), d.expires_at().map(rfc3339))?;
    Ok(out)
}
