//! Reservation requests in the plain shape callers build, read straight from the dict.
//!
//! `engine.reserve` one request at a time spent much of its time turning the
//! request dict into a validated Struct and its `ts` into microseconds (figures in
//! bench/RESULTS.md). A dict of exact `str`, `int`, `list` and `dict` values that
//! already satisfies every constraint of the contract's `reserve` request is read
//! here instead, the contract's own example included (`"type": "reserve"`,
//! `hold_seconds`, no `ts`: a request without `ts`, or with `ts` None, is stamped
//! with the wall clock, as the full path stamps it). Anything else (another type, a value out of range,
//! an unknown key, an unusual `ts`) is not judged here: `request` returns None
//! and the caller decodes the dict in full, so every error and every odd-but-valid
//! input reads exactly as before. A property test holds the two paths to the same
//! answers.

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyDict, PyInt, PyList, PyString};
use std::time::{SystemTime, UNIX_EPOCH};

use super::args::{LineArg, Lines, Request};
use crate::timefmt::parse_rfc3339;

/// How long a hold lives when the request does not say.
pub const DEFAULT_HOLD_SECONDS: i64 = 900;
/// The longest hold a request may ask for: 30 days.
pub const MAX_HOLD_SECONDS: i64 = 30 * 24 * 3600;

/// The wall clock in Unix µs, the stamp of a request that has no `ts`; None for a
/// clock outside what µs since 1970 can hold (the full path then decides).
fn wall_clock_micros() -> Option<i64> {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(since.as_micros()).ok()
}

/// A non-empty exact `str` (no subclass; valid UTF-8).
fn text(v: &Bound<'_, PyAny>) -> Option<PyBackedStr> {
    let s: PyBackedStr = v.cast_exact::<PyString>().ok()?.clone().try_into().ok()?;
    (!s.is_empty()).then_some(s)
}

/// An exact `int` (not a bool) in `lo..=hi`.
fn int_in(v: &Bound<'_, PyAny>, lo: i64, hi: i64) -> Option<i64> {
    let n: i64 = v.cast_exact::<PyInt>().ok()?.extract().ok()?;
    (lo..=hi).contains(&n).then_some(n)
}

fn line(item: &Bound<'_, PyAny>) -> PyResult<Option<LineArg>> {
    let Ok(d) = item.cast_exact::<PyDict>() else {
        return Ok(None);
    };
    let (mut line_id, mut sku, mut condition, mut qty) = (None, None, None, None);
    for (k, v) in d.iter() {
        let value_ok = match text(&k).as_deref() {
            Some("line_id") => line_id.insert(text(&v)).is_some(),
            Some("sku") => sku.insert(text(&v)).is_some(),
            Some("condition") => condition.insert(text(&v)).is_some(),
            Some("qty") => qty.insert(int_in(&v, 1, i64::MAX)).is_some(),
            _ => false,
        };
        if !value_ok {
            return Ok(None);
        }
    }
    let condition = match condition.flatten() {
        Some(c) => c,
        None => PyString::intern(item.py(), "new").clone().try_into()?,
    };
    Ok(match (line_id.flatten(), sku.flatten(), qty.flatten()) {
        (Some(l), Some(s), Some(q)) => Some((l, s, condition, q)),
        _ => None,
    })
}

fn lines(v: &Bound<'_, PyAny>) -> PyResult<Option<Lines<LineArg>>> {
    let Ok(list) = v.cast_exact::<PyList>() else {
        return Ok(None);
    };
    let mut read = Lines::new();
    for item in list.iter() {
        match line(&item)? {
            Some(l) => read.push(l),
            None => return Ok(None),
        }
    }
    Ok((!read.is_empty()).then_some(read))
}

/// The request, if `d` is in the plain shape; None otherwise (see the module docs).
pub fn request(d: &Bound<'_, PyDict>) -> PyResult<Option<Request>> {
    let (mut request_id, mut order_id, mut channel) = (None, None, None);
    let (mut read_lines, mut hold_seconds, mut ts) = (None, None, None);
    for (k, v) in d.iter() {
        let value_ok = match text(&k).as_deref() {
            Some("type") => text(&v).is_some_and(|t| &*t == "reserve"),
            Some("request_id") => request_id.insert(text(&v)).is_some(),
            Some("order_id") => order_id.insert(text(&v)).is_some(),
            Some("channel") => channel.insert(text(&v)).is_some(),
            Some("lines") => read_lines.insert(lines(&v)?).is_some(),
            Some("hold_seconds") => hold_seconds
                .insert(int_in(&v, 0, MAX_HOLD_SECONDS))
                .is_some(),
            Some("ts") if v.is_none() => true,
            Some("ts") => ts
                .insert(text(&v).and_then(|t| parse_rfc3339(t.as_bytes())))
                .is_some(),
            _ => false,
        };
        if !value_ok {
            return Ok(None);
        }
    }
    let fields = (
        request_id.flatten(),
        order_id.flatten(),
        channel.flatten(),
        read_lines.flatten(),
        ts.unwrap_or_else(wall_clock_micros),
    );
    Ok(match fields {
        (Some(request_id), Some(order_id), Some(channel), Some(lines), Some(ts)) => Some(Request {
            request_id,
            order_id,
            channel,
            lines,
            hold_seconds: hold_seconds.flatten().unwrap_or(DEFAULT_HOLD_SECONDS),
            ts,
        }),
        _ => None,
    })
}
