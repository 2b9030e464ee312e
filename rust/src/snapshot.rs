//! Snapshots: a versioned, checksummed image of the state that a restore can trust.
//!
//! Layout: magic `INVSYNC\0`, format version (u32 LE), payload length (u64 LE),
//! CRC-32 of the payload (u32 LE), payload (bincode of [`Persisted`]).

use crate::error::{CoreError, CoreResult};
use crate::state::Persisted;

const MAGIC: &[u8; 8] = b"INVSYNC\0";
pub const FORMAT_VERSION: u32 = 1;
const HEADER: usize = 8 + 4 + 8 + 4;

pub fn encode(p: &Persisted) -> CoreResult<Vec<u8>> {
    let payload = bincode::serialize(p).map_err(|e| CoreError::Snapshot(e.to_string()))?;
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

pub fn decode(data: &[u8]) -> CoreResult<Persisted> {
    if data.get(..8) != Some(MAGIC.as_slice()) {
        return Err(CoreError::Snapshot(
            "not an invsync snapshot (bad magic)".into(),
        ));
    }
    let version = u32::from_le_bytes(field(data, 8)?);
    if version != FORMAT_VERSION {
        return Err(CoreError::Snapshot(format!(
            "format version {version}, this build reads version {FORMAT_VERSION}"
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
    bincode::deserialize(payload).map_err(|e| CoreError::Snapshot(format!("undecodable: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flipped_byte_is_refused() {
        let mut data = encode(&Persisted::default()).unwrap();
        let last = data.len() - 1;
        data[last] ^= 1;
        assert!(matches!(decode(&data), Err(CoreError::Snapshot(_))));
        assert!(decode(b"junk").is_err());
        assert!(decode(&data[..10]).is_err());
    }
}
