//! RFC 3339 text for Unix-microsecond times (UTC), without a date library.

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// RFC 3339 text of `micros`; every reservation reply carries one.
pub fn rfc3339(micros: i64) -> String {
    let mut out = Vec::with_capacity(27);
    write_rfc3339(&mut out, micros);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends the RFC 3339 text of `micros` (`YYYY-MM-DDTHH:MM:SS[.ffffff]Z`, the
/// fraction only when non-zero, as msgspec writes a UTC datetime). Written digit by
/// digit rather than through `format!`: a busy flush formats one per quantity item,
/// and the formatting machinery cost more than the rest of the work.
pub fn write_rfc3339(out: &mut Vec<u8>, micros: i64) {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    if (0..10_000).contains(&y) {
        push_digits(out, y, 4);
    } else {
        out.extend_from_slice(format!("{y:04}").as_bytes());
    }
    let fields = [
        (b'-', i64::from(mo)),
        (b'-', i64::from(d)),
        (b'T', sod / 3600),
        (b':', sod % 3600 / 60),
        (b':', sod % 60),
    ];
    for (sep, value) in fields {
        out.push(sep);
        push_digits(out, value, 2);
    }
    if frac != 0 {
        out.push(b'.');
        push_digits(out, frac, 6);
    }
    out.push(b'Z');
}

/// Appends `value`'s last `width` (at most 6) decimal digits, zero-padded. Dividing by
/// the constant 10 compiles to a multiplication; a power of ten chosen at run time would not.
fn push_digits(out: &mut Vec<u8>, value: i64, width: usize) {
    let mut digits = [b'0'; 6];
    let mut rest = value;
    for slot in digits[..width].iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out.extend_from_slice(&digits[..width]);
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn formats_utc_with_optional_fraction() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_288_000_000_000), "2025-11-28T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000_001), "2000-02-29T00:00:00.000001Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(rfc3339(253_402_300_800_000_000), "10000-01-01T00:00:00Z");
        assert_eq!(rfc3339(-62_198_755_200_000_000), "-001-01-01T00:00:00Z");
    }
}
