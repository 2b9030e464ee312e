//! A promotion's `stock_cap`: units set aside for its channels while it runs, so the
//! promotion cannot drain stock other channels need, and released to its channels in
//! waves, so the first minutes cannot take it all.
//!
//! Waves: the cap is cut into [`WAVES`] equal waves (the last one smaller when it does
//! not divide). Wave k (k = 0..3) opens at `starts + k × (ends − starts) / 4`, or as soon
//! as the waves before it sold through, whichever comes first. The promotion's channels
//! are shown at most `released − sold`; every other channel's pool leaves out the
//! unsold part of the cap (at most the SKU's ATS).

use serde::Serialize;

/// How many waves a promotion's `stock_cap` is released in.
pub const WAVES: i64 = 4;

/// The set-aside of one SKU under its running promotion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Carve {
    pub promo: String,
    /// Bit c: channel c (policy order) is one of the promotion's.
    pub mask: u64,
    pub cap: i64,
    /// Units the promotion's channels sold of the SKU since it started.
    pub sold: i64,
    pub starts: i64,
    pub ends: i64,
}

/// A carve-out as `explain` shows it on a channel.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CarveWhy {
    pub promo: String,
    pub cap: i64,
    pub sold: i64,
    pub released: i64,
    pub waves_open: i64,
    /// True on the promotion's own channels.
    pub own: bool,
    /// On another channel: the units left out of its pool (the unsold cap, at most ATS).
    pub held: i64,
}

impl Carve {
    fn per_wave(&self) -> i64 {
        (self.cap + WAVES - 1) / WAVES
    }

    /// When wave `k` opens by the clock.
    pub fn wave_time(&self, k: i64) -> i64 {
        let span = i128::from(self.ends) - i128::from(self.starts);
        let at = i128::from(self.starts) + span * i128::from(k) / i128::from(WAVES);
        i64::try_from(at).unwrap_or(self.ends)
    }

    /// Waves open at `now`: those whose time came, and one past every wave sold through.
    pub fn waves_open(&self, now: i64) -> i64 {
        let by_time = (0..WAVES).filter(|&k| self.wave_time(k) <= now).count() as i64;
        let per = self.per_wave().max(1);
        let by_sales = 1 + self.sold / per;
        by_time.max(by_sales).min(WAVES)
    }

    pub fn released(&self, now: i64) -> i64 {
        (self.waves_open(now) * self.per_wave()).min(self.cap)
    }

    /// What the promotion's channels may still be shown.
    pub fn left(&self, now: i64) -> i64 {
        (self.released(now) - self.sold).max(0)
    }

    /// What every other channel's pool leaves out.
    pub fn unsold(&self) -> i64 {
        (self.cap - self.sold).max(0)
    }

    pub fn why(&self, now: i64, own: bool, held: i64) -> CarveWhy {
        CarveWhy {
            promo: self.promo.clone(),
            cap: self.cap,
            sold: self.sold,
            released: self.released(now),
            waves_open: self.waves_open(now),
            own,
            held,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn carve(sold: i64) -> Carve {
        Carve {
            promo: "p".into(),
            mask: 1,
            cap: 100,
            sold,
            starts: 0,
            ends: 400,
        }
    }

    #[test]
    fn a_wave_opens_when_its_time_comes_or_the_one_before_sold_through() {
        assert_eq!(carve(0).released(0), 25);
        assert_eq!(carve(0).released(99), 25);
        assert_eq!(carve(0).released(100), 50);
        assert_eq!(carve(0).released(300), 100);
        assert_eq!(carve(25).released(1), 50, "the first wave sold through");
        assert_eq!(carve(24).left(1), 1);
        assert_eq!(carve(100).left(1), 0);
        assert_eq!(carve(30).unsold(), 70);
    }
}
