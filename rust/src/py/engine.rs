//! The `Core` Python class: thin wrappers over `crate::core::Core`. Long calls release
//! the GIL; raw batch calls are safe from many threads at once.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBytes, PyDict, PyInt, PyList, PyString, PyTuple};

use super::args::{borrowed, line_args, Request};
use super::convert;
use super::errors::{caught, guarded, IntoPy};
use super::plain;
use crate::core::Core as Inner;
use crate::dedupe::Fingerprint;
use crate::effects::Effects;
use crate::error::CoreError;
use crate::partition::Partition;
use crate::policy::{parse, Part, Policy, Refusal};
use crate::reservation::REASONS;
use crate::state::Share;

#[pyclass(frozen, module = "invsync._core")]
pub struct Core {
    inner: Inner,
}

type Fx<'py> = PyResult<Bound<'py, convert::BatchEffects>>;
/// A channel page's (sku, condition, qty, price or None, currency or None).
type PublishedRows = Vec<(String, String, i64, Option<String>, Option<String>)>;
/// A reservation's contract reply, and its effects (None when there are none).
type Reply<'py> = (
    Bound<'py, PyDict>,
    Option<Bound<'py, convert::BatchEffects>>,
);
type Decided<'py> = PyResult<Reply<'py>>;
/// A decided cross-partition request to answer: (request_id, reply_to, channel, reply).
type CrossAnswer<'py> = (String, Option<String>, String, Bound<'py, PyDict>);

impl Core {
    /// Decides a request read by either entry point.
    fn decide<'py>(&self, py: Python<'py>, r: Request) -> Decided<'py> {
        let lines = borrowed(&r.lines);
        let (decision, fx) = caught(py, || {
            self.inner.reserve(
                &r.request_id,
                &r.order_id,
                &r.channel,
                &lines,
                r.hold_seconds,
                r.ts,
            )
        })?;
        let reply = convert::reply::<PyBackedStr>(py, &r.order_id, &r.lines[..], &decision)?;
        let quiet = fx
            == Effects {
                duplicate: fx.duplicate,
                ..Default::default()
            };
        Ok((
            reply,
            if quiet {
                None
            } else {
                Some(convert::Collected::one(fx).into_py(py)?)
            },
        ))
    }
}

fn policy(py: Python<'_>, tables_json: &[u8]) -> PyResult<Policy> {
    Policy::from_json(tables_json).py_err(py)
}

/// A refusal as Python reads it: the path into the file (names and positions) and why.
pub type RefusalTuple<'py> = (Bound<'py, PyTuple>, String);

fn refusal<'py>(py: Python<'py>, r: Refusal) -> PyResult<RefusalTuple<'py>> {
    let parts: Vec<Bound<'py, PyAny>> = r
        .path
        .iter()
        .map(|part| match part {
            Part::Key(k) => PyString::new(py, k).into_any(),
            Part::Index(i) => PyInt::new(py, *i).into_any(),
        })
        .collect();
    Ok((PyTuple::new(py, parts)?, r.message))
}

/// Judges resolved policy tables the way loading them into a `Core` does: None when
/// they would load, else (path, message) naming the entry and field at fault. Tables
/// that are not even the right shape raise `InvsyncError`.
#[pyfunction]
pub fn check_policy<'py>(
    py: Python<'py>,
    tables_json: &[u8],
) -> PyResult<Option<RefusalTuple<'py>>> {
    let tables = parse(tables_json).py_err(py)?;
    match Policy::build(tables) {
        Ok(_) => Ok(None),
        Err(r) => refusal(py, r).map(Some),
    }
}

/// `fnv1a_64(key) % partitions`: the partition of a family key (`crate::partition`).
#[pyfunction]
pub fn partition_of(key: &str, partitions: u32) -> PyResult<u32> {
    if partitions == 0 {
        return Err(PyValueError::new_err("partitions must be at least 1"));
    }
    Ok(crate::partition::partition_of(key, partitions))
}

/// CONTRACT 13's automatic buffer for rates a caller supplies (`invsync plan`):
/// (the formula's value, the buffer within `min`..`max`). `sellers` are
/// (units/s, order lag s) of every channel selling the SKU.
#[pyfunction]
#[pyo3(signature = (risk, min, max, push_lag_s, sellers))]
pub fn auto_buffer(
    risk: f64,
    min: i64,
    max: Option<i64>,
    push_lag_s: f64,
    sellers: Vec<(f64, f64)>,
) -> (i64, i64) {
    let rule = crate::velocity::AutoBuffer { min, max, risk };
    crate::velocity::auto_buffer(&rule, push_lag_s, sellers.into_iter())
}

/// The units every selling channel sells while a channel's number is corrected
/// (CONTRACT 13's `Σ_d v_d × (push_lag_c + order_lag_d)`); `sellers` as for
/// [`auto_buffer`].
#[pyfunction]
pub fn window_units(push_lag_s: f64, sellers: Vec<(f64, f64)>) -> f64 {
    crate::velocity::window_units(push_lag_s, sellers.into_iter())
}

/// The least automatic buffer for `units` sold while a channel's number is late: the
/// p99 of a Poisson count of them (the clumps a steady rate sells in).
#[pyfunction]
pub fn clumps(units: f64) -> i64 {
    crate::velocity::clumps(units)
}

/// Borrows a contiguous numpy array; a strided view is refused instead of copied.
fn slice<'a, T: numpy::Element>(a: &'a PyReadonlyArray1<'_, T>, name: &str) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|_| PyValueError::new_err(format!("{name} must be a contiguous array")))
}

fn same_len(a: usize, b: usize, c: usize) -> PyResult<()> {
    if a == b && b == c {
        Ok(())
    } else {
        Err(PyValueError::new_err(
            "idx, qty and tier must have the same length",
        ))
    }
}

#[pymethods]
impl Core {
    /// A core over every SKU, or with `partitions` > 1 only over partition `partition`'s.
    #[new]
    #[pyo3(signature = (tables_json, partition=0, partitions=1))]
    fn new(py: Python<'_>, tables_json: &[u8], partition: u32, partitions: u32) -> PyResult<Self> {
        let part = Partition::new(partition, partitions).map_err(PyValueError::new_err)?;
        Ok(Core {
            inner: Inner::partitioned(policy(py, tables_json)?, part),
        })
    }

    #[staticmethod]
    #[pyo3(signature = (tables_json, data, partition=0, partitions=1))]
    fn restore(
        py: Python<'_>,
        tables_json: &[u8],
        data: &[u8],
        partition: u32,
        partitions: u32,
    ) -> PyResult<Self> {
        let part = Partition::new(partition, partitions).map_err(PyValueError::new_err)?;
        let p = policy(py, tables_json)?;
        let inner = guarded(py, || Inner::restore(p, part, data))?;
        Ok(Core { inner })
    }

    /// Partition `partition` of `partitions` from the snapshots of every old partition
    /// at one log position (`snapshots[j]` is old partition j's): see `crate::split`.
    #[staticmethod]
    fn split(
        py: Python<'_>,
        tables_json: &[u8],
        snapshots: Vec<Vec<u8>>,
        partition: u32,
        partitions: u32,
    ) -> PyResult<Self> {
        let part = Partition::new(partition, partitions).map_err(PyValueError::new_err)?;
        let p = policy(py, tables_json)?;
        let olds: Vec<&[u8]> = snapshots.iter().map(Vec::as_slice).collect();
        let inner = guarded(py, || Inner::split(p, part, &olds))?;
        Ok(Core { inner })
    }

    /// Request ids of reservations spanning partitions prepared here and still waiting
    /// for their votes, in id order.
    fn undecided_requests(&self) -> Vec<String> {
        self.inner.state().cross.pending.keys().cloned().collect()
    }

    /// Every live checkout hold in order id order: (order id, expires at µs, its lines
    /// as (line id, sku, condition, units held)).
    #[allow(clippy::type_complexity)]
    fn holds(&self) -> Vec<(String, i64, Vec<(String, String, String, i64)>)> {
        let st = self.inner.state();
        st.registry
            .holds
            .iter()
            .filter_map(|(expires, id)| {
                let order = st.registry.orders.get(id)?;
                let lines = order
                    .lines
                    .iter()
                    .filter_map(|l| {
                        let key = st.keys.get(l.key as usize)?;
                        let condition = st.conditions.get(key.condition as usize)?.clone();
                        Some((
                            l.line_id.to_string(),
                            key.sku.to_string(),
                            condition,
                            l.reserved,
                        ))
                    })
                    .collect();
                Some((id.to_string(), *expires, lines))
            })
            .collect()
    }

    /// (partition, partitions) this core applies.
    fn partition(&self) -> (u32, u32) {
        let part = self.inner.partition();
        (part.index, part.count)
    }

    /// The partition `sku` belongs to among `partitions`, by the family the policy gives it.
    fn partition_of_sku(&self, sku: &str, partitions: u32) -> u32 {
        self.inner
            .state()
            .policy
            .families
            .partition(sku, partitions)
    }

    fn set_policy<'py>(&self, py: Python<'py>, tables_json: &[u8]) -> Fx<'py> {
        let p = policy(py, tables_json)?;
        let fx = guarded(py, || self.inner.set_policy(p))?;
        convert::Collected::one(fx).into_py(py)
    }

    /// `check_policy`, then what a reload checks against the live state (a location
    /// that still holds stock, a channel with open orders). Changes nothing.
    fn check_policy_against_state<'py>(
        &self,
        py: Python<'py>,
        tables_json: &[u8],
    ) -> PyResult<Option<RefusalTuple<'py>>> {
        let tables = parse(tables_json).py_err(py)?;
        let checked = Policy::build(tables).and_then(|p| self.inner.check_policy(&p));
        match checked {
            Ok(()) => Ok(None),
            Err(r) => refusal(py, r).map(Some),
        }
    }

    fn index(&self, py: Python<'_>, sku: &str, condition: &str) -> PyResult<u32> {
        caught(py, || self.inner.intern(sku, condition))
    }

    fn lookup(&self, sku: &str, condition: &str) -> Option<u32> {
        self.inner.state().lookup(sku, condition)
    }

    fn key_count(&self) -> usize {
        self.inner.state().keys.len()
    }

    /// (sku, condition) of every key from `start` on, so callers can cache names by index.
    fn key_names(&self, start: usize) -> Vec<(String, String)> {
        let st = self.inner.state();
        st.keys
            .iter()
            .skip(start)
            .map(|k| {
                (
                    k.sku.to_string(),
                    st.conditions[k.condition as usize].clone(),
                )
            })
            .collect()
    }

    fn now(&self) -> Option<i64> {
        let now = self.inner.state().now;
        (now != crate::state::NO_TIME).then_some(now)
    }

    fn newest_time(&self) -> Option<i64> {
        let newest = self.inner.state().newest;
        (newest != crate::state::NO_TIME).then_some(newest)
    }

    fn stock_set_many<'py>(
        &self,
        py: Python<'py>,
        event_id: &str,
        ts: i64,
        idx: PyReadonlyArray1<'py, u32>,
        location: &str,
        on_hand: PyReadonlyArray1<'py, i64>,
    ) -> Fx<'py> {
        let (keys, counts) = (slice(&idx, "idx")?, slice(&on_hand, "on_hand")?);
        let fx = guarded(py, || {
            let fp = keys
                .iter()
                .zip(counts)
                .fold(Fingerprint::new(u8::MAX).text(location), |fp, (&k, &n)| {
                    fp.int(i64::from(k)).int(n)
                });
            self.inner.event(event_id, fp.finish(), ts, |s, c, ts| {
                s.stock_set_many(c, keys, location, counts, ts)
            })
        })?;
        convert::Collected::one(fx).into_py(py)
    }

    /// Applies decoded contract events in order, in one call: `kinds[i]` is an
    /// `EventKind` number (its index in `EVENT_KINDS`), `ts[i]` the event's time in
    /// Unix µs. A refused event changes nothing and the others still apply, or, with
    /// `stop_at_refusal`, none after it is applied. Returns what the whole batch did as
    /// one `convert::BatchEffects`; with `route_prefix`, routes as
    /// `PUB <route_prefix><location>` frames.
    #[pyo3(signature = (events, kinds, ts, route_prefix=None, stop_at_refusal=false))]
    fn apply_events<'py>(
        &self,
        py: Python<'py>,
        events: &Bound<'py, PyList>,
        kinds: &[u8],
        ts: Vec<i64>,
        route_prefix: Option<String>,
        stop_at_refusal: bool,
    ) -> Fx<'py> {
        if kinds.len() != events.len() || ts.len() != events.len() {
            return Err(PyValueError::new_err(
                "events, kinds and ts must have the same length",
            ));
        }
        let mut out = convert::Collected::with_route_frames(route_prefix);
        for (i, ((event, &kind), &micros)) in events.iter().zip(kinds).zip(&ts).enumerate() {
            match super::events::apply(&self.inner, py, kind, &event, micros) {
                Ok(fx) => out.add(i, fx),
                Err(refused) => {
                    out.refuse(i, refused.into_value(py).into_any());
                    if stop_at_refusal {
                        break;
                    }
                }
            }
        }
        out.into_py(py)
    }

    fn expire<'py>(&self, py: Python<'py>, now: i64) -> Fx<'py> {
        convert::Collected::one(caught(py, || self.inner.expire(now))?).into_py(py)
    }

    /// A reservation request; returns (reply dict, effects or None when there are none).
    #[allow(clippy::too_many_arguments)]
    fn reserve<'py>(
        &self,
        py: Python<'py>,
        request_id: PyBackedStr,
        ts: i64,
        order_id: PyBackedStr,
        channel: PyBackedStr,
        lines: &Bound<'py, PyAny>,
        hold_seconds: i64,
    ) -> Decided<'py> {
        let lines = line_args(py, lines)?;
        self.decide(
            py,
            Request {
                request_id,
                order_id,
                channel,
                lines,
                hold_seconds,
                ts,
            },
        )
    }

    /// A reservation in a partitioned core: ("decided", reply, None, effects) when
    /// decided here; ("prepared", None, vote, effects) when this partition prepared its
    /// lines of a request spanning partitions, vote = (partition, ok, [(line_id,
    /// granted, reason)]) for the log; ("pending", ...) for a duplicate of a request
    /// still waiting for votes; ("elsewhere", ...) when no line is this partition's.
    /// `reply_to` stays with a prepared request for the coordinator's answer.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (request_id, ts, order_id, channel, lines, hold_seconds, reply_to=None))]
    fn reserve_share<'py>(
        &self,
        py: Python<'py>,
        request_id: PyBackedStr,
        ts: i64,
        order_id: PyBackedStr,
        channel: PyBackedStr,
        lines: &Bound<'py, PyAny>,
        hold_seconds: i64,
        reply_to: Option<&str>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let args = line_args(py, lines)?;
        let borrowed_lines = borrowed(&args);
        let (share, fx) = caught(py, || {
            self.inner.reserve_share(
                &request_id,
                &order_id,
                &channel,
                &borrowed_lines,
                hold_seconds,
                ts,
                reply_to,
            )
        })?;
        let fx = convert::Collected::one(fx).into_py(py)?.into_any();
        let none = || py.None().into_bound(py);
        let out: [Bound<'py, PyAny>; 4] = match share {
            Share::Decided(d) => {
                let reply = convert::reply::<PyBackedStr>(py, &order_id, &args[..], &d)?;
                [
                    "decided".into_pyobject(py)?.into_any(),
                    reply.into_any(),
                    none(),
                    fx,
                ]
            }
            Share::Prepared(vote) => {
                let lines: Vec<(&str, bool, Option<&str>)> = vote
                    .lines
                    .iter()
                    .map(|&(i, r)| {
                        let id: &str = &args[i as usize].0;
                        (
                            id,
                            vote.ok,
                            r.and_then(|r| REASONS.get(r as usize).copied()),
                        )
                    })
                    .collect();
                let v = (vote.partition, vote.ok, lines)
                    .into_pyobject(py)?
                    .into_any();
                ["prepared".into_pyobject(py)?.into_any(), none(), v, fx]
            }
            Share::Pending => ["pending".into_pyobject(py)?.into_any(), none(), none(), fx],
            Share::Elsewhere => [
                "elsewhere".into_pyobject(py)?.into_any(),
                none(),
                none(),
                fx,
            ],
        };
        PyTuple::new(py, out)
    }

    /// A partition's vote read from the log: (line_id, reason or None) per line it
    /// voted on. Returns what deciding the request did, if this vote decided it.
    fn vote<'py>(
        &self,
        py: Python<'py>,
        request_id: &str,
        partition: u32,
        ok: bool,
        lines: Vec<(PyBackedStr, Option<PyBackedStr>)>,
    ) -> Fx<'py> {
        let lines: Vec<(&str, Option<&str>)> =
            lines.iter().map(|(l, r)| (&**l, r.as_deref())).collect();
        let fx = caught(py, || self.inner.vote(request_id, partition, ok, &lines))?;
        convert::Collected::one(fx).into_py(py)
    }

    /// Cross-partition requests decided since the last call that this partition
    /// answers: (request_id, reply_to or None, channel, the contract reply).
    fn take_cross_answers<'py>(&self, py: Python<'py>) -> PyResult<Vec<CrossAnswer<'py>>> {
        self.inner
            .take_cross_answers()
            .into_iter()
            .map(|a| {
                let reply = convert::reply::<String>(py, &a.order_id, &a.lines, &a.decision)?;
                Ok((a.request_id, a.reply_to, a.channel, reply))
            })
            .collect()
    }

    /// `reserve` for a request dict in the plain shape (see `plain::request`), read
    /// here without a decoded Struct; None for any other dict, which the caller
    /// decodes in full and passes to `reserve`.
    fn reserve_plain<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyDict>,
    ) -> PyResult<Option<Reply<'py>>> {
        match plain::request(request)? {
            Some(r) => Ok(Some(self.decide(py, r)?)),
            None => Ok(None),
        }
    }

    fn ats(&self, idx: u32) -> i64 {
        let st = self.inner.state();
        if (idx as usize) < st.keys.len() {
            st.ats(&self.inner.counters, idx)
        } else {
            0
        }
    }

    fn shown(&self, py: Python<'_>, idx: u32, channel: usize) -> PyResult<i64> {
        let st = self.inner.state();
        if idx as usize >= st.keys.len() || channel >= st.policy.channel_count() {
            return Err(super::errors::to_py(
                py,
                CoreError::bad("idx", "unknown stock key or channel"),
            ));
        }
        Ok(st.shown(&self.inner.counters, idx, channel))
    }

    /// Units held for reservations and open orders of a key (0 for an unknown index).
    fn reserved(&self, idx: u32) -> i64 {
        let st = self.inner.state();
        if (idx as usize) < st.keys.len() {
            st.reserved(&self.inner.counters, idx)
        } else {
            0
        }
    }

    /// Units of a key ordered without stock to take (0 for an unknown index).
    fn backordered(&self, idx: u32) -> i64 {
        self.inner
            .state()
            .keys
            .get(idx as usize)
            .map_or(0, |k| k.backordered)
    }

    /// Changed shown quantities as wire JSON items, per channel in pieces of at most
    /// `per_message`: (channel index, items joined by commas, keys, source µs), see
    /// `crate::wire_json`. A quantity with no event behind it is stamped `fallback_ts`.
    #[pyo3(signature = (per_message, fallback_ts, max_keys=None))]
    #[allow(clippy::type_complexity)]
    fn drain_json<'py>(
        &self,
        py: Python<'py>,
        per_message: usize,
        fallback_ts: i64,
        max_keys: Option<usize>,
    ) -> PyResult<
        Vec<(
            u16,
            Bound<'py, PyBytes>,
            Bound<'py, PyArray1<u32>>,
            Bound<'py, PyArray1<i64>>,
        )>,
    > {
        let pieces = guarded(py, || {
            let changes = self.inner.drain(max_keys.unwrap_or(usize::MAX));
            let st = self.inner.state();
            Ok(crate::wire_json::pieces(
                &changes,
                per_message,
                fallback_ts,
                |key| match st.keys.get(key as usize) {
                    Some(k) => (
                        &*k.sku,
                        st.conditions
                            .get(k.condition as usize)
                            .map_or("", String::as_str),
                    ),
                    None => ("", ""),
                },
            ))
        })?;
        Ok(pieces
            .into_iter()
            .map(|p| {
                (
                    p.channel,
                    PyBytes::new(py, &p.json),
                    p.keys.into_pyarray(py),
                    p.source_ts.into_pyarray(py),
                )
            })
            .collect())
    }

    /// Changed shown quantities as numbers: (channel index, keys, quantities) per
    /// channel, in channel order; the same drain as `drain_json`, without its text.
    #[pyo3(signature = (max_keys=None))]
    #[allow(clippy::type_complexity)]
    fn drain_quantities<'py>(
        &self,
        py: Python<'py>,
        max_keys: Option<usize>,
    ) -> PyResult<Vec<(u16, Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<i64>>)>> {
        let groups = guarded(py, || {
            Ok(self
                .inner
                .drain(max_keys.unwrap_or(usize::MAX))
                .by_channel())
        })?;
        Ok(groups
            .into_iter()
            .map(|g| (g.channel, g.key.into_pyarray(py), g.qty.into_pyarray(py)))
            .collect())
    }

    /// One page of channel `channel`'s last published quantities from key `start` on:
    /// ([(sku, condition, qty, price or None, currency or None)], the key the next page
    /// starts at or None), see `State::published_page`; the price is the SKU's last
    /// published on the channel (`Pricing::published_price`).
    #[allow(clippy::type_complexity)]
    fn published_page(
        &self,
        py: Python<'_>,
        channel: usize,
        start: u32,
        limit: usize,
    ) -> PyResult<(PublishedRows, Option<u32>)> {
        let st = self.inner.state();
        let page = caught(py, || st.published_page(channel, start, limit))?;
        let items = page
            .items
            .into_iter()
            .map(|(key, qty)| {
                let k = &st.keys[key as usize];
                let condition = st.conditions.get(k.condition as usize);
                let (price, currency) = st.pricing.published_price(&k.sku, channel).unzip();
                (
                    k.sku.to_string(),
                    condition.map_or_else(String::new, Clone::clone),
                    qty,
                    price,
                    currency,
                )
            })
            .collect();
        Ok((items, page.next))
    }

    /// Recomputes up to `max_skus` SKUs whose prices may have moved (all when None):
    /// ([(channel index, `PriceUpdate` JSON stamped `ts`)], [(rule, channel, sku, price,
    /// limit or None, currency, detail)]): the prices to publish and the guards that
    /// held one back. See `crate::pricing::Pricing::drain`.
    #[pyo3(signature = (ts, max_skus=None))]
    #[allow(clippy::type_complexity)]
    fn drain_prices<'py>(
        &self,
        py: Python<'py>,
        ts: i64,
        max_skus: Option<usize>,
    ) -> PyResult<(
        Vec<(u16, Bound<'py, PyBytes>)>,
        Vec<(
            &'static str,
            String,
            String,
            String,
            Option<String>,
            String,
            String,
        )>,
    )> {
        let (bodies, guards) = guarded(py, || {
            let drained = self.inner.drain_prices(max_skus.unwrap_or(usize::MAX));
            let bodies: Vec<(u16, Vec<u8>)> = drained
                .prices
                .iter()
                .map(|p| {
                    let body =
                        crate::wire_json::price(&p.sku, &p.price, &p.currency, &p.reason, ts);
                    (p.channel, body)
                })
                .collect();
            Ok((bodies, drained.guards))
        })?;
        Ok((
            bodies
                .into_iter()
                .map(|(ch, body)| (ch, PyBytes::new(py, &body)))
                .collect(),
            guards
                .into_iter()
                .map(|g| {
                    (
                        g.rule, g.channel, g.sku, g.price, g.limit, g.currency, g.detail,
                    )
                })
                .collect(),
        ))
    }

    /// `pause`, `reserve_low` and `sold_out_discontinued` alerts raised by drains since
    /// the last call, as the `alerts` of a `BatchEffects` (index 0).
    fn take_alerts<'py>(&self, py: Python<'py>) -> Fx<'py> {
        let fx = Effects {
            alerts: self.inner.take_alerts(),
            ..Effects::default()
        };
        convert::Collected::one(fx).into_py(py)
    }

    fn explain<'py>(&self, py: Python<'py>, idx: u32) -> PyResult<Bound<'py, PyBytes>> {
        let e = caught(py, || self.inner.explain(idx))?;
        let json = serde_json::to_vec(&e).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(PyBytes::new(py, &json))
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let data = guarded(py, || self.inner.snapshot())?;
        Ok(PyBytes::new(py, &data))
    }

    /// Tier-aware conditional take per element, in input order; GIL released.
    fn reserve_batch<'py>(
        &self,
        py: Python<'py>,
        idx: PyReadonlyArray1<'py, u32>,
        qty: PyReadonlyArray1<'py, i64>,
        tier: PyReadonlyArray1<'py, u8>,
    ) -> PyResult<Bound<'py, PyArray1<bool>>> {
        let (i, q, t) = (
            slice(&idx, "idx")?,
            slice(&qty, "qty")?,
            slice(&tier, "tier")?,
        );
        same_len(i.len(), q.len(), t.len())?;
        let c = &self.inner.counters;
        let out = guarded(py, || Ok(c.reserve_many(i, q, t)))?;
        Ok(out.into_pyarray(py))
    }

    /// Gives units back per element; GIL released. False where the key holds no counted stock.
    fn release_batch<'py>(
        &self,
        py: Python<'py>,
        idx: PyReadonlyArray1<'py, u32>,
        qty: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<Bound<'py, PyArray1<bool>>> {
        let (i, q) = (slice(&idx, "idx")?, slice(&qty, "qty")?);
        same_len(i.len(), q.len(), q.len())?;
        let c = &self.inner.counters;
        let out = guarded(py, || Ok(c.release_many(i, q)))?;
        Ok(out.into_pyarray(py))
    }
}
