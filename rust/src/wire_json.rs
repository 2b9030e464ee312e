//! Outbound messages in their wire JSON, written straight from the core.
//!
//! A busy flush carries one quantity item per changed stock key and channel, and
//! one route per committed order line; writing them here costs a fraction of
//! building and encoding an object for each in Python. For quantities the
//! envelope (`channel`, `seq`, `ts`) stays with the publisher, which wraps these
//! items. The service tests check both against the contract Structs' own
//! encoding (msgspec's: fields in declaration order, compact, UTF-8 unescaped).

use std::io::Write;

use crate::allocation::Changes;
use crate::timefmt::write_rfc3339;

/// One channel's items, at most a message's worth.
pub struct ItemPiece {
    pub channel: u16,
    /// `{"sku":…,"condition":…,"qty":…,"source_ts":…}` items joined by commas.
    pub json: Vec<u8>,
    pub keys: Vec<u32>,
    /// Source times in Unix µs as drained (0: no event behind the quantity).
    pub source_ts: Vec<i64>,
}

/// Groups `changes` by channel (in channel order, drain order within) into pieces of
/// at most `per_message` items. `name(key)` gives (sku, condition); a source time of
/// 0 is written as `fallback_ts`.
pub fn pieces<'a>(
    changes: &Changes,
    per_message: usize,
    fallback_ts: i64,
    name: impl Fn(u32) -> (&'a str, &'a str),
) -> Vec<ItemPiece> {
    let per_message = per_message.max(1);
    let mut order: Vec<usize> = (0..changes.channel.len()).collect();
    order.sort_by_key(|&i| changes.channel[i]);
    let mut out: Vec<ItemPiece> = Vec::new();
    for i in order {
        let channel = changes.channel[i];
        let fits =
            matches!(out.last(), Some(p) if p.channel == channel && p.keys.len() < per_message);
        if !fits {
            out.push(ItemPiece {
                channel,
                json: Vec::new(),
                keys: Vec::new(),
                source_ts: Vec::new(),
            });
        }
        let Some(piece) = out.last_mut() else {
            continue;
        };
        let (key, ts) = (changes.key[i], changes.source_ts[i]);
        if !piece.keys.is_empty() {
            piece.json.push(b',');
        }
        let (sku, condition) = name(key);
        write_item(
            &mut piece.json,
            sku,
            condition,
            changes.qty[i],
            if ts == 0 { fallback_ts } else { ts },
        );
        piece.keys.push(key);
        piece.source_ts.push(ts);
    }
    out
}

fn write_item(out: &mut Vec<u8>, sku: &str, condition: &str, qty: i64, ts: i64) {
    out.extend_from_slice(b"{\"sku\":");
    write_str(out, sku);
    out.extend_from_slice(b",\"condition\":");
    write_str(out, condition);
    out.extend_from_slice(b",\"qty\":");
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{qty}");
    out.extend_from_slice(b",\"source_ts\":\"");
    write_rfc3339(out, ts);
    out.extend_from_slice(b"\"}");
}

/// A `route` message (CONTRACT: `inv.route.<location>`).
pub fn route(order_id: &str, line_id: &str, sku: &str, qty: i64, location: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    out.extend_from_slice(b"{\"type\":\"route\",\"order_id\":");
    write_str(&mut out, order_id);
    out.extend_from_slice(b",\"line_id\":");
    write_str(&mut out, line_id);
    out.extend_from_slice(b",\"sku\":");
    write_str(&mut out, sku);
    // Writing to a Vec cannot fail.
    let _ = write!(out, ",\"qty\":{qty},\"location\":");
    write_str(&mut out, location);
    out.push(b'}');
    out
}

/// A channel's price for one SKU, the whole `PriceUpdate` message, stamped `ts` (Unix µs).
pub fn price(sku: &str, price: &str, currency: &str, reason: &str, ts: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"{\"type\":\"price\",\"sku\":");
    write_str(&mut out, sku);
    out.extend_from_slice(b",\"price\":");
    write_str(&mut out, price);
    out.extend_from_slice(b",\"currency\":");
    write_str(&mut out, currency);
    out.extend_from_slice(b",\"reason\":");
    write_str(&mut out, reason);
    out.extend_from_slice(b",\"ts\":\"");
    write_rfc3339(&mut out, ts);
    out.extend_from_slice(b"\"}");
    out
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    // A &str always serializes; the fallback keeps the output valid JSON regardless.
    if serde_json::to_writer(&mut *out, s).is_err() {
        out.extend_from_slice(b"\"\"");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_as_msgspec_writes_it() {
        let json = route("o-1", "1", "A\"ü", 2, "wh");
        assert_eq!(
            String::from_utf8(json).unwrap_or_default(),
            r#"{"type":"route","order_id":"o-1","line_id":"1","sku":"A\"ü","qty":2,"location":"wh"}"#
        );
    }

    #[test]
    fn items_grouped_by_channel_in_pieces() {
        let changes = Changes {
            channel: vec![1, 0, 1, 1],
            key: vec![0, 0, 1, 2],
            qty: vec![5, 7, 0, 3],
            source_ts: vec![0, 1_000_000, 2_000_001, 0],
        };
        let names = ["A", "B\"q", "C"];
        let out = pieces(&changes, 2, 60_000_000, |k| (names[k as usize], "new"));
        let text: Vec<(u16, String)> = out
            .iter()
            .map(|p| {
                (
                    p.channel,
                    String::from_utf8(p.json.clone()).unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            text,
            vec![
                (0, r#"{"sku":"A","condition":"new","qty":7,"source_ts":"1970-01-01T00:00:01Z"}"#.into()),
                (
                    1,
                    concat!(
                        r#"{"sku":"A","condition":"new","qty":5,"source_ts":"1970-01-01T00:01:00Z"},"#,
                        r#"{"sku":"B\"q","condition":"new","qty":0,"source_ts":"1970-01-01T00:00:02.000001Z"}"#
                    )
                    .into()
                ),
                (1, r#"{"sku":"C","condition":"new","qty":3,"source_ts":"1970-01-01T00:01:00Z"}"#.into()),
            ]
        );
        assert_eq!(out[1].keys, vec![0, 1]);
        assert_eq!(out[1].source_ts, vec![0, 2_000_001]);
    }
}
