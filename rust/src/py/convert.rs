//! Rust results as plain Python tuples and lists (the Python side wraps them in Structs).

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use super::args::LineArg;
use crate::effects::{AlertOut, Effects};
use crate::reservation::Decision;
use crate::timefmt::rfc3339;

pub type AlertT = (&'static str, Option<String>, Option<String>, String);

pub fn alerts(alerts: Vec<AlertOut>) -> Vec<AlertT> {
    alerts
        .into_iter()
        .map(|a| (a.kind, a.sku, a.channel, a.detail))
        .collect()
}

/// A batch's effects as columns, each item tagged with the index of its event:
/// (refused (i, exception), duplicates i, routes (i, location, the route message's
/// JSON), alerts (i, kind, sku, channel, detail), backorders (i, order_id,
/// line_id, sku, condition, channel, qty), audit (i, sku, condition, location, field,
/// before, after), expired (i, order_id), route frames, dead letters (i, event_id,
/// the event's JSON, reason, error) of events the core had set aside). A few flat lists instead of a
/// tuple per event: a batch of thousands hands Python thousands fewer objects. Calls
/// that do one thing (a reservation, a policy, an expiry) return the same shape, with
/// index 0. With a route subject prefix (`with_route_frames`), routes to a location
/// whose id is a plain subject token come as one run of `PUB` frames instead.
#[derive(Default)]
#[allow(clippy::type_complexity)]
pub struct BatchEffects {
    pub refused: Vec<(usize, Py<PyAny>)>,
    duplicates: Vec<usize>,
    routes: Vec<(usize, String, Vec<u8>)>,
    alerts: Vec<(usize, &'static str, Option<String>, Option<String>, String)>,
    backorders: Vec<(usize, String, String, String, String, String, i64)>,
    audit: Vec<(
        usize,
        String,
        String,
        Option<String>,
        &'static str,
        i64,
        i64,
    )>,
    expired: Vec<(usize, String)>,
    dead: Vec<(usize, String, Vec<u8>, &'static str, String)>,
    route_prefix: Option<String>,
    route_frames: Vec<u8>,
}

impl BatchEffects {
    /// Effects whose routes are written as `PUB <prefix><location>` frames.
    pub fn with_route_frames(prefix: Option<String>) -> Self {
        BatchEffects {
            route_prefix: prefix,
            ..Self::default()
        }
    }

    /// The effects of one call, as index 0.
    pub fn one(fx: Effects) -> Self {
        let mut out = Self::default();
        out.add(0, fx);
        out
    }

    pub fn add(&mut self, i: usize, fx: Effects) {
        if fx.duplicate {
            self.duplicates.push(i);
        }
        for r in fx.routes {
            let json = crate::wire_json::route(&r.order_id, &r.line_id, &r.sku, r.qty, &r.location);
            match &self.route_prefix {
                Some(prefix) if crate::frames::plain_token(&r.location) => {
                    crate::frames::write_pub(&mut self.route_frames, prefix, &r.location, &json);
                }
                _ => self.routes.push((i, r.location, json)),
            }
        }
        self.alerts.extend(
            fx.alerts
                .into_iter()
                .map(|a| (i, a.kind, a.sku, a.channel, a.detail)),
        );
        self.backorders.extend(fx.backorders.into_iter().map(|b| {
            (
                i,
                b.order_id,
                b.line_id,
                b.sku,
                b.condition,
                b.channel,
                b.qty,
            )
        }));
        self.audit.extend(fx.audit.into_iter().map(|a| {
            (
                i,
                a.sku,
                a.condition,
                a.location,
                a.field,
                a.before,
                a.after,
            )
        }));
        self.expired.extend(fx.expired.into_iter().map(|o| (i, o)));
        self.dead.extend(
            fx.dead
                .into_iter()
                .map(|d| (i, d.event_id, d.event_json.into_bytes(), d.reason, d.error)),
        );
    }

    pub fn into_pyobject(self, py: Python<'_>) -> PyResult<Bound<'_, PyTuple>> {
        let routes = PyList::new(
            py,
            self.routes
                .iter()
                .map(|(i, location, json)| (*i, location, PyBytes::new(py, json))),
        )?;
        let dead = PyList::new(
            py,
            self.dead.iter().map(|(i, event_id, json, reason, error)| {
                (*i, event_id, PyBytes::new(py, json), *reason, error)
            }),
        )?;
        (
            self.refused,
            self.duplicates,
            routes,
            self.alerts,
            self.backorders,
            self.audit,
            self.expired,
            PyBytes::new(py, &self.route_frames),
            dead,
        )
            .into_pyobject(py)
    }
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
