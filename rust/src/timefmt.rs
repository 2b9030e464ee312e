//! RFC 3339 text for Unix-microsecond times (UTC) and back, without a date library.

use crate::error::{CoreError, CoreResult};

/// The earliest time the core holds: 1970-01-01T00:00:00Z.
pub const TIME_MIN: i64 = 0;
/// The first time the core does not hold: 9999-01-01T00:00:00Z. A year short of what
/// an RFC 3339 year can say, so every time derived from one it holds (a hold's expiry,
/// a time plus the allowed clock skew) is still a valid RFC 3339 and Python time.
pub const TIME_END: i64 = 253_370_764_800 * 1_000_000;

/// Refuses a time outside [`TIME_MIN`, `TIME_END`) as bad input in `field`.
pub fn check_time(field: &str, micros: i64) -> CoreResult<()> {
    if (TIME_MIN..TIME_END).contains(&micros) {
        return Ok(());
    }
    Err(CoreError::bad(
        field,
        "time must be from 1970-01-01T00:00:00Z up to, not including, 9999-01-01T00:00:00Z (UTC)",
    ))
}

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

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `width` ASCII digits at `at` as a number.
fn digits(s: &[u8], at: usize, width: usize) -> Option<i64> {
    s.get(at..at + width)?.iter().try_fold(0i64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
    })
}

/// Unix microseconds of `YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|±HH:MM)`, years 1000-8999.
///
/// Deliberately narrow: it is the form producers write, read without building a
/// datetime. Anything else (another form RFC 3339 or ISO 8601 allows, a leap
/// second, more than six fraction digits) is None, and the caller hands the text
/// to the full decoder, so every time is read exactly as that decoder reads it.
pub fn parse_rfc3339(s: &[u8]) -> Option<i64> {
    let sep = |at: usize, b: u8| s.get(at) == Some(&b);
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let (y, mo, d) = (digits(s, 0, 4)?, digits(s, 5, 2)?, digits(s, 8, 2)?);
    let (h, mi, sec) = (digits(s, 11, 2)?, digits(s, 14, 2)?, digits(s, 17, 2)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let valid = (1000..9000).contains(&y)
        && (1..=12).contains(&mo)
        && d >= 1
        && d <= month_days[(mo - 1) as usize]
        && h < 24
        && mi < 60
        && sec < 60;
    if !valid {
        return None;
    }
    let mut at = 19;
    let mut frac = 0i64;
    if sep(at, b'.') {
        let count = s[at + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if !(1..=6).contains(&count) {
            return None;
        }
        frac = digits(s, at + 1, count)? * 10i64.pow(6 - count as u32);
        at += 1 + count;
    }
    let offset_min = match s.get(at..)? {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (digits(s, at + 1, 2)?, digits(s, at + 4, 2)?);
            if oh >= 24 || om >= 60 {
                return None;
            }
            let minutes = oh * 60 + om;
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Some(secs * 1_000_000 + frac)
}

#[cfg(test)]
mod tests {
    use super::{check_time, parse_rfc3339, rfc3339, TIME_END};

    #[test]
    fn times_the_core_cannot_hold_are_bad_input() {
        assert_eq!(rfc3339(TIME_END), "9999-01-01T00:00:00Z");
        assert!(check_time("ts", TIME_END - 1).is_ok());
        assert!(check_time("ts", TIME_END).is_err());
        assert!(check_time("ts", -1).is_err());
        assert!(check_time("ts", 0).is_ok());
    }

    #[test]
    fn reads_what_it_writes() {
        for micros in [
            0,
            1,
            951_782_400_000_001,
            1_764_288_000_000_000,
            -1,
            4_102_444_799_999_999,
        ] {
            assert_eq!(parse_rfc3339(rfc3339(micros).as_bytes()), Some(micros));
        }
    }

    #[test]
    fn reads_offsets_and_short_fractions() {
        let base = parse_rfc3339(b"2026-11-23T10:00:00Z");
        assert_eq!(base, Some(1_795_428_000_000_000));
        assert_eq!(parse_rfc3339(b"2026-11-23T11:30:00+01:30"), base);
        assert_eq!(parse_rfc3339(b"2026-11-23T05:00:00-05:00"), base);
        assert_eq!(
            parse_rfc3339(b"2026-11-23T10:00:00.5Z"),
            base.map(|b| b + 500_000)
        );
    }

    #[test]
    fn leaves_every_other_form_to_the_full_decoder() {
        for text in [
            "2026-11-23T10:00:00",          // no zone
            "2026-11-23 10:00:00Z",         // space
            "2026-11-23t10:00:00z",         // lower case
            "2026-02-29T10:00:00Z",         // not a leap year
            "2026-11-23T23:59:60Z",         // leap second
            "2026-11-23T10:00:00.1234567Z", // nanoseconds
            "2026-11-23T10:00:00.Z",        // empty fraction
            "2026-11-23T10:00:00+0100",     // offset without colon
            "2026-11-23T10:00:00+24:00",    // offset out of range
            "0999-11-23T10:00:00Z",         // outside the years read here
            "2026-11-23T10:00:00Zjunk",     // trailing text
            "２０２６-11-23T10:00:00Z",     // not ASCII digits
        ] {
            assert_eq!(parse_rfc3339(text.as_bytes()), None, "{text}");
        }
    }

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
