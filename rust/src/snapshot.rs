//! Snapshots: a versioned, checksummed image of the state that a restore can trust.
//!
//! Layout: magic `INVSYNC\0`, format version (u32 LE), payload length (u64 LE),
//! CRC-32 of the payload (u32 LE), payload: bincode of [`Persisted`], then (format 2
//! on) of [`LogImage`], then (format 3 on) of [`AdaptiveImage`], then (format 4 on) of
//! [`CrossImage`] and [`PricingImage`]; format 5 adds when the engine began counting
//! sales to [`AdaptiveImage`], format 6 the rates' day-long counts. An older snapshot
//! restores with the parts it lacks empty.

use crate::error::{CoreError, CoreResult};
use crate::pricing::PricingImage;
use crate::state::{
    AdaptiveImage, AdaptiveImageV4, AdaptiveImageV5, CrossImage, LogImage, Persisted,
};

const MAGIC: &[u8; 8] = b"INVSYNC\0";
pub const FORMAT_VERSION: u32 = 6;
/// The oldest format this build restores.
const OLDEST_VERSION: u32 = 1;
const HEADER: usize = 8 + 4 + 8 + 4;

/// A snapshot's sections: each format adds one after the previous format's.
pub type Sections = (Persisted, LogImage, AdaptiveImage, CrossImage, PricingImage);

pub fn encode(
    p: &Persisted,
    log: &LogImage,
    adaptive: &AdaptiveImage,
    cross: &CrossImage,
    pricing: &PricingImage,
) -> CoreResult<Vec<u8>> {
    let payload = bincode::serialize(&(p, log, adaptive, cross, pricing))
        .map_err(|e| CoreError::Snapshot(e.to_string()))?;
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

fn field<const N: usize>(data: &[u8], at: usize) -> CoreResult<[u8; N]> {
    data.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| CoreError::Snapshot("truncated header".into()))
}

pub fn decode(data: &[u8]) -> CoreResult<Sections> {
    if data.get(..8) != Some(MAGIC.as_slice()) {
        return Err(CoreError::Snapshot(
            "not an invsync snapshot (bad magic)".into(),
        ));
    }
    let version = u32::from_le_bytes(field(data, 8)?);
    if !(OLDEST_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(CoreError::Snapshot(format!(
            "format version {version}, this build reads versions {OLDEST_VERSION} to {FORMAT_VERSION}"
        )));
    }
    let len = u64::from_le_bytes(field(data, 12)?);
    let crc = u32::from_le_bytes(field(data, 20)?);
    let payload = &data[HEADER..];
    if payload.len() as u64 != len {
        return Err(CoreError::Snapshot(format!(
            "truncated: {} payload bytes, header says {len}",
            payload.len()
        )));
    }
    if crc32fast::hash(payload) != crc {
        return Err(CoreError::Snapshot(
            "checksum mismatch: the snapshot is corrupt".into(),
        ));
    }
    let undecodable = |e: bincode::Error| CoreError::Snapshot(format!("undecodable: {e}"));
    match version {
        1 => {
            let p = bincode::deserialize(payload).map_err(undecodable)?;
            Ok((
                p,
                LogImage::default(),
                AdaptiveImage::default(),
                CrossImage::default(),
                PricingImage::default(),
            ))
        }
        2 => {
            let (p, log) = bincode::deserialize(payload).map_err(undecodable)?;
            Ok((
                p,
                log,
                AdaptiveImage::default(),
                CrossImage::default(),
                PricingImage::default(),
            ))
        }
        3 => {
            let (p, log, adaptive): (_, _, AdaptiveImageV4) =
                bincode::deserialize(payload).map_err(undecodable)?;
            Ok((
                p,
                log,
                adaptive.into(),
                CrossImage::default(),
                PricingImage::default(),
            ))
        }
        4 => {
            let (p, log, adaptive, cross, pricing): (_, _, AdaptiveImageV4, _, _) =
                bincode::deserialize(payload).map_err(undecodable)?;
            Ok((p, log, adaptive.into(), cross, pricing))
        }
        5 => {
            let (p, log, adaptive, cross, pricing): (_, _, AdaptiveImageV5, _, _) =
                bincode::deserialize(payload).map_err(undecodable)?;
            Ok((p, log, adaptive.into(), cross, pricing))
        }
        _ => bincode::deserialize(payload).map_err(undecodable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot of an older format: its header over `payload`.
    fn framed(version: u32, payload: &[u8]) -> Vec<u8> {
        let mut data = MAGIC.to_vec();
        data.extend_from_slice(&version.to_le_bytes());
        data.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        data.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        data.extend_from_slice(payload);
        data
    }

    #[test]
    fn a_flipped_byte_is_refused() {
        let mut data = encode(
            &Persisted::default(),
            &LogImage::default(),
            &AdaptiveImage::default(),
            &CrossImage::default(),
            &PricingImage::default(),
        )
        .unwrap();
        let last = data.len() - 1;
        data[last] ^= 1;
        assert!(matches!(decode(&data), Err(CoreError::Snapshot(_))));
        assert!(decode(b"junk").is_err());
        assert!(decode(&data[..10]).is_err());
    }

    #[test]
    fn a_format_1_snapshot_restores_without_its_log_image() {
        let p = Persisted {
            now: 42,
            ..Default::default()
        };
        let payload = bincode::serialize(&p).unwrap();
        let data = framed(1, &payload);
        let (back, log, adaptive, cross, pricing) = decode(&data).unwrap();
        assert_eq!(back.now, 42);
        assert!(log.event_stamps.times.is_empty());
        assert!(adaptive.demand.is_empty());
        assert!(cross.pending.is_empty());
        assert!(pricing.prices.is_empty());
    }

    #[test]
    fn a_format_3_snapshot_restores_with_no_pending_cross_requests_and_no_prices() {
        let p = Persisted {
            now: 7,
            ..Default::default()
        };
        let sections = (&p, &LogImage::default(), &AdaptiveImageV4::default());
        let payload = bincode::serialize(&sections).unwrap();
        let data = framed(3, &payload);
        let (back, _, _, cross, pricing) = decode(&data).unwrap();
        assert_eq!(back.now, 7);
        assert!(cross.pending.is_empty());
        assert!(pricing.prices.is_empty() && pricing.published.is_empty());
    }

    #[test]
    fn a_format_4_snapshot_restores_its_rates_as_counted_long_enough() {
        let old = AdaptiveImageV4 {
            next_at: 9,
            ..Default::default()
        };
        let sections = (
            &Persisted::default(),
            &LogImage::default(),
            &old,
            &CrossImage::default(),
            &PricingImage::default(),
        );
        let payload = bincode::serialize(&sections).unwrap();
        let data = framed(4, &payload);
        let (_, _, adaptive, _, _) = decode(&data).unwrap();
        assert_eq!(adaptive.next_at, 9);
        assert_eq!(adaptive.counting_since, Some(i64::MIN));
        // Format 5 keeps when counting began.
        let fresh = AdaptiveImage {
            counting_since: Some(42),
            ..Default::default()
        };
        let data = encode(
            &Persisted::default(),
            &LogImage::default(),
            &fresh,
            &CrossImage::default(),
            &PricingImage::default(),
        )
        .unwrap();
        assert_eq!(decode(&data).unwrap().2.counting_since, Some(42));
    }
}
