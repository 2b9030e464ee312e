//! Shown quantities (CONTRACT section 4) and the numbers behind them (section 7).

use serde::Serialize;

use crate::counters::Counters;
use crate::effects::AlertOut;
use crate::policy::{ChannelRule, Kind};
use smallvec::SmallVec;

use crate::pricing::carve::{Carve, CarveWhy};
use crate::state::{BufferWhy, KeyDemand, State};

/// Why a channel is shown what it is shown, with the formula's numbers.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ShownWhy {
    pub channel: String,
    pub tier: u8,
    pub shown: i64,
    pub rule: ShownRule,
    pub pool: i64,
    pub protect_above: i64,
    pub share: f64,
    /// The buffer in use: the policy's number, or the automatic one.
    pub buffer: i64,
    /// The inputs of an automatic buffer (`buffer = "auto"`).
    pub buffer_auto: Option<BufferWhy>,
    pub cap: Option<i64>,
    pub pause_below: i64,
    /// A running promotion's `stock_cap` on this key: its own channels' waves, or the
    /// units it takes out of this channel's pool.
    pub promo: Option<CarveWhy>,
}

/// The buffer under `rule` on channel `ch`: the policy's, or the key's automatic one
/// (`buffer_min` while the key has none computed).
fn buffer_of(rule: &ChannelRule, ch: usize, demand: Option<&KeyDemand>) -> i64 {
    match &rule.auto {
        Some(auto) => demand
            .and_then(|d| d.buffers.get(ch))
            .copied()
            .unwrap_or_else(|| crate::velocity::auto_buffer(auto, 0.0, std::iter::empty()).1),
        None => rule.buffer,
    }
}

fn clamp_shown(rule: &ChannelRule, pool: i64, buffer: i64) -> i64 {
    let shared = if rule.share >= 1.0 {
        pool
    } else {
        (rule.share * pool as f64).floor() as i64
    };
    let v = shared.saturating_sub(buffer).max(0);
    rule.cap.map_or(v, |cap| v.min(cap))
}

/// Which branch of the shown-quantity formula decided; named in explanations as on the
/// wire (`non_inventory`, `condition`, `preorder`, `paused`, `formula`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShownRule {
    /// A non-inventory key: always `non_inventory_qty`.
    NonInventory,
    /// The channel does not sell the key's condition.
    Condition,
    /// Before the hold date: what is left of the preorder limit.
    Preorder,
    /// ATS below the channel's `pause_below`.
    Paused,
    /// The tier pool through share, buffer and cap.
    Formula,
}

/// Which branch of the shown-quantity formula decided, and its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shown {
    pub qty: i64,
    pub rule: ShownRule,
    /// The tier pool, where the formula branch used it.
    pub pool: i64,
}

impl State {
    /// The shown quantity of key `idx` on channel `ch` (the hot path: no allocation).
    pub fn shown_rule(&self, c: &Counters, idx: u32, ch: usize) -> Shown {
        self.shown_with(c, idx, ch, self.demand_of(idx))
    }

    /// [`State::shown_rule`] with the key's demand looked up once for all its channels.
    fn shown_with(&self, c: &Counters, idx: u32, ch: usize, demand: Option<&KeyDemand>) -> Shown {
        let info = &self.info[idx as usize];
        let rule = &self.policy.tables.profiles[info.profile as usize][ch];
        let decided = |rule: ShownRule, qty: i64| Shown { qty, rule, pool: 0 };
        // A channel that does not sell the condition is shown 0 even before a hold date,
        // as a reservation there is refused.
        if info.kind == Kind::NonInventory {
            decided(
                ShownRule::NonInventory,
                self.policy.tables.non_inventory_qty,
            )
        } else if info.channel_mask & (1 << ch) == 0 {
            decided(ShownRule::Condition, 0)
        } else if self.in_preorder(idx) {
            let left = (self.preorder_limit(idx) - self.keys[idx as usize].preordered).max(0);
            decided(
                ShownRule::Preorder,
                rule.cap.map_or(left, |cap| left.min(cap)),
            )
        } else if self.ats(c, idx) < rule.pause_below {
            decided(ShownRule::Paused, 0)
        } else {
            let pool = self.pool(c, idx, self.policy.tables.channels[ch].tier);
            let buffer = buffer_of(rule, ch, demand);
            let formula = |pool| Shown {
                qty: clamp_shown(rule, pool, buffer),
                rule: ShownRule::Formula,
                pool,
            };
            match self.carve_of(idx) {
                // The promotion's channel: at most what its waves released and it did not sell.
                Some(cv) if cv.mask & (1 << ch) != 0 => Shown {
                    qty: clamp_shown(rule, pool, buffer).min(cv.left(self.now)),
                    ..formula(pool)
                },
                // Any other channel: the unsold set-aside is not in its pool.
                Some(cv) => formula((pool - cv.unsold().min(self.ats(c, idx))).max(0)),
                None => formula(pool),
            }
        }
    }

    /// The set-aside of a running promotion with a `stock_cap` on this key (new stock only).
    pub(crate) fn carve_of(&self, idx: u32) -> Option<&Carve> {
        let key = &self.keys[idx as usize];
        if key.condition != 0 {
            return None;
        }
        self.pricing.carve(&key.sku)
    }

    /// [`State::shown_rule`] with every number of the formula, for explanations.
    pub fn shown_why(&self, c: &Counters, idx: u32, ch: usize) -> ShownWhy {
        let info = &self.info[idx as usize];
        let channel = &self.policy.tables.channels[ch];
        let rule = &self.policy.tables.profiles[info.profile as usize][ch];
        let shown = self.shown_rule(c, idx, ch);
        ShownWhy {
            channel: channel.id.clone(),
            tier: channel.tier,
            shown: shown.qty,
            rule: shown.rule,
            pool: shown.pool,
            protect_above: self.cum_protect_of(c, idx, channel.tier),
            share: rule.share,
            buffer: buffer_of(rule, ch, self.demand_of(idx)),
            buffer_auto: rule.auto.map(|auto| self.buffer_why(idx, ch, &auto)),
            cap: rule.cap,
            pause_below: rule.pause_below,
            promo: self
                .carve_of(idx)
                .filter(|_| shown.rule == ShownRule::Formula)
                .map(|cv| {
                    let own = cv.mask & (1 << ch) != 0;
                    let held = if own {
                        0
                    } else {
                        cv.unsold().min(self.ats(c, idx))
                    };
                    cv.why(self.now, own, held)
                }),
        }
    }

    pub fn shown(&self, c: &Counters, idx: u32, ch: usize) -> i64 {
        self.shown_rule(c, idx, ch).qty
    }

    /// The alert for a channel whose shown quantity just fell from something to 0
    /// because of the low-stock pause or because only protected units remain.
    fn drop_to_zero_alert(
        &self,
        c: &Counters,
        idx: u32,
        ch: usize,
        rule: ShownRule,
    ) -> Option<AlertOut> {
        let ats = self.ats(c, idx);
        let channel = &self.policy.tables.channels[ch];
        let (kind, detail) = match rule {
            ShownRule::Paused => {
                let info = &self.info[idx as usize];
                let below = self.policy.tables.profiles[info.profile as usize][ch].pause_below;
                (
                    "pause",
                    format!("ATS {ats} < pause_below {below}: shown 0 until stock returns"),
                )
            }
            ShownRule::Formula if ats > 0 => (
                "reserve_low",
                format!(
                    "the remaining {ats} units are protected for tiers above {}: shown 0",
                    channel.tier
                ),
            ),
            _ => return None,
        };
        Some(AlertOut {
            kind,
            sku: Some(self.keys[idx as usize].sku.to_string()),
            channel: Some(channel.id.clone()),
            detail,
        })
    }

    /// `sold_out_discontinued` when a discontinued key this state last saw in stock is at
    /// ATS 0, so its listings can be ended; once per fall to 0.
    fn watch_discontinued(&mut self, c: &Counters, idx: u32) {
        if self.info[idx as usize].kind != Kind::Discontinued {
            if !self.discontinued_in_stock.is_empty() {
                self.discontinued_in_stock.remove(&idx);
            }
            return;
        }
        if self.ats(c, idx) > 0 {
            self.discontinued_in_stock.insert(idx);
        } else if self.discontinued_in_stock.remove(&idx) {
            let key = &self.keys[idx as usize];
            let condition = &self.conditions[key.condition as usize];
            self.pending_alerts.push(AlertOut {
                kind: "sold_out_discontinued",
                sku: Some(key.sku.to_string()),
                channel: None,
                detail: format!(
                    "discontinued SKU {} ({condition}) is sold out: ATS 0; end its listings",
                    key.sku
                ),
            });
        }
    }

    /// Recomputes up to `max_keys` dirty keys (and the bundles over them) for every
    /// channel and appends each shown quantity that changed; keys beyond the limit
    /// stay dirty for the next call, so a million-key change drains in bounded memory.
    pub fn drain(&mut self, c: &Counters, max_keys: usize, out: &mut Changes) {
        let mut dirty = Vec::new();
        c.drain_dirty(self.keys.len() as u32, &mut dirty);
        if dirty.len() > max_keys {
            for &idx in &dirty[max_keys..] {
                c.mark_dirty(idx);
            }
            dirty.truncate(max_keys);
        }
        let mut extra = Vec::new();
        for &idx in &dirty {
            extra.extend(self.bundles_of(idx).iter().copied());
        }
        if !extra.is_empty() {
            dirty.extend(extra);
            dirty.sort_unstable();
            dirty.dedup();
        }
        let nch = self.policy.channel_count();
        for idx in dirty {
            self.watch_discontinued(c, idx);
            let demand = self.demand_of(idx);
            let all: SmallVec<[Shown; 8]> = (0..nch)
                .map(|ch| self.shown_with(c, idx, ch, demand))
                .collect();
            for (ch, shown) in all.into_iter().enumerate() {
                let q = shown.qty;
                let seen = q.clamp(0, i32::MAX as i64) as i32;
                let before = self.last_shown[idx as usize * nch + ch];
                if before != seen {
                    self.last_shown[idx as usize * nch + ch] = seen;
                    if before > 0 && seen == 0 {
                        if let Some(alert) = self.drop_to_zero_alert(c, idx, ch, shown.rule) {
                            self.pending_alerts.push(alert);
                        }
                    }
                    out.channel.push(ch as u16);
                    out.key.push(idx);
                    out.qty.push(q);
                    out.source_ts.push(self.keys[idx as usize].source_ts);
                }
            }
        }
    }
}

/// Changed shown quantities as four aligned columns (they become numpy arrays as is).
#[derive(Default, Debug)]
pub struct Changes {
    pub channel: Vec<u16>,
    pub key: Vec<u32>,
    pub qty: Vec<i64>,
    pub source_ts: Vec<i64>,
}

/// One channel's changed keys and their shown quantities, in drain order.
pub struct ChannelChanges {
    pub channel: u16,
    pub key: Vec<u32>,
    pub qty: Vec<i64>,
}

impl Changes {
    /// The changes grouped by channel, in channel order (drain order within): what a
    /// caller that only needs the numbers reads, without a message's names and times.
    pub fn by_channel(&self) -> Vec<ChannelChanges> {
        let mut order: Vec<usize> = (0..self.channel.len()).collect();
        order.sort_by_key(|&i| self.channel[i]);
        let mut out: Vec<ChannelChanges> = Vec::new();
        for i in order {
            let channel = self.channel[i];
            if out.last().is_none_or(|group| group.channel != channel) {
                out.push(ChannelChanges {
                    channel,
                    key: Vec::new(),
                    qty: Vec::new(),
                });
            }
            if let Some(group) = out.last_mut() {
                group.key.push(self.key[i]);
                group.qty.push(self.qty[i]);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_buffer_and_cap_apply_in_order() {
        let r = ChannelRule {
            share: 0.5,
            cap: Some(40),
            buffer: 3,
            pause_below: 0,
            auto: None,
            price: None,
        };
        assert_eq!(clamp_shown(&r, 101, 3), 40); // floor(50.5) − 3 = 47 → cap 40
        assert_eq!(clamp_shown(&r, 20, 3), 7);
        assert_eq!(clamp_shown(&r, 4, 3), 0);
    }

    #[test]
    fn explanations_name_the_rule_as_on_the_wire() {
        let names = [
            ShownRule::NonInventory,
            ShownRule::Condition,
            ShownRule::Preorder,
            ShownRule::Paused,
            ShownRule::Formula,
        ]
        .map(|r| serde_json::to_string(&r).unwrap_or_default());
        assert_eq!(
            names,
            [
                "non_inventory",
                "condition",
                "preorder",
                "paused",
                "formula"
            ]
            .map(|n| format!("{n:?}"))
        );
    }

    #[test]
    fn changes_by_channel_keep_drain_order_within_each_channel() {
        let changes = Changes {
            channel: vec![1, 0, 1, 0],
            key: vec![7, 7, 3, 3],
            qty: vec![10, 11, 12, 13],
            source_ts: vec![0; 4],
        };
        let groups: Vec<(u16, Vec<u32>, Vec<i64>)> = changes
            .by_channel()
            .into_iter()
            .map(|g| (g.channel, g.key, g.qty))
            .collect();
        assert_eq!(
            groups,
            vec![(0, vec![7, 3], vec![11, 13]), (1, vec![7, 3], vec![10, 12])]
        );
        assert!(Changes::default().by_channel().is_empty());
    }
}
