//! `promo.set` in a partitioned state. Whether a promotion is accepted depends on all
//! of its SKUs (one overlapping an earlier promotion on any SKU refuses it whole), so
//! every partition judges it on all of them and keeps it whole: all partitions accept
//! it or all refuse it, and partition 0 alone reports a refusal. The SKUs of other
//! partitions have no keys here, so their share of it moves no quantity and no price.

use super::State;
use crate::counters::Counters;
use crate::effects::Effects;
use crate::error::CoreResult;
use crate::pricing::PromoRequest;

impl State {
    /// A promotion as every partition judges it; each alerts only about its own SKUs.
    pub fn promo_set(&mut self, c: &Counters, req: &PromoRequest<'_>) -> CoreResult<Effects> {
        let part = self.partition;
        let mut fx = self
            .pricing
            .promo_set(&self.policy, req)
            .map_err(|e| e.whole_event(part))?;
        fx.alerts.retain(|a| match &a.sku {
            Some(sku) => self.owns(sku),
            None => part.is_first(),
        });
        self.reshow_carved(c);
        Ok(fx)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{World, MICROS};
    use crate::error::CoreError;
    use crate::partition::Partition;
    use crate::pricing::rule::PriceRule;
    use crate::pricing::PromoRequest;

    /// Partitions 0 and 1 of 2, every channel priced with up to 50 % off.
    fn pair() -> [World; 2] {
        [0, 1].map(|k| {
            let mut w = World::partition(Partition::new(k, 2).expect("partition"));
            for rules in &mut w.state.policy.tables.profiles[0] {
                rules.price = Some(PriceRule {
                    markup_bp: 0,
                    fee_bp: 0,
                    rounding: Default::default(),
                    max_deviation_bp: None,
                    margin_floor_bp: None,
                    parity: Default::default(),
                    max_discount_bp: 5_000,
                });
            }
            w
        })
    }

    /// `promo` on `skus` in both partitions: Ok(()) where accepted, else whether the
    /// partition reports the refusal itself.
    fn promote(ws: &mut [World; 2], promo: &str, skus: &[&str]) -> [Result<(), bool>; 2] {
        let skus: Vec<String> = skus.iter().map(|s| s.to_string()).collect();
        let channels = ["shop".to_string()];
        [0, 1].map(|k| {
            let w = &mut ws[k];
            let req = PromoRequest {
                id: promo,
                channels: &channels,
                skus: &skus,
                discount_pct: 10.0,
                starts: MICROS,
                ends: 100 * MICROS,
                stock_cap: None,
            };
            w.state
                .promo_set(&w.c, &req)
                .map(|_| ())
                .map_err(|e| matches!(e, CoreError::BadInput { .. }))
        })
    }

    #[test]
    fn an_overlap_on_one_partitions_sku_refuses_the_promotion_in_every_partition() {
        let mut ws = pair();
        // D is partition 1's: partition 0 holds nothing of the first promotion.
        assert_eq!(promote(&mut ws, "first", &["D"]), [Ok(()), Ok(())]);
        assert_eq!(
            promote(&mut ws, "second", &["A", "D"]),
            [Err(true), Err(false)],
            "refused everywhere, reported by partition 0 alone"
        );
        assert_eq!(promote(&mut ws, "third", &["A"]), [Ok(()), Ok(())]);
    }
}
