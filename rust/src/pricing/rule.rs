//! A channel's price rule as the policy resolves it (per SKU, with class and SKU
//! overrides), in basis points, and the rounding it ends with.

use serde::{Deserialize, Serialize};

/// Basis points in one: 10,000 bp = 100%.
pub const BP: i64 = 10_000;

/// How a computed price is rounded; always up, so rounding never eats the markup.
/// `Step` and `Charm` count hundredths of the major unit and apply to currencies with
/// at least two decimals; prices in a currency with fewer stay at the minor unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// To the minor unit (half up).
    #[default]
    None,
    /// Up to a multiple of this many hundredths (5: 21.83 → 21.85).
    Step(i64),
    /// Up to the next price ending in this many hundredths (99: 21.85 → 21.99).
    Charm(i64),
}

impl Rounding {
    /// `minor` rounded up as the rule says, `unit` minor units to the major unit.
    pub fn apply(self, minor: i64, unit: i64) -> i64 {
        let scale = unit / 100;
        match self {
            Rounding::Step(h) if scale > 0 && h > 0 => {
                let step = h * scale;
                minor.div_euclid(step) * step + if minor % step == 0 { 0 } else { step }
            }
            Rounding::Charm(h) if scale > 0 => {
                let ending = h * scale;
                let candidate = minor - minor.rem_euclid(unit) + ending;
                if candidate < minor {
                    candidate + unit
                } else {
                    candidate
                }
            }
            _ => minor,
        }
    }

    /// How formulas name the rounding: `round_99`, `step_05`, `cents`.
    pub fn write_name(self, out: &mut String) {
        use std::fmt::Write;
        // Writing to a String cannot fail.
        let _ = match self {
            Rounding::None => write!(out, "cents"),
            Rounding::Step(h) => write!(out, "step_{h:02}"),
            Rounding::Charm(h) => write!(out, "round_{h:02}"),
        };
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    #[default]
    None,
    /// Never above the lowest price another channel publishes (Amazon's fair pricing,
    /// Walmart's "Reasonable Price Not Satisfied").
    NotAboveLowest,
}

/// One channel's `price` table for one SKU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceRule {
    pub markup_bp: i64,
    pub fee_bp: i64,
    #[serde(default)]
    pub rounding: Rounding,
    pub max_deviation_bp: Option<i64>,
    pub margin_floor_bp: Option<i64>,
    #[serde(default)]
    pub parity: Parity,
    pub max_discount_bp: i64,
}

#[cfg(test)]
mod tests {
    use super::Rounding;

    #[test]
    fn charm_and_step_round_up_and_keep_a_price_already_on_the_mark() {
        assert_eq!(Rounding::Charm(99).apply(2185, 100), 2199);
        assert_eq!(Rounding::Charm(99).apply(2199, 100), 2199);
        assert_eq!(Rounding::Charm(99).apply(2100, 100), 2199);
        assert_eq!(Rounding::Charm(95).apply(2196, 100), 2295);
        assert_eq!(Rounding::Step(5).apply(2183, 100), 2185);
        assert_eq!(Rounding::Step(5).apply(2185, 100), 2185);
        assert_eq!(Rounding::Step(50).apply(2151, 100), 2200);
        // three decimals: hundredths scale by ten
        assert_eq!(Rounding::Charm(99).apply(21_851, 1000), 21_990);
        // a currency without cents keeps its minor unit
        assert_eq!(Rounding::Charm(99).apply(1980, 1), 1980);
    }
}
