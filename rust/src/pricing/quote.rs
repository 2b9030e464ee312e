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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Running<'a> {
    pub id: &'a str,
    pub discount_bp: i64,
}

/// What the rule makes of the base price, before any guard. The formula is written
/// only for a price that is published, alerted or explained ([`Candidate::formula`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub price: i64,
    pub promo: Option<Running<'a>>,
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

/// One guard's verdict on a price: `limit` is the nearest price it allows (None when no
/// price would do, e.g. fees and floor above 100%); `figure` and `bound` are what it
/// compared (the margin and its floor, the change and its maximum, in basis points) and
/// `from` the price a change is measured from. Words only on demand ([`Check::text`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Check {
    pub guard: Guard,
    pub ok: bool,
    pub limit: Option<i64>,
    figure: i64,
    bound: i64,
    from: i64,
}

impl Check {
    /// The verdict in words: `map 18.00 ok`, `margin 8% < 15% broken (needs 21.43)`.
    pub fn text(&self, cur: &Currency) -> String {
        let verdict = if self.ok { "ok" } else { "broken" };
        let limit = self.limit.map_or("no price".into(), |l| cur.format(l));
        match self.guard {
            Guard::Map => format!("map {limit} {verdict}"),
            Guard::Margin if self.ok => {
                format!("margin {} ≥ {} ok", pct(self.figure), pct(self.bound))
            }
            Guard::Margin => format!(
                "margin {} < {} broken (needs {limit})",
                pct(self.figure),
                pct(self.bound)
            ),
            Guard::Parity => format!(
                "parity {} lowest elsewhere {limit} {verdict}",
                if self.ok { "≤" } else { ">" }
            ),
            Guard::Deviation => format!(
                "change {}{} of {} {} {} {verdict}",
                if self.figure >= 0 { "+" } else { "" },
                pct(self.figure),
                cur.format(self.from),
                if self.ok { "≤" } else { ">" },
                pct(self.bound),
            ),
        }
    }
}

/// A factor in basis points as a plain decimal: 11500 → "1.15", 8000 → "0.8".
fn write_factor(out: &mut String, bp: i64) {
    use std::fmt::Write;
    let (whole, mut frac) = (bp.div_euclid(BP), bp.rem_euclid(BP));
    // Writing to a String cannot fail.
    let _ = write!(out, "{whole}");
    if frac != 0 {
        let mut width = 4;
        while frac % 10 == 0 {
            frac /= 10;
            width -= 1;
        }
        let _ = write!(out, ".{frac:0width$}");
    }
}

/// Basis points as a percentage: 2200 → "22%", 1250 → "12.5%", −800 → "-8%".
pub fn pct(bp: i64) -> String {
    let mut out = String::new();
    if bp < 0 {
        out.push('-');
    }
    write_factor(&mut out, bp.saturating_abs().saturating_mul(100));
    out.push('%');
    out
}

fn ceil_div(n: i128, d: i128) -> i128 {
    n.div_euclid(d) + i128::from(n.rem_euclid(d) != 0)
}

/// base × (1 + markup) [× (1 − discount)], to the minor unit half up, then rounded.
pub fn candidate<'a>(p: &SkuPrice, rule: &PriceRule, promo: Option<Running<'a>>) -> Candidate<'a> {
    let discount = promo.map_or(0, |r| r.discount_bp);
    let exact = i128::from(p.base) * i128::from(BP + rule.markup_bp) * i128::from(BP - discount);
    let den = i128::from(BP) * i128::from(BP);
    let minor = i64::try_from((exact + den / 2) / den).unwrap_or(i64::MAX);
    Candidate {
        price: rule.rounding.apply(minor, p.currency.unit()),
        promo,
    }
}

impl Candidate<'_> {
    /// `list` or `promo`: why the price is what it is, in one word.
    pub fn word(&self) -> &'static str {
        if self.promo.is_some() {
            "promo"
        } else {
            "list"
        }
    }

    /// `round_99(19.00 × 1.15 × 0.8) promo spring`.
    pub fn formula(&self, p: &SkuPrice, rule: &PriceRule) -> String {
        let mut out = String::with_capacity(48);
        rule.rounding.write_name(&mut out);
        out.push('(');
        out.push_str(&p.currency.format(p.base));
        if rule.markup_bp != 0 {
            out.push_str(" × ");
            write_factor(&mut out, BP + rule.markup_bp);
        }
        if let Some(r) = self.promo {
            out.push_str(" × ");
            write_factor(&mut out, BP - r.discount_bp);
        }
        out.push(')');
        if let Some(r) = self.promo {
            out.push_str(" promo ");
            out.push_str(r.id);
        }
        out
    }
}

/// The guards that need no other channel: MAP, margin after fees, change from `last`.
pub fn own_checks(price: i64, p: &SkuPrice, rule: &PriceRule, last: Option<i64>) -> Vec<Check> {
    let mut out = Vec::with_capacity(4);
    let check = |guard, ok, limit| Check {
        guard,
        ok,
        limit,
        figure: 0,
        bound: 0,
        from: 0,
    };
    if let Some(map) = p.map {
        out.push(check(Guard::Map, price >= map, Some(map)));
    }
    if let (Some(floor), Some(cost)) = (rule.margin_floor_bp, p.cost) {
        let (price_, cost_) = (i128::from(price), i128::from(cost));
        let kept = price_ * i128::from(BP - rule.fee_bp) - cost_ * i128::from(BP);
        let ok = price > 0 && kept >= i128::from(floor) * price_;
        let room = i128::from(BP - rule.fee_bp - floor);
        let limit = (room > 0)
            .then(|| i64::try_from(ceil_div(cost_ * i128::from(BP), room)).ok())
            .flatten();
        let margin = if price > 0 {
            i64::try_from(kept / price_).unwrap_or(i64::MIN)
        } else {
            i64::MIN
        };
        out.push(Check {
            figure: margin,
            bound: floor,
            ..check(Guard::Margin, ok, limit)
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
            figure: moved,
            bound: max,
            from: last,
            ..check(Guard::Deviation, ok, i64::try_from(limit).ok())
        });
    }
    out
}

/// Parity: under `not_above_lowest`, never above the lowest price another channel has.
pub fn parity_check(price: i64, rule: &PriceRule, lowest: Option<i64>) -> Option<Check> {
    let lowest = lowest.filter(|_| rule.parity == Parity::NotAboveLowest)?;
    Some(Check {
        guard: Guard::Parity,
        ok: price <= lowest,
        limit: Some(lowest),
        figure: 0,
        bound: 0,
        from: 0,
    })
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::rule::Rounding;

    fn usd(base: i64, cost: Option<i64>, map: Option<i64>) -> SkuPrice {
        SkuPrice {
            base,
            cost,
            map,
            currency: Currency::parse("currency", "USD").expect("USD"),
        }
    }

    fn rule(markup_bp: i64) -> PriceRule {
        PriceRule {
            markup_bp,
            fee_bp: 1500,
            rounding: Rounding::Charm(99),
            max_deviation_bp: Some(7900),
            margin_floor_bp: Some(1500),
            parity: Parity::NotAboveLowest,
            max_discount_bp: 5000,
        }
    }

    #[test]
    fn the_candidate_is_exact_and_names_its_formula() {
        let (p, r) = (usd(1900, None, None), rule(1500));
        let c = candidate(&p, &r, None);
        assert_eq!(c.price, 2199);
        assert_eq!(c.formula(&p, &r), "round_99(19.00 × 1.15)");
        let promo = Some(Running {
            id: "x",
            discount_bp: 2000,
        });
        let c = candidate(&p, &r, promo);
        // 19.00 × 1.15 × 0.8 = 17.48 → 17.99
        assert_eq!((c.price, c.word()), (1799, "promo"));
        assert_eq!(c.formula(&p, &r), "round_99(19.00 × 1.15 × 0.8) promo x");
        let margin = own_checks(1999, &usd(1900, Some(1600), None), &rule(0), None);
        assert_eq!(
            margin[0].text(&p.currency),
            "margin 4.95% < 15% broken (needs 22.86)"
        );
    }

    #[test]
    fn each_guard_names_the_nearest_price_it_allows() {
        let r = rule(0);
        let p = usd(1900, Some(1600), Some(2000));
        let checks = own_checks(1999, &p, &r, Some(1000));
        let by = |g: Guard| checks.iter().find(|c| c.guard == g).expect("checked");
        assert!(!by(Guard::Map).ok && by(Guard::Map).limit == Some(2000));
        // (p × 0.85 − 16) / p ≥ 0.15 ⇔ p ≥ 16 / 0.70 = 22.857… → 22.86
        assert_eq!(
            (by(Guard::Margin).ok, by(Guard::Margin).limit),
            (false, Some(2286))
        );
        assert!(own_checks(2286, &p, &r, None)[1].ok);
        assert!(!own_checks(2285, &p, &r, None)[1].ok);
        // +99.9% from 10.00 is beyond 79%: at most 17.90
        assert_eq!(
            (by(Guard::Deviation).ok, by(Guard::Deviation).limit),
            (false, Some(1790))
        );
        assert!(own_checks(1790, &p, &r, Some(1000))[2].ok);
        let parity = parity_check(1999, &r, Some(1899)).expect("parity");
        assert_eq!((parity.ok, parity.limit), (false, Some(1899)));
    }

    #[test]
    fn percentages_print_without_float_noise() {
        assert_eq!(pct(2200), "22%");
        assert_eq!(pct(1250), "12.5%");
        assert_eq!(pct(-800), "-8%");
    }
}
