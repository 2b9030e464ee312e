//! Prices and promotions (CONTRACT 14): the SKUs' base prices from `price.set`, the
//! promotions from `promo.set`, and per SKU × channel the price last published.
//!
//! Events only record and mark SKUs dirty; prices are computed when the service drains
//! them (like quantities), so a burst of changes to one SKU publishes once. A SKU is
//! recomputed after its price or a promotion on it changes, after a policy change, and
//! when a promotion window opens or closes in log time (ticks). A price that breaks a
//! guard is not published: the last good one stays and `price_guard` is alerted.

pub mod carve;
pub mod money;
pub mod quote;
pub mod rule;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::effects::{AlertOut, AuditOut, Effects};
use crate::error::{CoreError, CoreResult};
use crate::hash::Map;
use crate::policy::Policy;
use crate::timefmt;
use carve::Carve;
use money::Currency;
pub use quote::SkuPrice;
use quote::{Candidate, Check, Running};

/// One priced channel of a SKU in a recompute: its rule, candidate and verdicts.
struct Quote<'a> {
    ch: usize,
    rule: &'a PriceRule,
    cand: Candidate<'a>,
    checks: Vec<Check>,
}
use rule::PriceRule;

/// No price published (or alerted) yet.
const NONE: i64 = -1;

/// A promotion as `promo.set` gave it: a discount on some SKUs and channels over a window
/// of log time [starts, ends).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Promo {
    pub id: String,
    pub channels: Vec<String>,
    pub skus: Vec<String>,
    pub discount_bp: i64,
    pub starts: i64,
    pub ends: i64,
    pub stock_cap: Option<i64>,
    /// Units its channels sold per SKU while it ran (for `stock_cap`).
    #[serde(default)]
    pub sold: BTreeMap<String, i64>,
}

impl Promo {
    fn overlaps(&self, starts: i64, ends: i64) -> bool {
        self.starts < ends && starts < self.ends
    }

    fn running(&self, now: i64) -> bool {
        self.starts <= now && now < self.ends
    }
}

/// What snapshots keep of the prices (format 4 on).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PricingImage {
    pub prices: Vec<(String, SkuPrice)>,
    pub promos: Vec<Promo>,
    /// (sku, channel id, price in minor units) last published.
    pub published: Vec<(String, String, i64)>,
}

/// A price to publish on a channel (`inv.price.<channel>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceOut {
    pub channel: u16,
    pub sku: String,
    pub price: String,
    pub currency: String,
    /// `list: round_99(19.00 × 1.15)`: a machine word, then the formula.
    pub reason: String,
}

/// A price held back by a guard (`price_guard`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardOut {
    pub rule: &'static str,
    pub channel: String,
    pub sku: String,
    pub price: String,
    /// The nearest price the guard allows; None when none would.
    pub limit: Option<String>,
    pub currency: String,
    pub detail: String,
}

#[derive(Debug, Default)]
pub struct PriceDrain {
    pub prices: Vec<PriceOut>,
    pub guards: Vec<GuardOut>,
}

/// One channel's price for a SKU, as `explain` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct PriceWhy {
    pub channel: String,
    pub currency: String,
    /// What the rule computes now.
    pub price: String,
    /// What the channel was last sent; None before the first.
    pub published: Option<String>,
    pub formula: String,
    pub promo: Option<String>,
    /// Each guard: (rule, ok, limit, words).
    pub guards: Vec<(String, bool, Option<String>, String)>,
    /// The first guard that holds the price back; None when it may be published.
    pub held_by: Option<String>,
    /// `price 21.99 = round_99(19.00 × 1.15) ; guards: map 18.00 ok`.
    pub text: String,
}

/// The rule of `sku` on channel `ch` (SKU > class > channel), None when it is not priced.
fn rule_of<'p>(policy: &'p Policy, sku: &str, ch: usize) -> Option<&'p PriceRule> {
    let profile = policy.rule(sku).map_or(0, |r| r.profile as usize);
    policy.tables.profiles.get(profile)?.get(ch)?.price.as_ref()
}

#[derive(Default)]
pub struct Pricing {
    slot_of: Map<Box<str>, u32>,
    names: Vec<Box<str>>,
    book: Vec<Option<SkuPrice>>,
    /// Ids of the promotions naming each slot's SKU.
    promos_of: Vec<Vec<String>>,
    promos: BTreeMap<String, Promo>,
    /// Channel ids of the columns of `published` and `alerted`.
    channels: Vec<String>,
    /// slot × channel: the price last published, or NONE.
    published: Vec<i64>,
    /// slot × channel: the held-back price last alerted, so a held price alerts once.
    alerted: Vec<i64>,
    dirty: Vec<u32>,
    marked: Vec<bool>,
    /// SKU → the set-aside of its running promotion with a `stock_cap`.
    carves: Map<Box<str>, Carve>,
    /// SKUs whose set-aside changed: their shown quantities must be recomputed.
    reshow: Vec<String>,
    /// The log's clock as last seen, for set-asides rebuilt between ticks.
    now: i64,
}

/// A `promo.set` event's fields, as the core takes them.
#[derive(Clone, Copy, Debug)]
pub struct PromoRequest<'a> {
    pub id: &'a str,
    pub channels: &'a [String],
    pub skus: &'a [String],
    pub discount_pct: f64,
    pub starts: i64,
    pub ends: i64,
    pub stock_cap: Option<i64>,
}

impl Pricing {
    pub fn new(policy: &Policy) -> Pricing {
        Pricing {
            channels: policy
                .tables
                .channels
                .iter()
                .map(|c| c.id.clone())
                .collect(),
            now: crate::state::NO_TIME,
            ..Pricing::default()
        }
    }

    fn width(&self) -> usize {
        self.channels.len()
    }

    fn slot(&mut self, sku: &str) -> u32 {
        if let Some(&s) = self.slot_of.get(sku) {
            return s;
        }
        let s = self.names.len() as u32;
        self.slot_of.insert(sku.into(), s);
        self.names.push(sku.into());
        self.book.push(None);
        self.promos_of.push(Vec::new());
        self.marked.push(false);
        let w = self.width();
        self.published.extend(std::iter::repeat_n(NONE, w));
        self.alerted.extend(std::iter::repeat_n(NONE, w));
        s
    }

    fn mark(&mut self, slot: u32) {
        if !std::mem::replace(&mut self.marked[slot as usize], true) {
            self.dirty.push(slot);
        }
    }

    /// `price.set`: validates everything, then records. A SKU keeps the currency its
    /// first price set; a MAP above the price is refused (the price would never pass).
    pub fn price_set(
        &mut self,
        sku: &str,
        currency: &str,
        price: &str,
        cost: Option<&str>,
        map: Option<&str>,
    ) -> CoreResult<Effects> {
        let cur = Currency::parse("currency", currency)?;
        let base = cur.amount("price", price)?;
        if base == 0 {
            return Err(CoreError::bad(
                "price",
                "0 is not a price; at least one minor unit",
            ));
        }
        let cost = cost.map(|c| cur.amount("cost", c)).transpose()?;
        let map = map.map(|m| cur.amount("map", m)).transpose()?;
        if let Some(m) = map.filter(|&m| m > base) {
            return Err(CoreError::bad(
                "map",
                format!(
                    "MAP {} above the price {} {currency}: no channel could publish it",
                    cur.format(m),
                    cur.format(base)
                ),
            ));
        }
        let known = self.slot_of.get(sku).and_then(|&s| self.book[s as usize]);
        if let Some(was) = known.filter(|k| k.currency != cur) {
            return Err(CoreError::bad(
                "currency",
                format!(
                    "{currency} differs from {sku:?}'s currency {}; a SKU keeps one currency",
                    was.currency.code()
                ),
            ));
        }
        let slot = self.slot(sku);
        self.book[slot as usize] = Some(SkuPrice {
            base,
            cost,
            map,
            currency: cur,
        });
        self.mark(slot);
        let mut fx = Effects::default();
        fx.audit.push(AuditOut {
            sku: sku.to_string(),
            condition: String::new(),
            location: None,
            field: "price",
            before: known.map_or(0, |k| k.base),
            after: base,
        });
        Ok(fx)
    }

    /// `promo.set`: a new promotion, or a new version of one with the same id. Refused:
    /// a window that ends before it starts, a channel that is not priced, a discount
    /// beyond a channel's `max_discount_pct`, and a window that overlaps another
    /// promotion on the same SKU and channel. Another promotion on the same SKU on other
    /// channels at the same time is allowed and alerted (`promo_collision`).
    pub fn promo_set(&mut self, policy: &Policy, req: &PromoRequest<'_>) -> CoreResult<Effects> {
        let PromoRequest {
            id,
            channels,
            skus,
            discount_pct,
            starts,
            ends,
            stock_cap,
        } = *req;
        timefmt::check_time("starts", starts)?;
        timefmt::check_time("ends", ends)?;
        if ends <= starts {
            return Err(CoreError::bad(
                "ends",
                format!(
                    "promotion {id:?} ends {} before it starts {}",
                    timefmt::rfc3339(ends),
                    timefmt::rfc3339(starts)
                ),
            ));
        }
        if !(discount_pct.is_finite() && discount_pct > 0.0 && discount_pct < 100.0) {
            return Err(CoreError::bad(
                "discount_pct",
                "must be above 0 and below 100",
            ));
        }
        let discount_bp = (discount_pct * 100.0).round() as i64;
        if let Some(cap) = stock_cap.filter(|&c| c < 0) {
            return Err(CoreError::bad("stock_cap", format!("{cap}: must be ≥ 0")));
        }
        for (i, channel) in channels.iter().enumerate() {
            let ch = *policy.channel_index.get(channel.as_str()).ok_or_else(|| {
                CoreError::bad(
                    format!("channels[{i}]"),
                    format!("unknown channel {channel:?}"),
                )
            })? as usize;
            for sku in skus {
                let rule = rule_of(policy, sku, ch).ok_or_else(|| {
                    CoreError::bad(
                        format!("channels[{i}]"),
                        format!("channel {channel:?} has no price table for {sku:?}"),
                    )
                })?;
                if discount_bp > rule.max_discount_bp {
                    return Err(CoreError::bad(
                        "discount_pct",
                        format!(
                            "{} on {channel:?} for {sku:?}: beyond its max_discount_pct {}",
                            quote::pct(discount_bp),
                            quote::pct(rule.max_discount_bp)
                        ),
                    ));
                }
            }
        }
        let mut collisions = Vec::new();
        for other in self
            .promos
            .values()
            .filter(|p| p.id != id && p.overlaps(starts, ends))
        {
            for sku in skus.iter().filter(|s| other.skus.contains(s)) {
                if let Some(ch) = channels.iter().find(|c| other.channels.contains(c)) {
                    return Err(CoreError::bad(
                        "starts",
                        format!(
                            "overlaps promotion {:?} on {sku:?} and {ch:?}: one promotion per \
                             SKU and channel at a time",
                            other.id
                        ),
                    ));
                }
                collisions.push((sku.clone(), other.id.clone()));
            }
        }
        if let Some(old) = self.promos.remove(id) {
            self.unlink(&old);
        }
        let promo = Promo {
            id: id.to_string(),
            channels: channels.to_vec(),
            skus: skus.to_vec(),
            discount_bp,
            starts,
            ends,
            stock_cap,
            sold: BTreeMap::new(),
        };
        for sku in skus {
            let slot = self.slot(sku);
            self.promos_of[slot as usize].push(id.to_string());
            self.mark(slot);
        }
        self.promos.insert(id.to_string(), promo);
        self.refresh_carves(policy);
        let mut fx = Effects::default();
        for (sku, other) in collisions {
            fx.alerts.push(AlertOut {
                kind: "promo_collision",
                sku: Some(sku.clone()),
                channel: None,
                detail: format!(
                    "promotions {id:?} and {other:?} both discount {sku:?} from {} to {} on \
                     different channels: shoppers see two prices (parity risk)",
                    timefmt::rfc3339(starts),
                    timefmt::rfc3339(ends)
                ),
            });
        }
        Ok(fx)
    }

    fn unlink(&mut self, promo: &Promo) {
        for sku in &promo.skus {
            if let Some(&slot) = self.slot_of.get(sku.as_str()) {
                self.promos_of[slot as usize].retain(|p| *p != promo.id);
                self.mark(slot);
            }
        }
    }

    /// The log's clock moved from `before` to `now`: SKUs whose promotion opened or
    /// closed in between are recomputed, and promotions over by `now` are forgotten.
    pub fn clock_moved(&mut self, policy: &Policy, before: i64, now: i64) {
        let edge = |t: i64| before < t && t <= now;
        let crossed: Vec<Promo> = self
            .promos
            .values()
            .filter(|p| edge(p.starts) || edge(p.ends) || p.ends <= now)
            .cloned()
            .collect();
        for p in crossed {
            for sku in &p.skus {
                if let Some(&slot) = self.slot_of.get(sku.as_str()) {
                    self.mark(slot);
                }
            }
            if p.ends <= now {
                self.promos.remove(&p.id);
                self.unlink(&p);
            }
        }
        self.now = now;
        let waves: Vec<String> = self
            .carves
            .iter()
            .filter(|(_, cv)| (1..carve::WAVES).any(|k| edge(cv.wave_time(k))))
            .map(|(sku, _)| sku.to_string())
            .collect();
        self.reshow.extend(waves);
        self.refresh_carves(policy);
    }

    /// Rebuilds the set-asides of the promotions running at the log's clock; SKUs
    /// whose set-aside changed go to `reshow`.
    fn refresh_carves(&mut self, policy: &Policy) {
        let now = self.now;
        let mut carves: Map<Box<str>, Carve> = Map::default();
        for p in self.promos.values().filter(|p| p.running(now)) {
            let Some(cap) = p.stock_cap else { continue };
            let mask = p
                .channels
                .iter()
                .filter_map(|c| policy.channel_index.get(c.as_str()))
                .fold(0u64, |m, &ch| m | 1 << ch);
            for sku in &p.skus {
                let carve = Carve {
                    promo: p.id.clone(),
                    mask,
                    cap,
                    sold: p.sold.get(sku).copied().unwrap_or(0),
                    starts: p.starts,
                    ends: p.ends,
                };
                carves.insert(sku.as_str().into(), carve);
            }
        }
        for (sku, cv) in &carves {
            if self.carves.get(sku) != Some(cv) {
                self.reshow.push(sku.to_string());
            }
        }
        for sku in self.carves.keys().filter(|s| !carves.contains_key(*s)) {
            self.reshow.push(sku.to_string());
        }
        self.carves = carves;
    }

    /// Units of `sku` sold on channel `ch`: counted against a running set-aside there.
    pub fn sold(&mut self, ch: u16, sku: &str, qty: i64) {
        let Some(cv) = self
            .carves
            .get_mut(sku)
            .filter(|cv| cv.mask & (1 << ch) != 0)
        else {
            return;
        };
        cv.sold = cv.sold.saturating_add(qty);
        if let Some(p) = self.promos.get_mut(&cv.promo) {
            *p.sold.entry(sku.to_string()).or_default() = cv.sold;
        }
    }

    /// The set-aside of `sku` now, if a running promotion has one.
    pub fn carve(&self, sku: &str) -> Option<&Carve> {
        if self.carves.is_empty() {
            return None;
        }
        self.carves.get(sku)
    }

    /// SKUs whose set-aside changed since the last call.
    pub fn take_reshow(&mut self) -> Vec<String> {
        std::mem::take(&mut self.reshow)
    }

    /// A new policy: the columns follow the channels by id, and every priced SKU is
    /// recomputed.
    pub fn adopt(&mut self, policy: &Policy) {
        let new: Vec<String> = policy
            .tables
            .channels
            .iter()
            .map(|c| c.id.clone())
            .collect();
        if new != self.channels {
            let old_at: Vec<Option<usize>> = new
                .iter()
                .map(|id| self.channels.iter().position(|c| c == id))
                .collect();
            let (w_old, w_new) = (self.width(), new.len());
            let remap = |table: &[i64]| -> Vec<i64> {
                (0..self.names.len())
                    .flat_map(|s| {
                        old_at
                            .iter()
                            .map(move |o| o.map_or(NONE, |o| table[s * w_old + o]))
                    })
                    .collect()
            };
            self.published = remap(&self.published);
            self.alerted = remap(&self.alerted);
            debug_assert_eq!(self.published.len(), self.names.len() * w_new);
            self.channels = new;
        }
        for slot in 0..self.names.len() as u32 {
            if self.book[slot as usize].is_some() {
                self.mark(slot);
            }
        }
        self.refresh_carves(policy);
    }

    fn running(&self, slot: usize, channel: &str, now: i64) -> Option<Running<'_>> {
        self.promos_of[slot]
            .iter()
            .filter_map(|id| self.promos.get(id))
            .find(|p| p.running(now) && p.channels.iter().any(|c| c == channel))
            .map(|p| Running {
                id: &p.id,
                discount_bp: p.discount_bp,
            })
    }

    /// The price last published for `sku` on channel `ch`, as (decimal, currency code):
    /// what a connector that missed it is sent on resync. None when none was.
    pub fn published_price(&self, sku: &str, ch: usize) -> Option<(String, String)> {
        let s = *self.slot_of.get(sku)? as usize;
        if ch >= self.width() {
            return None;
        }
        let price = self.last_published(s, ch)?;
        let cur = self.book[s]?.currency;
        Some((cur.format(price), cur.code().to_string()))
    }

    fn last_published(&self, slot: usize, ch: usize) -> Option<i64> {
        Some(self.published[slot * self.width() + ch]).filter(|&l| l != NONE)
    }

    /// Each priced channel of a slot with its candidate and every guard's verdict.
    /// Parity compares with what the other channels have after this recompute: their
    /// new price where it passed its own guards, else their last published one.
    fn quotes<'a>(
        &'a self,
        policy: &'a Policy,
        slot: usize,
        p: &SkuPrice,
        now: i64,
    ) -> Vec<Quote<'a>> {
        let name = &self.names[slot];
        let w = self.width();
        let mut quotes: Vec<Quote<'a>> = (0..w)
            .filter_map(|ch| {
                let rule = rule_of(policy, name, ch)?;
                let cand = quote::candidate(p, rule, self.running(slot, &self.channels[ch], now));
                let checks = quote::own_checks(cand.price, p, rule, self.last_published(slot, ch));
                Some(Quote {
                    ch,
                    rule,
                    cand,
                    checks,
                })
            })
            .collect();
        let mut after: Vec<Option<i64>> = (0..w).map(|ch| self.last_published(slot, ch)).collect();
        for q in quotes.iter().filter(|q| q.checks.iter().all(|k| k.ok)) {
            after[q.ch] = Some(q.cand.price);
        }
        for q in &mut quotes {
            let lowest = (0..w).filter(|&d| d != q.ch).filter_map(|d| after[d]).min();
            q.checks
                .extend(quote::parity_check(q.cand.price, q.rule, lowest));
        }
        quotes
    }

    /// Recomputes up to `max` dirty SKUs at log time `now`: the prices that changed and
    /// passed every guard, and the guards that held one back (each held price once).
    pub fn drain(&mut self, policy: &Policy, now: i64, max: usize) -> PriceDrain {
        let mut out = PriceDrain::default();
        let take = self.dirty.len().min(max);
        let slots: Vec<u32> = self.dirty.drain(..take).collect();
        let w = self.width();
        for slot in slots {
            let s = slot as usize;
            self.marked[s] = false;
            let Some(p) = self.book[s] else { continue };
            let cur = p.currency;
            // Decide on the quotes first (they borrow the promotions), then record.
            let mut passed: Vec<(usize, i64)> = Vec::new();
            let mut held: Vec<(usize, i64)> = Vec::new();
            for q in self.quotes(policy, s, &p, now) {
                let at = s * w + q.ch;
                match q.checks.iter().find(|k| !k.ok) {
                    None => {
                        passed.push((q.ch, q.cand.price));
                        if self.published[at] != q.cand.price {
                            out.prices.push(PriceOut {
                                channel: q.ch as u16,
                                sku: self.names[s].to_string(),
                                price: cur.format(q.cand.price),
                                currency: cur.code().to_string(),
                                reason: format!(
                                    "{}: {}",
                                    q.cand.word(),
                                    q.cand.formula(&p, q.rule)
                                ),
                            });
                        }
                    }
                    Some(broken) if self.alerted[at] != q.cand.price => {
                        held.push((q.ch, q.cand.price));
                        let kept = self
                            .last_published(s, q.ch)
                            .map_or("nothing published yet".to_string(), |l| {
                                format!("{} stays", cur.format(l))
                            });
                        out.guards.push(GuardOut {
                            rule: broken.guard.name(),
                            channel: self.channels[q.ch].clone(),
                            sku: self.names[s].to_string(),
                            price: cur.format(q.cand.price),
                            limit: broken.limit.map(|l| cur.format(l)),
                            currency: cur.code().to_string(),
                            detail: format!(
                                "{} {} = {} held back on {}: {}; {kept}",
                                cur.code(),
                                cur.format(q.cand.price),
                                q.cand.formula(&p, q.rule),
                                self.channels[q.ch],
                                broken.text(&cur)
                            ),
                        });
                    }
                    Some(_) => {}
                }
            }
            for (ch, price) in passed {
                self.published[s * w + ch] = price;
                self.alerted[s * w + ch] = NONE;
            }
            for (ch, price) in held {
                self.alerted[s * w + ch] = price;
            }
        }
        out
    }

    /// Each priced channel's price for `sku` as the next recompute would see it, with
    /// its formula and guards.
    pub fn explain(&self, policy: &Policy, sku: &str, now: i64) -> Vec<PriceWhy> {
        let Some(&slot) = self.slot_of.get(sku) else {
            return vec![];
        };
        let s = slot as usize;
        let Some(p) = self.book[s] else { return vec![] };
        let cur = p.currency;
        let mut out = Vec::new();
        for q in self.quotes(policy, s, &p, now) {
            let published = self.last_published(s, q.ch);
            let held_by = q
                .checks
                .iter()
                .find(|k| !k.ok)
                .map(|k| k.guard.name().to_string());
            let words: Vec<String> = q.checks.iter().map(|k| k.text(&cur)).collect();
            let price = cur.format(q.cand.price);
            let formula = q.cand.formula(&p, q.rule);
            let guards = if words.is_empty() {
                "none".into()
            } else {
                words.join(", ")
            };
            let mut text = format!("price {price} = {formula} ; guards: {guards}");
            if let Some(rule) = &held_by {
                let kept = published.map_or("nothing".into(), |l| cur.format(l));
                text.push_str(&format!(" ; held back by {rule}, {kept} published"));
            }
            out.push(PriceWhy {
                channel: self.channels[q.ch].clone(),
                currency: cur.code().to_string(),
                price,
                published: published.map(|l| cur.format(l)),
                promo: q.cand.promo.map(|r| r.id.to_string()),
                formula,
                guards: q
                    .checks
                    .iter()
                    .zip(words)
                    .map(|(k, words)| {
                        (
                            k.guard.name().to_string(),
                            k.ok,
                            k.limit.map(|l| cur.format(l)),
                            words,
                        )
                    })
                    .collect(),
                held_by,
                text,
            });
        }
        out
    }

    pub fn image(&self) -> PricingImage {
        let w = self.width();
        PricingImage {
            prices: self
                .names
                .iter()
                .zip(&self.book)
                .filter_map(|(n, b)| b.map(|b| (n.to_string(), b)))
                .collect(),
            promos: self.promos.values().cloned().collect(),
            published: (0..self.names.len())
                .flat_map(|s| (0..w).map(move |ch| (s, ch)))
                .filter(|&(s, ch)| self.published[s * w + ch] != NONE)
                .map(|(s, ch)| {
                    (
                        self.names[s].to_string(),
                        self.channels[ch].clone(),
                        self.published[s * w + ch],
                    )
                })
                .collect(),
        }
    }

    /// Prices from a snapshot under `policy`; a published price of a channel the
    /// policy no longer has is dropped. Nothing is dirty: what was published stands.
    pub fn from_image(policy: &Policy, image: PricingImage, now: i64) -> Pricing {
        let mut p = Pricing::new(policy);
        for (sku, price) in image.prices {
            let slot = p.slot(&sku);
            p.book[slot as usize] = Some(price);
        }
        for promo in image.promos {
            for sku in &promo.skus {
                let slot = p.slot(sku);
                p.promos_of[slot as usize].push(promo.id.clone());
            }
            p.promos.insert(promo.id.clone(), promo);
        }
        p.now = now;
        p.refresh_carves(policy);
        p.reshow.clear();
        let w = p.width();
        for (sku, channel, price) in image.published {
            if let Some(ch) = p.channels.iter().position(|c| *c == channel) {
                let slot = p.slot(&sku) as usize;
                p.published[slot * w + ch] = price;
            }
        }
        p
    }
}
