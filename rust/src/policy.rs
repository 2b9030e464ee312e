//! The resolved policy tables, as the Python side hands them over (JSON), the rules a
//! policy must keep to be run, and the per-key rules derived from it.
//!
//! This is the one judge of a policy: `invsync check`, loading, reloading and restarting
//! all come here, so they accept and refuse the same files for the same reasons. A
//! refusal names the table entry and field (`channels[3].tier`), which the Python side
//! turns into the file's line.

use std::fmt;

use crate::counters::MAX_TIERS;
use crate::hash::Map;
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, CoreResult};
use crate::pricing::rule::PriceRule;
use crate::velocity::{AutoBuffer, HalfLives};

/// Most channels a policy may have: each has one bit in a key's channel masks.
pub const MAX_CHANNELS: usize = 64;
/// Most levels of bundles inside bundles.
pub const MAX_BUNDLE_DEPTH: usize = 16;
/// Most locations: a location index is a `u16`, and `u16::MAX` marks a dropped one.
pub const MAX_LOCATIONS: usize = u16::MAX as usize - 1;

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
    fn name(self) -> &'static str {
        match self {
            Kind::Standard => "standard",
            Kind::NonInventory => "non_inventory",
            Kind::Discontinued => "discontinued",
            Kind::Preorder => "preorder",
            Kind::Bundle => "bundle",
        }
    }

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
    /// The push lag (s) an automatic buffer uses until acks measure one.
    #[serde(default)]
    pub lag_s: Option<f64>,
    /// The sale-to-order delay (s) used until orders measure one.
    #[serde(default)]
    pub order_lag_s: f64,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChannelRule {
    pub share: f64,
    pub cap: Option<i64>,
    pub buffer: i64,
    pub pause_below: i64,
    /// `buffer = "auto"`: the buffer comes from velocity and lags, not from `buffer`.
    #[serde(default)]
    pub auto: Option<AutoBuffer>,
    /// The channel's `price` table for SKUs of this profile; None: not priced.
    #[serde(default)]
    pub price: Option<PriceRule>,
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
    /// The partitioning family given in the policy (see `partition`); absent: by bundles.
    #[serde(default)]
    pub family: Option<String>,
}

/// How the core treats what producers stamp and re-send (policy `[defaults]`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogRules {
    /// How far a producer's `ts` may run ahead of the log's clock before it is clamped.
    pub max_clock_skew_s: i64,
    /// How long (log time) an applied event id is remembered against re-sends.
    pub dedupe_horizon_s: i64,
    /// At most this many remembered event ids, whatever the horizon (memory bound).
    pub dedupe_max_ids: i64,
    /// How long an order event waits for the `order.placed` it names (log time).
    pub park_window_s: i64,
    /// How long (log time) a reservation spanning partitions waits for every vote
    /// before it is aborted.
    pub cross_partition_timeout_s: i64,
}

/// When and from what the automatic numbers are computed (policy `[defaults]`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AdaptiveRules {
    pub half_lives: HalfLives,
    /// Log seconds between recomputations of every automatic number (rates decay
    /// between sales; protection levels change only then).
    pub every_s: i64,
    /// The demand horizon of automatic protection levels, in seconds of velocity.
    pub protect_horizon_s: f64,
}

impl Default for AdaptiveRules {
    fn default() -> Self {
        AdaptiveRules {
            half_lives: HalfLives::default(),
            every_s: 10,
            protect_horizon_s: 3_600.0,
        }
    }
}

impl Default for LogRules {
    fn default() -> Self {
        LogRules {
            max_clock_skew_s: 300,
            dedupe_horizon_s: 3_600,
            dedupe_max_ids: 1 << 22,
            park_window_s: 3_600,
            cross_partition_timeout_s: 5,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tables {
    #[serde(default)]
    pub log: LogRules,
    #[serde(default)]
    pub adaptive: AdaptiveRules,
    pub safety: i64,
    pub non_inventory_qty: i64,
    /// Protection level by tier: `protect[t - 1]` is tier t's.
    pub protect: Vec<i64>,
    /// By tier like `protect`: true where the level is `"auto"` (EMSR-b); its
    /// `protect` entry is then 0.
    #[serde(default)]
    pub protect_auto: Vec<bool>,
    /// By tier like `protect`: the value of a unit sold on the tier (0 = not given).
    #[serde(default)]
    pub values: Vec<f64>,
    /// The declared tier numbers, in file order; absent: every tier up to `protect`'s length.
    #[serde(default)]
    pub tiers: Vec<i64>,
    pub locations: Vec<Location>,
    pub channels: Vec<Channel>,
    pub profiles: Vec<Vec<ChannelRule>>,
    pub skus: Vec<SkuRule>,
}

/// One step of a path into the policy file: a table or key name, or an array position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Key(&'static str),
    Index(usize),
}

/// Why a policy cannot run, and where: `path` leads to the entry and field at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub path: Vec<Part>,
    pub message: String,
}

impl Refusal {
    pub fn at(path: &[Part], message: impl Into<String>) -> Refusal {
        Refusal {
            path: path.to_vec(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.path.iter().enumerate() {
            match part {
                Part::Key(k) if i == 0 => write!(f, "{k}")?,
                Part::Key(k) => write!(f, ".{k}")?,
                Part::Index(n) => write!(f, "[{n}]")?,
            }
        }
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, ": {}", self.message)
        }
    }
}

impl From<Refusal> for CoreError {
    fn from(r: Refusal) -> CoreError {
        CoreError::Policy(r.to_string())
    }
}

use crate::partition::Families;
use Part::{Index, Key};

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
    /// Whether any channel rule has `buffer = "auto"`.
    pub auto_buffers: bool,
    /// Whether any tier's `protect` is `"auto"`.
    pub auto_protect: bool,
    /// Each SKU's partitioning family key.
    pub families: Families,
}

/// Reads the tables JSON; a shape error is the caller's bug, not the policy author's.
pub fn parse(data: &[u8]) -> CoreResult<Tables> {
    serde_json::from_slice(data).map_err(|e| CoreError::Policy(e.to_string()))
}

impl Policy {
    pub fn from_json(data: &[u8]) -> CoreResult<Policy> {
        Ok(Policy::build(parse(data)?)?)
    }

    pub fn new(tables: Tables) -> CoreResult<Policy> {
        Ok(Policy::build(tables)?)
    }

    /// Checks every rule, then builds the lookups; every refusal happens here, before
    /// anything is built, so a policy that passes always builds.
    pub fn build(tables: Tables) -> Result<Policy, Refusal> {
        check_sizes(&tables)?;
        check_tiers(&tables)?;
        refuse_duplicates("locations", tables.locations.iter().map(|l| &l.id))?;
        refuse_duplicates("channels", tables.channels.iter().map(|c| &c.id))?;
        refuse_duplicates("skus", tables.skus.iter().map(|s| &s.id))?;
        check_profiles(&tables)?;
        let sku_rules: Map<String, usize> = tables
            .skus
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        check_components(&tables.skus, &sku_rules)?;
        let order = bundle_order(&tables.skus, &sku_rules)?;
        let families = Families::build(&tables.skus, &sku_rules)?;
        let flat = flatten(&tables.skus, &sku_rules, &order)?;
        let mut tables = tables;
        for (i, parts) in flat {
            tables.skus[i].components = parts;
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
        let mut bundles_by_component: Map<String, Vec<String>> = Map::default();
        for s in &tables.skus {
            for (c, _) in &s.components {
                bundles_by_component
                    .entry(c.clone())
                    .or_default()
                    .push(s.id.clone());
            }
        }
        let auto_buffers = tables.profiles.iter().flatten().any(|r| r.auto.is_some());
        let auto_protect = tables.protect_auto.iter().any(|&a| a);
        Ok(Policy {
            auto_buffers,
            auto_protect,
            tables,
            sku_rules,
            location_index,
            channel_index,
            routing_order,
            bundles_by_component,
            families,
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

fn check_sizes(t: &Tables) -> Result<(), Refusal> {
    if t.channels.is_empty() {
        return Err(Refusal::at(
            &[Key("channels")],
            "no [[channels]]: a policy needs at least one channel",
        ));
    }
    if t.channels.len() > MAX_CHANNELS {
        return Err(Refusal::at(
            &[Key("channels"), Index(MAX_CHANNELS)],
            format!(
                "{} channels; a policy may have at most {MAX_CHANNELS}",
                t.channels.len()
            ),
        ));
    }
    if t.locations.len() > MAX_LOCATIONS {
        return Err(Refusal::at(
            &[Key("locations"), Index(MAX_LOCATIONS)],
            format!(
                "{} locations; a policy may have at most {MAX_LOCATIONS}",
                t.locations.len()
            ),
        ));
    }
    Ok(())
}

fn check_tiers(t: &Tables) -> Result<(), Refusal> {
    let declared: Vec<i64> = if t.tiers.is_empty() {
        (1..=t.protect.len() as i64).collect()
    } else {
        t.tiers.clone()
    };
    refuse_duplicates_by("tiers", "tier", declared.iter(), |t| t.to_string())?;
    for (i, &tier) in declared.iter().enumerate() {
        if tier < 1 || tier > MAX_TIERS as i64 {
            return Err(Refusal::at(
                &[Key("tiers"), Index(i), Key("tier")],
                format!("tier {tier} outside 1..={MAX_TIERS}: a policy may have at most {MAX_TIERS} tiers"),
            ));
        }
    }
    let max = declared.iter().copied().max().unwrap_or(0);
    if t.protect.len() as i64 != max {
        return Err(Refusal::at(
            &[Key("tiers")],
            format!(
                "protect lists {} tiers where the highest declared tier is {max}",
                t.protect.len()
            ),
        ));
    }
    let mut sorted = declared.clone();
    sorted.sort_unstable();
    for (i, ch) in t.channels.iter().enumerate() {
        if !sorted.contains(&i64::from(ch.tier)) {
            let list: Vec<String> = sorted.iter().map(i64::to_string).collect();
            return Err(Refusal::at(
                &[Key("channels"), Index(i), Key("tier")],
                format!(
                    "unknown tier {} (declared tiers: [{}])",
                    ch.tier,
                    list.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn refuse_duplicates<'a>(
    section: &'static str,
    ids: impl Iterator<Item = &'a String>,
) -> Result<(), Refusal> {
    refuse_duplicates_by(section, "id", ids, |id| format!("'{id}'"))
}

fn refuse_duplicates_by<T: Eq + std::hash::Hash>(
    section: &'static str,
    key: &'static str,
    values: impl Iterator<Item = T>,
    show: impl Fn(&T) -> String,
) -> Result<(), Refusal> {
    let mut first: Map<T, usize> = Map::default();
    for (i, value) in values.enumerate() {
        if let Some(&j) = first.get(&value) {
            return Err(Refusal::at(
                &[Key(section), Index(i), Key(key)],
                format!("duplicate {key} {} (first in {section}[{j}])", show(&value)),
            ));
        }
        first.insert(value, i);
    }
    Ok(())
}

/// The profiles are built by the Python side, never written by hand: a mismatch is a bug there.
fn check_profiles(t: &Tables) -> Result<(), Refusal> {
    if t.profiles.is_empty() {
        return Err(Refusal::at(&[Key("profiles")], "no channel profile"));
    }
    if let Some(i) = t.profiles.iter().position(|p| p.len() != t.channels.len()) {
        return Err(Refusal::at(
            &[Key("profiles"), Index(i)],
            "profile does not cover every channel",
        ));
    }
    if let Some(i) = t
        .skus
        .iter()
        .position(|s| s.profile as usize >= t.profiles.len())
    {
        return Err(Refusal::at(
            &[Key("skus"), Index(i), Key("profile")],
            "unknown profile",
        ));
    }
    Ok(())
}

fn check_components(skus: &[SkuRule], index: &Map<String, usize>) -> Result<(), Refusal> {
    for (i, s) in skus.iter().enumerate() {
        let path = [Key("skus"), Index(i), Key("components")];
        if s.kind != Kind::Bundle {
            if !s.components.is_empty() {
                return Err(Refusal::at(
                    &path,
                    format!(
                        "components on a '{}' SKU; only bundles have them",
                        s.kind.name()
                    ),
                ));
            }
            continue;
        }
        if s.components.is_empty() {
            return Err(Refusal::at(&path, "a bundle needs at least one component"));
        }
        for (j, (c, q)) in s.components.iter().enumerate() {
            let at = |field| {
                [
                    Key("skus"),
                    Index(i),
                    Key("components"),
                    Index(j),
                    Key(field),
                ]
            };
            if !index.contains_key(c) {
                return Err(Refusal::at(
                    &at("sku"),
                    format!("unknown component SKU '{c}'"),
                ));
            }
            if s.components[..j].iter().any(|(earlier, _)| earlier == c) {
                return Err(Refusal::at(
                    &at("sku"),
                    format!("component '{c}' listed twice"),
                ));
            }
            if *q < 1 {
                return Err(Refusal::at(
                    &at("qty"),
                    format!("component quantity {q}; at least 1"),
                ));
            }
        }
    }
    Ok(())
}

/// Bundles, each after the bundles it contains; refuses a cycle, named in full
/// (iterative: a chain of bundles may be long).
fn bundle_order(skus: &[SkuRule], index: &Map<String, usize>) -> Result<Vec<usize>, Refusal> {
    const NEW: u8 = 0;
    const ON_TRAIL: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; skus.len()];
    let mut order = Vec::new();
    for root in 0..skus.len() {
        if state[root] != NEW || skus[root].kind != Kind::Bundle {
            continue;
        }
        state[root] = ON_TRAIL;
        // (bundle, position of the next component to visit)
        let mut trail: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(top) = trail.last_mut() {
            let (node, next) = *top;
            let Some((component, _)) = skus[node].components.get(next) else {
                state[node] = DONE;
                order.push(node);
                trail.pop();
                continue;
            };
            top.1 += 1;
            let Some(&child) = index.get(component) else {
                continue;
            };
            if state[child] == ON_TRAIL {
                let from = trail.iter().position(|&(n, _)| n == child).unwrap_or(0);
                let mut names: Vec<&str> = trail[from..]
                    .iter()
                    .map(|&(n, _)| skus[n].id.as_str())
                    .collect();
                names.push(&skus[child].id);
                return Err(Refusal::at(
                    &[Key("skus"), Index(child), Key("components")],
                    format!("bundle cycle: {}", names.join(" -> ")),
                ));
            }
            if state[child] == NEW && skus[child].kind == Kind::Bundle {
                state[child] = ON_TRAIL;
                trail.push((child, 0));
            }
        }
    }
    Ok(order)
}

/// A bundle's stock parts: (component SKU, units per bundle).
type Parts = Vec<(String, i64)>;

/// Each bundle's stock parts by SKU position: nested bundles are expanded into the
/// units they are made of (a kit of two kits of A is 2 × A), so every bundle is one
/// level deep. `order` has each bundle after those it contains. Refuses a nesting
/// deeper than [`MAX_BUNDLE_DEPTH`] and quantities that overflow 64 bits.
fn flatten(
    skus: &[SkuRule],
    index: &Map<String, usize>,
    order: &[usize],
) -> Result<Map<usize, Parts>, Refusal> {
    // bundle position → (its parts, its levels of nesting)
    let mut flat: Map<usize, (Parts, usize)> = Map::default();
    for &bundle in order {
        let refuse = |message: String| {
            Refusal::at(&[Key("skus"), Index(bundle), Key("components")], message)
        };
        let overflow = || {
            refuse(format!(
                "bundle '{}': quantities overflow 64 bits",
                skus[bundle].id
            ))
        };
        let mut parts: Parts = vec![];
        let mut depth = 1;
        for (component, qty) in &skus[bundle].components {
            let inner = index.get(component).and_then(|i| flat.get(i));
            let leaves: Vec<(&str, i64)> = match inner {
                Some((sub, sub_depth)) => {
                    depth = depth.max(sub_depth + 1);
                    sub.iter()
                        .map(|(leaf, n)| {
                            Ok((leaf.as_str(), n.checked_mul(*qty).ok_or_else(overflow)?))
                        })
                        .collect::<Result<_, Refusal>>()?
                }
                None => vec![(component.as_str(), *qty)],
            };
            for (leaf, n) in leaves {
                match parts.iter_mut().find(|(l, _)| l == leaf) {
                    Some((_, m)) => *m = m.checked_add(n).ok_or_else(overflow)?,
                    None => parts.push((leaf.to_string(), n)),
                }
            }
        }
        if depth > MAX_BUNDLE_DEPTH {
            return Err(refuse(format!(
                "bundle '{}' nests {depth} levels deep; at most {MAX_BUNDLE_DEPTH}",
                skus[bundle].id
            )));
        }
        flat.insert(bundle, (parts, depth));
    }
    Ok(flat.into_iter().map(|(i, (parts, _))| (i, parts)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(tiers: usize, skus: &str) -> Tables {
        let protect = vec!["0"; tiers].join(",");
        let json = format!(
            r#"{{"safety": 0, "non_inventory_qty": 0, "protect": [{protect}], "locations": [],
            "channels": [{{"id": "c", "tier": 1, "conditions": ["new"]}}],
            "profiles": [[{{"share": 1.0, "cap": null, "buffer": 0, "pause_below": 0}}]],
            "skus": [{skus}]}}"#
        );
        parse(json.as_bytes()).expect("test tables")
    }

    fn sku(id: &str, components: &[(&str, i64)]) -> String {
        let kind = if components.is_empty() {
            "standard"
        } else {
            "bundle"
        };
        let parts: Vec<String> = components
            .iter()
            .map(|(c, q)| format!(r#"["{c}", {q}]"#))
            .collect();
        format!(
            r#"{{"id": "{id}", "profile": 0, "safety": 0, "kind": "{kind}", "sellable_from": null,
            "preorder_limit": 0, "components": [{}]}}"#,
            parts.join(",")
        )
    }

    /// K1 holds `qty` of K2, ... K<depth> holds `qty` of B.
    fn chain(depth: usize, qty: i64) -> String {
        let mut skus = vec![sku("B", &[])];
        for level in 1..=depth {
            let inner = if level < depth {
                format!("K{}", level + 1)
            } else {
                "B".into()
            };
            skus.push(sku(&format!("K{level}"), &[(&inner, qty)]));
        }
        skus.join(",")
    }

    fn refusal(t: Tables) -> String {
        Policy::build(t).expect_err("a refusal").to_string()
    }

    #[test]
    fn nested_bundles_become_units_of_their_leaves() {
        let skus = [
            sku("A", &[]),
            sku("B", &[]),
            sku("KIT", &[("A", 1), ("B", 2)]),
            sku("BOX", &[("KIT", 2), ("A", 1)]),
        ];
        let p = Policy::build(tables(1, &skus.join(","))).expect("a good policy");
        let parts = &p.rule("BOX").expect("BOX").components;
        assert_eq!(parts, &[("A".to_string(), 3), ("B".to_string(), 4)]);
    }

    #[test]
    fn a_cycle_is_named_in_full_at_its_first_bundle() {
        let skus = [sku("X", &[("Y", 1)]), sku("Y", &[("X", 1)])].join(",");
        assert_eq!(
            refusal(tables(1, &skus)),
            "skus[0].components: bundle cycle: X -> Y -> X"
        );
    }

    #[test]
    fn sixteen_levels_of_bundles_build_and_seventeen_do_not() {
        assert!(Policy::build(tables(1, &chain(MAX_BUNDLE_DEPTH, 1))).is_ok());
        let deep = refusal(tables(1, &chain(MAX_BUNDLE_DEPTH + 1, 1)));
        assert!(deep.starts_with("skus[1].components: bundle 'K1' nests 17 levels"));
    }

    #[test]
    fn quantities_that_overflow_are_refused_not_wrapped() {
        assert!(Policy::build(tables(1, &chain(1, i64::MAX))).is_ok());
        let big = refusal(tables(1, &chain(2, 1 << 32)));
        assert!(big.contains("overflow 64 bits"), "{big}");
    }

    fn in_family(sku_json: &str, family: &str) -> String {
        let open = sku_json.trim_end().trim_end_matches('}');
        format!(r#"{open}, "family": "{family}"}}"#)
    }

    #[test]
    fn a_bundle_and_its_parts_share_the_smallest_id_as_family() {
        let skus = [
            sku("Z", &[]),
            sku("M", &[]),
            sku("KIT", &[("Z", 1), ("M", 1)]),
            sku("ALONE", &[]),
        ];
        let p = Policy::build(tables(1, &skus.join(","))).expect("a good policy");
        for id in ["Z", "M", "KIT"] {
            assert_eq!(p.families.key(id), "KIT", "{id}");
        }
        assert_eq!(p.families.key("ALONE"), "ALONE");
        assert_eq!(p.families.key("NOT-IN-POLICY"), "NOT-IN-POLICY");
    }

    #[test]
    fn an_explicit_family_carries_the_whole_bundle_family() {
        let skus = [
            sku("A", &[]),
            in_family(&sku("KIT", &[("A", 2)]), "kits"),
            in_family(&sku("LONE", &[]), "kits"),
        ];
        let p = Policy::build(tables(1, &skus.join(","))).expect("a good policy");
        for id in ["A", "KIT", "LONE"] {
            assert_eq!(p.families.key(id), "kits", "{id}");
        }
    }

    #[test]
    fn two_families_in_one_bundle_family_are_refused_at_the_second() {
        let skus = [
            in_family(&sku("A", &[]), "left"),
            sku("B", &[]),
            in_family(&sku("KIT", &[("A", 1), ("B", 1)]), "right"),
        ];
        let refused = refusal(tables(1, &skus.join(",")));
        assert!(
            refused.starts_with("skus[2].family: family \"right\" splits a bundle family"),
            "{refused}"
        );
    }

    #[test]
    fn a_tier_beyond_the_counters_is_refused_at_its_entry() {
        assert!(Policy::build(tables(MAX_TIERS, "")).is_ok());
        assert!(refusal(tables(MAX_TIERS + 1, "")).starts_with("tiers[16].tier: tier 17 outside"));
    }
}
