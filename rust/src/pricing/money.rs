//! Money as the core keeps it: integer minor units of an ISO 4217 currency, never
//! floats. Amounts arrive and leave as decimal strings ("19.99"), so nothing between
//! the producer and the marketplace rounds a price by accident.

use crate::error::{CoreError, CoreResult};

/// The largest amount the core takes, in minor units (10 billion dollars in cents):
/// anything above it is a typo, and every product of an amount and a factor in basis
/// points stays far inside 128 bits.
pub const MAX_MINOR: i64 = 1_000_000_000_000;

/// Active ISO 4217 codes and their minor-unit exponents, from the list the ISO 4217
/// maintenance agency (SIX) publishes. Codes without a minor unit (gold, SDR, test
/// codes) are left out: nothing is sold in them.
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BOV", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHE", 2),
    ("CHF", 2),
    ("CHW", 2),
    ("CLF", 4),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("COU", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MXV", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("USN", 2),
    ("UYI", 0),
    ("UYU", 2),
    ("UYW", 4),
    ("UZS", 2),
    ("VED", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XCG", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

/// A currency by its ISO 4217 code, with the number of digits after its decimal point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Currency {
    pub code: [u8; 3],
    pub exponent: u8,
}

impl Currency {
    /// The currency of an ISO 4217 code (upper case), or a refusal naming `field`.
    pub fn parse(field: &str, code: &str) -> CoreResult<Currency> {
        CURRENCIES
            .binary_search_by(|(c, _)| c.cmp(&code))
            .ok()
            .and_then(|i| {
                let (c, exponent) = CURRENCIES[i];
                let code = c.as_bytes().try_into().ok()?;
                Some(Currency { code, exponent })
            })
            .ok_or_else(|| {
                CoreError::bad(field, format!("{code:?} is not an ISO 4217 currency code"))
            })
    }

    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).unwrap_or("???")
    }

    /// Minor units in one major unit (100 for USD, 1 for JPY).
    pub fn unit(&self) -> i64 {
        10_i64.pow(u32::from(self.exponent))
    }

    /// A decimal string ("19.99", "20") as minor units: digits, at most one point, no
    /// more decimals than the currency has, at most [`MAX_MINOR`].
    pub fn amount(&self, field: &str, text: &str) -> CoreResult<i64> {
        let bad = |why: String| CoreError::bad(field, why);
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(frac) || text.ends_with('.') {
            return Err(bad(format!(
                "{text:?} is not a price: digits with an optional decimal point, at least 0"
            )));
        }
        let places = usize::from(self.exponent);
        let frac = frac.trim_end_matches('0');
        if frac.len() > places {
            return Err(bad(format!(
                "{text} has more decimals than {} has ({places})",
                self.code()
            )));
        }
        let too_big = || {
            bad(format!(
                "{text} {} is beyond any price ({} at most)",
                self.code(),
                self.format(MAX_MINOR)
            ))
        };
        let whole = whole.trim_start_matches('0');
        if whole.len() > 18 {
            return Err(too_big());
        }
        let major: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_big())?
        };
        let minor: i64 = format!("{frac:0<places$}").parse().unwrap_or(0);
        major
            .checked_mul(self.unit())
            .and_then(|m| m.checked_add(minor))
            .filter(|&m| m <= MAX_MINOR)
            .ok_or_else(too_big)
    }

    /// Minor units as the decimal string the wire carries: "19.99", "1999" for JPY.
    pub fn format(&self, minor: i64) -> String {
        let places = usize::from(self.exponent);
        if places == 0 {
            return minor.to_string();
        }
        let unit = self.unit();
        let sign = if minor < 0 { "-" } else { "" };
        let abs = minor.unsigned_abs();
        format!(
            "{sign}{}.{:0places$}",
            abs / unit.unsigned_abs(),
            abs % unit.unsigned_abs()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::parse("currency", "USD").expect("USD")
    }

    #[test]
    fn the_table_is_sorted_so_lookups_find_every_code() {
        assert!(CURRENCIES.windows(2).all(|w| w[0].0 < w[1].0));
        for (code, exponent) in CURRENCIES {
            assert_eq!(Currency::parse("c", code).expect(code).exponent, *exponent);
        }
    }

    #[test]
    fn amounts_are_exact_minor_units_and_round_trip() {
        let u = usd();
        assert_eq!(u.amount("price", "19.99").unwrap(), 1999);
        assert_eq!(u.amount("price", "20").unwrap(), 2000);
        assert_eq!(u.amount("price", "0.10").unwrap(), 10);
        assert_eq!(u.amount("price", "7.500").unwrap(), 750);
        assert_eq!(u.format(1999), "19.99");
        assert_eq!(u.format(5), "0.05");
        let jpy = Currency::parse("c", "JPY").unwrap();
        assert_eq!(jpy.amount("price", "1980").unwrap(), 1980);
        assert_eq!(jpy.format(1980), "1980");
        let kwd = Currency::parse("c", "KWD").unwrap();
        assert_eq!(kwd.amount("price", "1.234").unwrap(), 1234);
    }

    #[test]
    fn negative_absurd_and_malformed_amounts_are_refused() {
        let u = usd();
        for text in [
            "-1.00",
            "19.999",
            "1e3",
            "",
            ".5",
            "5.",
            "NaN",
            "10000000000.01",
            "99999999999999999999",
        ] {
            assert!(u.amount("price", text).is_err(), "{text}");
        }
        assert_eq!(u.amount("price", "10000000000").unwrap(), MAX_MINOR);
        assert!(Currency::parse("currency", "usd").is_err());
        assert!(Currency::parse("currency", "ABC").is_err());
    }
}
