//! The resolved policy tables, as the Python side hands them over (JSON), and the
//! per-key rules derived from them.

use crate::hash::Map;
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, CoreResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    #[default]
    Standard,
    NonInventory,
    Discontinued,
    Preorder,
    Bundle,
}

impl Kind {
    /// Whether `sellable_from` holds this kind back (CONTRACT section 4): every kind
    /// with stock that may sell ahead of it, up to `preorder_limit`. A discontinued SKU
    /// never sells against inbound, and a non-inventory one has no stock to hold.
    pub fn honours_hold_date(self) -> bool {
        matches!(self, Kind::Standard | Kind::Preorder | Kind::Bundle)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Location {
    pub id: String,
    #[serde(default)]
    pub kind: String,
    pub online: bool,
    pub priority: i64,
    pub count_pct: i64,
    pub release_gate: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Channel {
    pub id: String,
    pub tier: u8,
    pub conditions: Vec<String>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChannelRule {
    pub share: f64,
    pub cap: Option<i64>,
    pub buffer: i64,
    pub pause_below: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SkuRule {
    pub id: String,
    pub profile: u32,
    pub safety: i64,
    pub kind: Kind,
    pub sellable_from: Option<i64>,
    pub preorder_limit: i64,
    pub components: Vec<(String, i64)>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tables {
    pub safety: i64,
    pub non_inventory_qty: i64,
    pub protect: Vec<i64>,
    pub locations: Vec<Location>,
    pub channels: Vec<Channel>,
    pub profiles: Vec<Vec<ChannelRule>>,
    pub skus: Vec<SkuRule>,
}

/// The tables plus lookups built once per policy.
#[derive(Clone, Debug)]
pub struct Policy {
    pub tables: Tables,
    pub sku_rules: Map<String, usize>,
    pub location_index: Map<String, u16>,
    pub channel_index: Map<String, u16>,
    /// Location indices, online ones only, by routing priority.
    pub routing_order: Vec<u16>,
    /// Component SKU → the bundles it is part of.
    pub bundles_by_component: Map<String, Vec<String>>,
}

impl Policy {
    pub fn from_json(data: &[u8]) -> CoreResult<Policy> {
        let tables: Tables =
            serde_json::from_slice(data).map_err(|e| CoreError::Policy(e.to_string()))?;
        Policy::new(tables)
    }

    pub fn new(tables: Tables) -> CoreResult<Policy> {
        if tables.channels.len() > u16::MAX as usize || tables.locations.len() > u16::MAX as usize {
            return Err(CoreError::Policy("too many channels or locations".into()));
        }
        for ch in &tables.channels {
            if ch.tier == 0 || ch.tier as usize > crate::counters::MAX_TIERS {
                return Err(CoreError::Policy(format!(
                    "channel {}: tier {} outside 1..{}",
                    ch.id,
                    ch.tier,
                    crate::counters::MAX_TIERS
                )));
            }
        }
        if tables.profiles.is_empty() {
            return Err(CoreError::Policy("no channel profile".into()));
        }
        for (i, p) in tables.profiles.iter().enumerate() {
            if p.len() != tables.channels.len() {
                return Err(CoreError::Policy(format!(
                    "profile {i} does not cover every channel"
                )));
            }
        }
        let sku_rules: Map<String, usize> = tables
            .skus
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        for s in &tables.skus {
            if s.profile as usize >= tables.profiles.len() {
                return Err(CoreError::Policy(format!("sku {}: unknown profile", s.id)));
            }
            for (c, q) in &s.components {
                if !sku_rules.contains_key(c) || *q <= 0 {
                    return Err(CoreError::Policy(format!(
                        "sku {}: bad component {c}",
                        s.id
                    )));
                }
            }
        }
        let mut tables = tables;
        let flat: Vec<Vec<(String, i64)>> = tables
            .skus
            .iter()
            .map(|s| flatten(&tables.skus, &sku_rules, &s.id, 1, 0))
            .collect::<CoreResult<_>>()?;
        for (s, parts) in tables.skus.iter_mut().zip(flat) {
            if s.kind == Kind::Bundle {
                s.components = parts;
            }
        }
        let location_index = tables
            .locations
            .iter()
            .enumerate()
            .map(|(i, l)| (l.id.clone(), i as u16))
            .collect();
        let channel_index = tables
            .channels
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i as u16))
            .collect();
        let mut routing_order: Vec<u16> = (0..tables.locations.len() as u16)
            .filter(|&i| tables.locations[i as usize].online)
            .collect();
        routing_order.sort_by_key(|&i| (tables.locations[i as usize].priority, i));
        if tables.channels.len() > 64 {
            return Err(CoreError::Policy("at most 64 channels".into()));
        }
        let mut bundles_by_component: Map<String, Vec<String>> = Map::default();
        for s in &tables.skus {
            for (c, _) in &s.components {
                bundles_by_component
                    .entry(c.clone())
                    .or_default()
                    .push(s.id.clone());
            }
        }
        Ok(Policy {
            tables,
            sku_rules,
            location_index,
            channel_index,
            routing_order,
            bundles_by_component,
        })
    }

    pub fn rule(&self, sku: &str) -> Option<&SkuRule> {
        self.sku_rules.get(sku).map(|&i| &self.tables.skus[i])
    }

    /// The hold date of a SKU: its own `sellable_from`; for a bundle, the latest of its
    /// own and its components' (it sells their stock, so it waits for every one).
    pub fn hold_date(&self, rule: &SkuRule) -> Option<i64> {
        let own = |r: &SkuRule| r.sellable_from.filter(|_| r.kind.honours_hold_date());
        if rule.kind != Kind::Bundle {
            return own(rule);
        }
        // Components are leaves: nested bundles were flattened at load.
        rule.components
            .iter()
            .filter_map(|(c, _)| self.rule(c).and_then(own))
            .chain(own(rule))
            .max()
    }

    pub fn channel_count(&self) -> usize {
        self.tables.channels.len()
    }

    pub fn location(&self, idx: u16) -> &Location {
        &self.tables.locations[idx as usize]
    }
}

/// A bundle's stock parts: nested bundles are expanded into the units they are made of
/// (a kit of two kits of A is 2 × A), so every bundle is one level deep.
fn flatten(
    skus: &[SkuRule],
    index: &Map<String, usize>,
    sku: &str,
    times: i64,
    depth: usize,
) -> CoreResult<Vec<(String, i64)>> {
    if depth > 16 {
        return Err(CoreError::Policy(format!(
            "bundle {sku} nests too deep (a cycle?)"
        )));
    }
    let rule = &skus[index[sku]];
    if rule.kind != Kind::Bundle {
        return Ok(vec![(sku.to_string(), times)]);
    }
    let mut out: Vec<(String, i64)> = vec![];
    for (c, q) in &rule.components {
        let units = times
            .checked_mul(*q)
            .ok_or_else(|| CoreError::Policy(format!("bundle {sku}: quantity overflows")))?;
        for (leaf, n) in flatten(skus, index, c, units, depth + 1)? {
            match out.iter_mut().find(|(l, _)| *l == leaf) {
                Some((_, m)) => *m += n,
                None => out.push((leaf, n)),
            }
        }
    }
    Ok(out)
}
