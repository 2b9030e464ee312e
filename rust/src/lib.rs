//! invsync's allocation core: lock-free per-key counters with tier floors, the
//! reservation registry, routing and shown quantities. Pure Rust below `py/`.

pub mod allocation;
pub mod core;
pub mod counters;
pub mod dedupe;
pub mod effects;
pub mod error;
pub mod event_kind;
pub mod frames;
pub mod hash;
pub mod ledger;
pub mod parking;
pub mod partition;
pub mod policy;
pub mod pricing;
pub mod reservation;
pub mod snapshot;
pub mod split;
pub mod state;
pub mod timefmt;
pub mod velocity;
pub mod wire_json;

mod py;

/// The registry allocates small objects at a high rate (a hold is a handful of them);
/// mimalloc serves that pattern far better than the system allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
