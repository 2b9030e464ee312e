//! Invariants of the core, checked without Python.

use std::sync::Arc;
use std::thread;

use _core::core::Core;
use _core::partition::Partition;
use _core::policy::Policy;
use _core::state::StockMove;

const MICROS: i64 = 1_000_000;

fn policy() -> Policy {
    Policy::from_json(
        br#"{
        "safety": 0, "non_inventory_qty": 999, "protect": [10, 0],
        "locations": [
            {"id": "wh", "kind": "warehouse", "online": true, "priority": 1, "count_pct": 100, "release_gate": false},
            {"id": "ds", "kind": "dropship", "online": true, "priority": 2, "count_pct": 50, "release_gate": false},
            {"id": "store", "kind": "store", "online": false, "priority": 3, "count_pct": 100, "release_gate": false}
        ],
        "channels": [
            {"id": "shopify", "tier": 1, "conditions": ["new"]},
            {"id": "amazon", "tier": 2, "conditions": ["new"]}
        ],
        "profiles": [[
            {"share": 1.0, "cap": null, "buffer": 0, "pause_below": 0},
            {"share": 1.0, "cap": 300, "buffer": 0, "pause_below": 0}
        ]],
        "skus": [
            {"id": "A", "profile": 0, "safety": 5, "kind": "standard", "sellable_from": null, "preorder_limit": 0, "components": []},
            {"id": "B", "profile": 0, "safety": 0, "kind": "standard", "sellable_from": null, "preorder_limit": 0, "components": []},
            {"id": "KIT", "profile": 0, "safety": 0, "kind": "bundle", "sellable_from": null, "preorder_limit": 0, "components": [["A", 1], ["B", 2]]}
        ]}"#,
    )
    .expect("test policy")
}

fn line<'a>(id: &'a str, sku: &'a str, qty: i64) -> (&'a str, &'a str, &'a str, i64) {
    (id, sku, "new", qty)
}

fn stock(core: &Core, sku: &str, loc: &str, n: i64, id: &str) {
    core.event(id, 1, MICROS, |s, c, _| {
        let k = s.intern(c, sku, "new")?;
        s.stock_at(c, k, StockMove::Set, loc, n, MICROS)
    })
    .expect("stock.set");
}

fn ats(core: &Core, sku: &str) -> i64 {
    let st = core.state();
    let k = st.lookup(sku, "new").expect("known key");
    st.ats(&core.counters, k)
}

#[test]
fn threads_hammering_one_key_never_oversell() {
    let core = Arc::new(Core::new(policy()));
    stock(&core, "B", "wh", 1_000, "e1");
    let k = core.intern("B", "new").expect("key");
    let granted: i64 = (0..8)
        .map(|_| {
            let core = Arc::clone(&core);
            thread::spawn(move || {
                let idx = vec![k; 20_000];
                let qty = vec![1i64; 20_000];
                let tier = vec![1u8; 20_000];
                core.counters
                    .reserve_many(&idx, &qty, &tier)
                    .iter()
                    .filter(|&&g| g)
                    .count() as i64
            })
        })
        .map(|h| h.join().expect("thread"))
        .sum();
    // tier 1 floor = safety 0: every unit, and not one more
    assert_eq!(granted, 1_000);
    assert_eq!(core.counters.avail(k), 0);
}

#[test]
fn lower_tiers_cannot_take_protected_units() {
    let core = Core::new(policy());
    stock(&core, "B", "wh", 30, "e1");
    let k = core.intern("B", "new").expect("key");
    // tier 2 floor = protect[1] 10: 20 units, the last 10 only for tier 1
    assert!(!core.counters.reserve_raw(k, 21, 2));
    assert!(core.counters.reserve_raw(k, 20, 2));
    assert!(!core.counters.reserve_raw(k, 1, 2));
    assert!(core.counters.reserve_raw(k, 10, 1));
}

#[test]
fn a_bundle_reserves_every_component_or_none() {
    let core = Core::new(policy());
    stock(&core, "A", "wh", 100, "e1");
    stock(&core, "B", "wh", 3, "e2");
    let (reply, _) = core
        .reserve("r1", "o1", "shopify", &[line("1", "KIT", 2)], 600, MICROS)
        .expect("reserve");
    assert!(!reply.ok(), "B covers one kit only (2 per kit, 3 on hand)");
    assert_eq!(ats(&core, "A"), 95);
    assert_eq!(ats(&core, "B"), 3);
    let (reply, _) = core
        .reserve("r2", "o2", "shopify", &[line("1", "KIT", 1)], 600, MICROS)
        .expect("reserve");
    assert!(reply.ok());
    assert_eq!(
        (ats(&core, "A"), ats(&core, "B"), ats(&core, "KIT")),
        (94, 1, 0)
    );
}

#[test]
fn a_backorder_is_filled_first_when_stock_arrives() {
    let core = Core::new(policy());
    stock(&core, "B", "wh", 2, "e1");
    let fx = core
        .event("e2", 1, 2 * MICROS, |s, c, _| {
            s.order_placed(c, "o1", "amazon", &[line("1", "B", 5)], 2 * MICROS)
        })
        .expect("order");
    assert_eq!(fx.backorders.len(), 1);
    assert_eq!(fx.backorders[0].qty, 3);
    assert!(fx.alerts.iter().any(|a| a.kind == "oversell"));
    stock(&core, "B", "wh", 10, "e3");
    let st = core.state();
    let k = st.lookup("B", "new").expect("key");
    assert_eq!(st.keys[k as usize].backordered, 0);
    assert_eq!(st.reserved(&core.counters, k), 5);
    assert_eq!(st.ats(&core.counters, k), 5);
}

#[test]
fn a_duplicate_event_changes_nothing() {
    let core = Core::new(policy());
    stock(&core, "B", "wh", 10, "e1");
    let place = |core: &Core| {
        core.event("e2", 1, MICROS, |s, c, _| {
            s.order_placed(c, "o1", "amazon", &[line("1", "B", 4)], MICROS)
        })
        .expect("order")
    };
    assert!(!place(&core).duplicate);
    assert!(place(&core).duplicate);
    assert_eq!(ats(&core, "B"), 6);
}

#[test]
fn bad_input_changes_nothing() {
    let core = Core::new(policy());
    stock(&core, "B", "wh", 10, "e1");
    let before = core.snapshot().expect("snapshot");
    let err = core
        .event("e2", 1, MICROS, |s, c, _| {
            let k = s.intern(c, "B", "new")?;
            s.stock_transfer(c, k, "wh", "ds", 11, MICROS)
        })
        .expect_err("more than on hand");
    assert!(err.to_string().contains("qty"));
    assert!(core
        .event("e3", 1, MICROS, |s, c, _| s
            .order_cancelled(c, "nope", None, MICROS))
        .is_err());
    assert_eq!(core.snapshot().expect("snapshot"), before);
}

#[test]
fn sellable_counts_online_locations_by_their_share() {
    let core = Core::new(policy());
    stock(&core, "B", "wh", 10, "e1");
    stock(&core, "B", "ds", 9, "e2"); // 50% trusted: 4
    stock(&core, "B", "store", 50, "e3"); // offline: 0
    assert_eq!(ats(&core, "B"), 14);
}

#[test]
fn holds_expire_on_the_clock() {
    let core = Core::new(policy());
    stock(&core, "B", "wh", 10, "e1");
    let (reply, _) = core
        .reserve("r1", "o1", "shopify", &[line("1", "B", 4)], 60, MICROS)
        .expect("reserve");
    assert_eq!(reply.expires_at(), Some(61 * MICROS));
    assert!(core
        .expire(60 * MICROS)
        .expect("a valid time")
        .expired
        .is_empty());
    assert_eq!(ats(&core, "B"), 6);
    assert_eq!(
        core.expire(61 * MICROS).expect("a valid time").expired,
        vec!["o1".to_string()]
    );
    assert_eq!(ats(&core, "B"), 10);
}

#[test]
fn snapshot_restore_gives_the_same_state() {
    let core = Core::new(policy());
    stock(&core, "A", "wh", 40, "e1");
    stock(&core, "B", "wh", 7, "e2");
    core.event("e3", 1, MICROS, |s, c, _| {
        s.order_placed(c, "o1", "amazon", &[line("1", "B", 9)], MICROS)
    })
    .expect("order");
    core.reserve("r1", "o2", "shopify", &[line("1", "A", 3)], 600, MICROS)
        .expect("reserve");
    let data = core.snapshot().expect("snapshot");
    let back = Core::restore(policy(), Partition::WHOLE, &data).expect("restore");
    assert_eq!(back.snapshot().expect("snapshot"), data);
    for sku in ["A", "B", "KIT"] {
        assert_eq!(ats(&back, sku), ats(&core, sku), "{sku}");
    }
    let mut corrupt = data.clone();
    let n = corrupt.len() / 2;
    corrupt[n] ^= 0xff;
    assert!(Core::restore(policy(), Partition::WHOLE, &corrupt).is_err());
}

#[test]
fn a_refused_event_far_ahead_changes_no_clock_state_and_the_next_one_alerts() {
    let core = Core::new(policy());
    core.tick("t1", MICROS, &[]).expect("tick");
    let far = MICROS + 3600 * MICROS;
    let refused = core.event("bad", 1, far, |s, c, ts| {
        let k = s.intern(c, "B", "new")?;
        s.stock_at(c, k, StockMove::Set, "nowhere", 1, ts)
    });
    assert!(refused.is_err());
    assert_eq!(
        core.state().newest,
        MICROS,
        "a refused event is not the newest applied"
    );
    let fx = core
        .event("good", 2, far, |s, c, ts| {
            let k = s.intern(c, "B", "new")?;
            s.stock_at(c, k, StockMove::Set, "wh", 1, ts)
        })
        .expect("applies");
    let kinds: Vec<_> = fx.alerts.iter().map(|a| a.kind).collect();
    assert_eq!(
        kinds,
        ["clock_skew"],
        "the refused event did not use up the alert"
    );
}
