//! Rust results as Python objects: what a call did (`BatchEffects`) and reservation replies.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::effects::{AlertOut, AuditOut, BackorderOut, DeadOut, Effects};
use crate::reservation::Decision;
use crate::timefmt::rfc3339;

/// What a core call did, as columns: a few flat lists instead of an object per event,
/// so a batch of thousands hands Python thousands fewer objects. Items that belong to
/// an event lead with its index (0 for calls that do one thing: a reservation, a
/// policy, an expiry). With a route subject prefix (`with_route_frames`), routes to a
/// location whose id is a plain subject token come as one run of `PUB` frames instead.
#[derive(Default)]
pub struct Collected {
    refused: Vec<(usize, Py<PyAny>)>,
    duplicates: Vec<usize>,
    routes: Vec<(String, Vec<u8>)>,
    alerts: Vec<(usize, AlertOut)>,
    backorders: Vec<BackorderOut>,
    audit: Vec<(usize, AuditOut)>,
    expired: Vec<String>,
    dead: Vec<DeadOut>,
    route_prefix: Option<String>,
    route_frames: Vec<u8>,
}

impl Collected {
    /// Effects whose routes are written as `PUB <prefix><location>` frames.
    pub fn with_route_frames(prefix: Option<String>) -> Self {
        Collected {
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

    pub fn refuse(&mut self, i: usize, refusal: Py<PyAny>) {
        self.refused.push((i, refusal));
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
                _ => self.routes.push((r.location, json)),
            }
        }
        self.alerts.extend(fx.alerts.into_iter().map(|a| (i, a)));
        self.backorders.extend(fx.backorders);
        self.audit.extend(fx.audit.into_iter().map(|a| (i, a)));
        self.expired.extend(fx.expired);
        self.dead.extend(fx.dead);
    }

    pub fn into_py(self, py: Python<'_>) -> PyResult<Bound<'_, BatchEffects>> {
        let routes = self
            .routes
            .iter()
            .map(|(location, json)| (location, PyBytes::new(py, json)));
        let alerts = self
            .alerts
            .into_iter()
            .map(|(i, a)| (i, a.kind, a.sku, a.channel, a.detail));
        let backorders = self
            .backorders
            .into_iter()
            .map(|b| (b.order_id, b.line_id, b.sku, b.condition, b.channel, b.qty));
        let audit = self.audit.into_iter().map(|(i, a)| {
            (
                i,
                a.sku,
                a.condition,
                a.location,
                a.field,
                a.before,
                a.after,
            )
        });
        let dead = self.dead.iter().map(|d| {
            (
                &d.event_id,
                PyBytes::new(py, d.event_json.as_bytes()),
                d.reason,
                &d.error,
            )
        });
        Bound::new(
            py,
            BatchEffects {
                refused: PyList::new(py, self.refused)?.unbind(),
                duplicates: PyList::new(py, self.duplicates)?.unbind(),
                routes: PyList::new(py, routes)?.unbind(),
                route_frames: PyBytes::new(py, &self.route_frames).unbind(),
                alerts: PyList::new(py, alerts)?.unbind(),
                backorders: PyList::new(py, backorders)?.unbind(),
                audit: PyList::new(py, audit)?.unbind(),
                expired: PyList::new(py, self.expired)?.unbind(),
                dead_letters: PyList::new(py, dead)?.unbind(),
            },
        )
    }
}

/// What a core call did, by name (see `_core.pyi` for each field's items). The engine
/// turns it into contract Structs once, in `Engine.apply_all`'s `AppliedBatch`.
#[pyclass(frozen, get_all, module = "invsync._core")]
pub struct BatchEffects {
    /// (event index, the exception that refused it)
    refused: Py<PyList>,
    /// indices of events applied before, which changed nothing
    duplicates: Py<PyList>,
    /// (location, the route message's JSON)
    routes: Py<PyList>,
    /// routes as `PUB` frames, with a route prefix
    route_frames: Py<PyBytes>,
    /// (event index, kind, sku, channel, detail)
    alerts: Py<PyList>,
    /// (order_id, line_id, sku, condition, channel, qty)
    backorders: Py<PyList>,
    /// (event index, sku, condition, location, field, before, after)
    audit: Py<PyList>,
    /// order ids whose holds expired
    expired: Py<PyList>,
    /// (event_id, the event's JSON, reason, error) of events the core had set aside
    dead_letters: Py<PyList>,
}

/// The contract reply dict, built from the request's own lines and the decision. The
/// request's string objects go into the reply as they are, not copied.
pub fn reply<'py, 'a, T>(
    py: Python<'py>,
    order_id: &'a T,
    lines: &'a [(T, T, T, i64)],
    d: &Decision,
) -> PyResult<Bound<'py, PyDict>>
where
    &'a T: IntoPyObject<'py>,
{
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
