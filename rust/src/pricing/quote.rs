//! One channel's price for one SKU: the candidate the rule computes, with its formula,
//! and the guards it must pass before it is published, in order: MAP floor, margin
//! floor after fees, parity, and the largest change from the last published price.

use super::money::Currency;
use super::rule::{Parity, PriceRule, BP};

/// The SKU's prices as the last `price.set` gave them, in minor units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SkuPrice {
    pub base: i64,
    pub cost: Option<i64>,
    pub map: Option<i64>,
    pub currency: Currency,
}

/// A promotion running on the channel: its id and discount.
#[derive(Clone, Copy, Debug)]
pub struct Running<'a> {
    pub id: &'a str,
    pub discount_bp: i64,
}

/// What the rule makes of the base price, before any guard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub price: i64,
    /// `round_99(19.00 × 1.15 × 0.80)`, with the promotion's id after it.
    pub formula: String,
    /// `list` or `promo`: why the price is what it is, in one word.
    pub word: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    Map,
    Margin,
    Parity,
    Deviation,
}

impl Guard {
    pub fn name(self) -> &'static str {
        match self {
            Guard::Map => "map",
            Guard::Margin => "margin",
            Guard::Parity => "parity",
            Guard::Deviation => "deviation",
        }
    }
}

/// One guard's verdict on a candidate: `limit` is the nearest price it allows (None
/// when no price would do, e.g. fees and floor above 100%).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub guard: Guard,
    pub ok: bool,
    pub limit: Option<i64>,
    pub text: String,
}

/// A factor in basis points as a plain decimal: 11500 → "1.15", 8000 → "0.8".
fn factor(bp: i64) -> String {
    let whole = bp.div_euclid(BP);
    let frac = format!("{:04}", bp.rem_euclid(BP));
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{frac}")
    }
}

/// Basis points as a percentage: 2200 → "22%", 1250 → "12.5%", −800 → "-8%".
pub fn pct(bp: i64) -> String {
    let sign = if bp < 0 { "-" } else { "" };
    format!("{sign}{}%", factor(bp.saturating_abs().saturating_mul(100)))
}

fn ceil_div(n: i128, d: i128) -> i128 {
    n.div_euclid(d) + i128::from(n.rem_euclid(d) != 0)
}

/// base × (1 + markup) [× (1 − discount)], to the minor unit half up, then rounded.
pub fn candidate(p: &SkuPrice, rule: &PriceRule, promo: Option<Running<'_>>) -> Candidate {
    let discount = promo.map_or(0, |r| r.discount_bp);
    let exact = i128::from(p.base) * i128::from(BP + rule.markup_bp) * i128::from(BP - discount);
    let den = i128::from(BP) * i128::from(BP);
    let cents = i64::try_from((exact + den / 2) / den).unwrap_or(i64::MAX);
    let price = rule.rounding.apply(cents, p.currency.unit());
    let mut terms = vec![p.currency.format(p.base)];
    if rule.markup_bp != 0 {
        terms.push(factor(BP + rule.markup_bp));
    }
    if discount != 0 {
        terms.push(factor(BP - discount));
    }
    let mut formula = format!("{}({})", rule.rounding.name(), terms.join(" × "));
    if let Some(r) = promo {
        formula.push_str(&format!(" promo {}", r.id));
    }
    Candidate {
        price,
        formula,
        word: if promo.is_some() { "promo" } else { "list" },
    }
}

/// The guards that need no other channel: MAP, margin after fees, change from `last`.
pub fn own_checks(price: i64, p: &SkuPrice, rule: &PriceRule, last: Option<i64>) -> Vec<Check> {
    let cur = &p.currency;
    let mut out = Vec::with_capacity(3);
    if let Some(map) = p.map {
        let ok = price >= map;
        out.push(Check {
            guard: Guard::Map,
            ok,
            limit: Some(map),
            text: format!(
                "map {} {}",
                cur.format(map),
                if ok { "ok" } else { "broken" }
            ),
        });
    }
    if let (Some(floor), Some(cost)) = (rule.margin_floor_bp, p.cost) {
        let (price_, cost_) = (i128::from(price), i128::from(cost));
        let kept = price_ * i128::from(BP - rule.fee_bp) - cost_ * i128::from(BP);
        let ok = price > 0 && kept >= i128::from(floor) * price_;
        let margin = if price > 0 {
            i64::try_from(kept / price_).unwrap_or(i64::MIN)
        } else {
            i64::MIN
        };
        let room = i128::from(BP - rule.fee_bp - floor);
        let limit = (room > 0)
            .then(|| i64::try_from(ceil_div(cost_ * i128::from(BP), room)).ok())
            .flatten();
        let shown = if price > 0 { pct(margin) } else { "-".into() };
        let text = if ok {
            format!("margin {shown} ≥ {} ok", pct(floor))
        } else {
            let needs = limit.map_or("no price".into(), |l| cur.format(l));
            format!("margin {shown} < {} broken (needs {needs})", pct(floor))
        };
        out.push(Check {
            guard: Guard::Margin,
            ok,
            limit,
            text,
        });
    }
    if let (Some(max), Some(last)) = (rule.max_deviation_bp, last.filter(|&l| l > 0)) {
        let (price_, last_) = (i128::from(price), i128::from(last));
        let change = (price_ - last_).abs() * i128::from(BP);
        let ok = change <= i128::from(max) * last_;
        let limit = if price >= last {
            (last_ * i128::from(BP + max)).div_euclid(i128::from(BP))
        } else {
            ceil_div(last_ * i128::from(BP - max).max(0), i128::from(BP))
        };
        let moved = i64::try_from(((price_ - last_) * i128::from(BP)) / last_).unwrap_or(i64::MAX);
        out.push(Check {
            guard: Guard::Deviation,
            ok,
            limit: i64::try_from(limit).ok(),
            text: format!(
                "change {}{} of {} {} {} {}",
                if moved >= 0 { "+" } else { "" },
                pct(moved),
                cur.format(last),
                if ok { "≤" } else { ">" },
                pct(max),
                if ok { "ok" } else { "broken" },
            ),
        });
    }
    out
}

/// Parity: under `not_above_lowest`, never above the lowest price another channel has.
pub fn parity_check(
    price: i64,
    cur: &Currency,
    rule: &PriceRule,
    lowest: Option<i64>,
) -> Option<Check> {
    let lowest = lowest.filter(|_| rule.parity == Parity::NotAboveLowest)?;
    let ok = price <= lowest;
    Some(Check {
        guard: Guard::Parity,
        ok,
        limit: Some(lowest),
        text: format!(
            "parity {} lowest elsewhere {} {}",
            if ok { "≤" } else { ">" },
            cur.format(lowest),
            if ok { "ok" } else { "broken" }
        ),
    })
}
