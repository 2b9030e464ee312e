//! Contract events read straight from their decoded Structs, with one dispatch for
//! every kind, so a fetched batch is applied in a single call into the core.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyDict, PyString};

use super::args::{borrowed, line_args};
use super::errors::caught;
use crate::core::Core;
use crate::dedupe::Fingerprint;
use crate::effects::Effects;
use crate::error::CoreError;
use crate::event_kind::EventKind;
use crate::parking::Waiting;
use crate::pricing::PromoRequest;
use crate::state::StockMove;

fn text(ev: &Bound<'_, PyAny>, name: &Bound<'_, PyString>) -> PyResult<PyBackedStr> {
    ev.getattr(name)?.extract()
}

fn int(ev: &Bound<'_, PyAny>, name: &Bound<'_, PyString>) -> PyResult<i64> {
    ev.getattr(name)?.extract()
}

/// A decimal field (`decimal.Decimal`) as plain digits, never in exponent form.
fn decimal(ev: &Bound<'_, PyAny>, name: &Bound<'_, PyString>) -> PyResult<String> {
    ev.getattr(name)?
        .call_method1("__format__", ("f",))?
        .extract()
}

fn optional_decimal(ev: &Bound<'_, PyAny>, name: &Bound<'_, PyString>) -> PyResult<Option<String>> {
    let value = ev.getattr(name)?;
    if value.is_none() {
        return Ok(None);
    }
    Ok(Some(value.call_method1("__format__", ("f",))?.extract()?))
}

/// A time field (an aware `datetime`) in Unix µs, as the core keeps times.
fn micros(ev: &Bound<'_, PyAny>, name: &Bound<'_, PyString>) -> PyResult<i64> {
    let seconds: f64 = ev.getattr(name)?.call_method0("timestamp")?.extract()?;
    Ok((seconds * 1e6).round() as i64)
}

/// Applies one event of `kind` (an [`EventKind`] number) stamped `ts` (Unix µs).
pub fn apply(
    core: &Core,
    py: Python<'_>,
    kind: u8,
    ev: &Bound<'_, PyAny>,
    ts: i64,
) -> PyResult<Effects> {
    let id = text(ev, intern!(py, "event_id"))?;
    let Some(kind) = EventKind::from_number(kind) else {
        return caught(py, || {
            Err(CoreError::bad("kind", format!("unknown event kind {kind}")))
        });
    };
    let fp = Fingerprint::new(kind as u8);
    match kind {
        EventKind::StockSet => stock(core, py, ev, &id, fp, StockMove::Set, ts),
        EventKind::StockAdjust => stock(core, py, ev, &id, fp, StockMove::Adjust, ts),
        EventKind::StockReceived => stock(core, py, ev, &id, fp, StockMove::Received, ts),
        EventKind::StockReleased => stock(core, py, ev, &id, fp, StockMove::Released, ts),
        EventKind::StockDamaged => stock(core, py, ev, &id, fp, StockMove::Damaged, ts),
        EventKind::StockInbound => stock(core, py, ev, &id, fp, StockMove::Inbound, ts),
        EventKind::StockTransfer => {
            let sku = text(ev, intern!(py, "sku"))?;
            if core.elsewhere(&sku) {
                return Ok(Effects::default());
            }
            let condition = text(ev, intern!(py, "condition"))?;
            let from = text(ev, intern!(py, "from_location"))?;
            let to = text(ev, intern!(py, "to_location"))?;
            let qty = int(ev, intern!(py, "qty"))?;
            let fp = fp
                .text(&sku)
                .text(&condition)
                .text(&from)
                .text(&to)
                .int(qty);
            caught(py, || {
                core.event(&id, fp.finish(), ts, |s, c, ts| {
                    let k = s.intern(c, &sku, &condition)?;
                    s.stock_transfer(c, k, &from, &to, qty, ts)
                })
            })
        }
        EventKind::OrderPlaced => {
            let order_id = text(ev, intern!(py, "order_id"))?;
            let channel = text(ev, intern!(py, "channel"))?;
            let lines = line_args(py, &ev.getattr(intern!(py, "lines"))?)?;
            let lines = borrowed(&lines);
            let fp = lines
                .iter()
                .fold(fp.text(&order_id).text(&channel), |fp, l| {
                    fp.text(l.0).text(l.1).text(l.2).int(l.3)
                });
            let part = core.partition();
            caught(py, || {
                core.event(&id, fp.finish(), ts, |s, c, ts| {
                    if part.is_whole() {
                        let fx = s.order_placed(c, &order_id, &channel, &lines, ts)?;
                        s.promotion_sales(&channel, &lines);
                        return Ok(fx);
                    }
                    let mine: Vec<_> = lines.iter().copied().filter(|l| s.owns(l.1)).collect();
                    let fx = s
                        .order_placed_share(c, &order_id, &channel, &lines, &mine, ts)
                        .map_err(|e| e.whole_event(part))?;
                    s.promotion_sales(&channel, &mine);
                    Ok(fx)
                })
            })
        }
        EventKind::OrderCancelled => {
            let order_id = text(ev, intern!(py, "order_id"))?;
            let line_ids: Option<Vec<String>> = ev.getattr(intern!(py, "line_ids"))?.extract()?;
            let fp = line_ids.iter().flatten().fold(
                fp.text(&order_id).int(line_ids.is_some().into()),
                |fp, l| fp.text(l),
            );
            caught(py, || {
                core.event(&id, fp.finish(), ts, |s, c, ts| {
                    if !s.order_known(&order_id) {
                        return s.park(&id, &order_id, ts, Waiting::Cancelled(line_ids));
                    }
                    s.order_cancelled(c, &order_id, line_ids.as_deref(), ts)
                })
            })
        }
        EventKind::OrderShipped => {
            let order_id = text(ev, intern!(py, "order_id"))?;
            let mut lines = Vec::new();
            for line in ev.getattr(intern!(py, "lines"))?.try_iter()? {
                let line = line?;
                lines.push((
                    text(&line, intern!(py, "line_id"))?.to_string(),
                    int(&line, intern!(py, "qty"))?,
                    text(&line, intern!(py, "location"))?.to_string(),
                ));
            }
            let fp = lines.iter().fold(fp.text(&order_id), |fp, l| {
                fp.text(&l.0).int(l.1).text(&l.2)
            });
            caught(py, || {
                core.event(&id, fp.finish(), ts, |s, c, ts| {
                    if !s.order_known(&order_id) {
                        return s.park(&id, &order_id, ts, Waiting::Shipped(lines));
                    }
                    s.order_shipped(c, &order_id, &lines, ts)
                })
            })
        }
        EventKind::OrderFulfillmentFailed => {
            let order_id = text(ev, intern!(py, "order_id"))?;
            let line_id = text(ev, intern!(py, "line_id"))?;
            let disposition = text(ev, intern!(py, "disposition"))?;
            let fp = fp.text(&order_id).text(&line_id).text(&disposition);
            caught(py, || {
                core.event(&id, fp.finish(), ts, |s, c, ts| {
                    if !s.order_known(&order_id) {
                        let waiting = Waiting::FulfillmentFailed {
                            line_id: line_id.to_string(),
                            disposition: disposition.to_string(),
                        };
                        return s.park(&id, &order_id, ts, waiting);
                    }
                    s.order_fulfillment_failed(c, &order_id, &line_id, &disposition, ts)
                })
            })
        }
        EventKind::OrderReturned => {
            let order_id = text(ev, intern!(py, "order_id"))?;
            let line_id = text(ev, intern!(py, "line_id"))?;
            let sku = text(ev, intern!(py, "sku"))?;
            if core.elsewhere(&sku) {
                return Ok(Effects::default());
            }
            let location = text(ev, intern!(py, "location"))?;
            let qty = int(ev, intern!(py, "qty"))?;
            let disposition = text(ev, intern!(py, "disposition"))?;
            let fp = fp
                .text(&order_id)
                .text(&line_id)
                .text(&sku)
                .text(&location)
                .int(qty)
                .text(&disposition);
            caught(py, || {
                core.event(&id, fp.finish(), ts, |s, c, ts| {
                    s.order_returned(
                        c,
                        &order_id,
                        &line_id,
                        &sku,
                        &location,
                        qty,
                        &disposition,
                        ts,
                    )
                })
            })
        }
        EventKind::PriceSet => {
            let sku = text(ev, intern!(py, "sku"))?;
            if core.elsewhere(&sku) {
                return Ok(Effects::default());
            }
            let currency = text(ev, intern!(py, "currency"))?;
            let price = decimal(ev, intern!(py, "price"))?;
            let cost = optional_decimal(ev, intern!(py, "cost"))?;
            let map = optional_decimal(ev, intern!(py, "map"))?;
            let fp = fp
                .text(&sku)
                .text(&currency)
                .text(&price)
                .text(cost.as_deref().unwrap_or("-"))
                .text(map.as_deref().unwrap_or("-"));
            caught(py, || {
                core.event(&id, fp.finish(), ts, |s, c, _| {
                    let fx = s.pricing.price_set(
                        &sku,
                        &currency,
                        &price,
                        cost.as_deref(),
                        map.as_deref(),
                    )?;
                    // A priced SKU is a listed one: `explain` and channel pages know it.
                    s.intern(c, &sku, "new")?;
                    Ok(fx)
                })
            })
        }
        EventKind::PromoSet => {
            let promo_id = text(ev, intern!(py, "promo_id"))?;
            let channels: Vec<String> = ev.getattr(intern!(py, "channels"))?.extract()?;
            let skus: Vec<String> = ev.getattr(intern!(py, "skus"))?.extract()?;
            let discount: f64 = ev.getattr(intern!(py, "discount_pct"))?.extract()?;
            let starts = micros(ev, intern!(py, "starts"))?;
            let ends = micros(ev, intern!(py, "ends"))?;
            let stock_cap: Option<i64> = ev.getattr(intern!(py, "stock_cap"))?.extract()?;
            let fp = skus.iter().fold(
                channels.iter().fold(fp.text(&promo_id), |fp, c| fp.text(c)),
                |fp, s| fp.text(s),
            );
            let fp = fp
                .int(discount.to_bits() as i64)
                .int(starts)
                .int(ends)
                .int(stock_cap.unwrap_or(-1));
            caught(py, || {
                core.event(&id, fp.finish(), ts, |s, c, _| {
                    let req = PromoRequest {
                        id: &promo_id,
                        channels: &channels,
                        skus: &skus,
                        discount_pct: discount,
                        starts,
                        ends,
                        stock_cap,
                    };
                    s.promo_set(c, &req)
                })
            })
        }
        EventKind::ClockTick => {
            let mut owned: Vec<(PyBackedStr, f64)> = Vec::new();
            let given: Option<Bound<'_, PyDict>> =
                ev.getattr(intern!(py, "push_lag_s"))?.extract()?;
            for (k, v) in given.iter().flat_map(|d| d.iter()) {
                owned.push((k.extract()?, v.extract()?));
            }
            let lags: Vec<(&str, f64)> = owned.iter().map(|(k, v)| (k.as_ref(), *v)).collect();
            caught(py, || core.tick(&id, ts, &lags))
        }
    }
}

/// A stock event at one location; `stock.set` carries `on_hand`, `stock.adjust` a
/// `delta`, the others a `qty`.
fn stock(
    core: &Core,
    py: Python<'_>,
    ev: &Bound<'_, PyAny>,
    id: &str,
    fp: Fingerprint,
    mv: StockMove,
    ts: i64,
) -> PyResult<Effects> {
    let qty_field = match mv {
        StockMove::Set => intern!(py, "on_hand"),
        StockMove::Adjust => intern!(py, "delta"),
        _ => intern!(py, "qty"),
    };
    let sku = text(ev, intern!(py, "sku"))?;
    if core.elsewhere(&sku) {
        return Ok(Effects::default());
    }
    let condition = text(ev, intern!(py, "condition"))?;
    let location = text(ev, intern!(py, "location"))?;
    let qty = int(ev, qty_field)?;
    let fp = fp.text(&sku).text(&condition).text(&location).int(qty);
    caught(py, || {
        core.event(id, fp.finish(), ts, |s, c, ts| {
            let k = s.intern(c, &sku, &condition)?;
            s.stock_at(c, k, mv, &location, qty, ts)
        })
    })
}
