//! Prices and promotions (CONTRACT 14): the SKUs' base prices from `price.set`, the
//! promotions from `promo.set`, and per SKU × channel the price last published.
//!
//! Events only record and mark SKUs dirty; prices are computed when the service drains
//! them (like quantities), so a burst of changes to one SKU publishes once. A SKU is
//! recomputed after its price or a promotion on it changes, after a policy change, and
//! when a promotion window opens or closes in log time (ticks). A price that breaks a
//! guard is not published: the last good one stays and `price_guard` is alerted.

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
use money::Currency;
pub use quote::SkuPrice;
use quote::{Candidate, Check, Running};
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
    #[allow(clippy::too_many_arguments)]
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
    #[allow(clippy::too_many_arguments)]
    pub fn promo_set(
        &mut self,
        policy: &Policy,
        id: &str,
        channels: &[String],
        skus: &[String],
        discount_pct: f64,
        starts: i64,
        ends: i64,
        stock_cap: Option<i64>,
    ) -> CoreResult<Effects> {
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
        };
        for sku in skus {
            let slot = self.slot(sku);
            self.promos_of[slot as usize].push(id.to_string());
            self.mark(slot);
        }
        self.promos.insert(id.to_string(), promo);
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
    pub fn clock_moved(&mut self, before: i64, now: i64) {
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

    /// Per priced channel of a slot: its candidate and the guards that need no other
    /// channel.
    fn candidates(
        &self,
        policy: &Policy,
        slot: usize,
        now: i64,
    ) -> Vec<Option<(Candidate, Vec<Check>)>> {
        let name = &self.names[slot];
        let Some(p) = self.book[slot] else {
            return vec![None; self.width()];
        };
        (0..self.width())
            .map(|ch| {
                let rule = rule_of(policy, name, ch)?;
                let c = quote::candidate(&p, rule, self.running(slot, &self.channels[ch], now));
                let last = Some(self.published[slot * self.width() + ch]).filter(|&l| l != NONE);
                let checks = quote::own_checks(c.price, &p, rule, last);
                Some((c, checks))
            })
            .collect()
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
            let mut cands = self.candidates(policy, s, now);
            // Parity compares with what the other channels will have after this round:
            // their new price where it passed its own guards, else their last one.
            let after: Vec<Option<i64>> = (0..w)
                .map(|ch| match &cands[ch] {
                    Some((c, checks)) if checks.iter().all(|k| k.ok) => Some(c.price),
                    _ => Some(self.published[s * w + ch]).filter(|&l| l != NONE),
                })
                .collect();
            for ch in 0..w {
                let Some((c, checks)) = cands[ch].as_mut() else {
                    continue;
                };
                let Some(rule) = rule_of(policy, &self.names[s], ch) else {
                    continue;
                };
                let lowest = (0..w).filter(|&d| d != ch).filter_map(|d| after[d]).min();
                checks.extend(quote::parity_check(c.price, &p.currency, rule, lowest));
                let at = s * w + ch;
                match checks.iter().find(|k| !k.ok) {
                    None => {
                        self.alerted[at] = NONE;
                        if self.published[at] != c.price {
                            self.published[at] = c.price;
                            out.prices.push(PriceOut {
                                channel: ch as u16,
                                sku: self.names[s].to_string(),
                                price: p.currency.format(c.price),
                                currency: p.currency.code().to_string(),
                                reason: format!("{}: {}", c.word, c.formula),
                            });
                        }
                    }
                    Some(broken) if self.alerted[at] != c.price => {
                        self.alerted[at] = c.price;
                        let kept = Some(self.published[at])
                            .filter(|&l| l != NONE)
                            .map_or("nothing published yet".to_string(), |l| {
                                format!("{} stays", p.currency.format(l))
                            });
                        out.guards.push(GuardOut {
                            rule: broken.guard.name(),
                            channel: self.channels[ch].clone(),
                            sku: self.names[s].to_string(),
                            price: p.currency.format(c.price),
                            limit: broken.limit.map(|l| p.currency.format(l)),
                            currency: p.currency.code().to_string(),
                            detail: format!(
                                "{} {} = {} held back on {}: {}; {kept}",
                                p.currency.code(),
                                p.currency.format(c.price),
                                c.formula,
                                self.channels[ch],
                                broken.text
                            ),
                        });
                    }
                    Some(_) => {}
                }
            }
        }
        out
    }

    /// Each priced channel's price for `sku` now, with its formula and guards.
    pub fn explain(&self, policy: &Policy, sku: &str, now: i64) -> Vec<PriceWhy> {
        let Some(&slot) = self.slot_of.get(sku) else {
            return vec![];
        };
        let s = slot as usize;
        let Some(p) = self.book[s] else { return vec![] };
        let w = self.width();
        let published = |ch: usize| Some(self.published[s * w + ch]).filter(|&l| l != NONE);
        let cands = self.candidates(policy, s, now);
        let mut out = Vec::new();
        for (ch, cand) in cands.into_iter().enumerate() {
            let (Some((c, mut checks)), Some(rule)) = (cand, rule_of(policy, sku, ch)) else {
                continue;
            };
            let lowest = (0..w).filter(|&d| d != ch).filter_map(published).min();
            checks.extend(quote::parity_check(c.price, &p.currency, rule, lowest));
            let held_by = checks
                .iter()
                .find(|k| !k.ok)
                .map(|k| k.guard.name().to_string());
            let words: Vec<&str> = checks.iter().map(|k| k.text.as_str()).collect();
            let price = p.currency.format(c.price);
            let guards = if words.is_empty() {
                "none".into()
            } else {
                words.join(", ")
            };
            let mut text = format!("price {price} = {} ; guards: {guards}", c.formula);
            if let Some(rule) = &held_by {
                let kept = published(ch).map_or("nothing".into(), |l| p.currency.format(l));
                text.push_str(&format!(" ; held back by {rule}, {kept} published"));
            }
            out.push(PriceWhy {
                channel: self.channels[ch].clone(),
                currency: p.currency.code().to_string(),
                price,
                published: published(ch).map(|l| p.currency.format(l)),
                promo: self
                    .running(s, &self.channels[ch], now)
                    .map(|r| r.id.to_string()),
                formula: c.formula,
                guards: checks
                    .iter()
                    .map(|k| {
                        (
                            k.guard.name().to_string(),
                            k.ok,
                            k.limit.map(|l| p.currency.format(l)),
                            k.text.clone(),
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
    pub fn from_image(policy: &Policy, image: PricingImage) -> Pricing {
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
        let w = p.width();
        for (sku, channel, price) in image.published {
            if let Some(ch) = p.channels.iter().position(|c| *c == channel) {
                let slot = p.slot(&sku) as usize;
                p.published[slot * w + ch] = price;
            }
        }
        p
    }

    /// Whether any SKU waits for a recompute.
    pub fn pending(&self) -> bool {
        !self.dirty.is_empty()
    }
}
