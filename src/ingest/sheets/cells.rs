//! Parsing the formatted cells people type and exports print: "1,234.50", "₩1,200", "12%",
//! "2026. 1. 3". Shared by the sheets and the Adison report, whose numbers come in the same
//! locale-formatted shapes. Money is parsed from its decimal digits, never through `f64`, so
//! a value survives the trip to integer micros exactly.

use chrono::NaiveDate;

/// Currency markers that may prefix or suffix an amount, longest first so `US$` wins over
/// `$`. `원` is how Korean sheets write won after the number.
const MARKERS: [(&str, &str); 11] = [
    ("US$", "USD"),
    ("JP¥", "JPY"),
    ("KRW", "KRW"),
    ("USD", "USD"),
    ("JPY", "JPY"),
    ("₩", "KRW"),
    ("￦", "KRW"),
    ("원", "KRW"),
    ("$", "USD"),
    ("¥", "JPY"),
    ("￥", "JPY"),
];

/// Spaces a locale may use as a thousands separator or padding.
fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{a0}' || c == '\u{202f}' || c == '\u{2009}'
}

/// A money cell as integer micros of its currency, with the currency its symbol names
/// (if any). Accepts thousands separators, a currency symbol or code before or after the
/// number, a leading minus and accounting parentheses; at most six (non-zero) decimals, because
/// a seventh could not be represented and silently rounding money is wrong.
pub fn parse_money_micros(cell: &str) -> Result<(i64, Option<&'static str>), String> {
    let bad = |why: &str| format!("{cell:?} is not an amount of money: {why}");
    let mut s = cell.trim();
    let mut negative = false;
    if let Some(inner) = s.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        negative = true;
        s = inner.trim();
    }
    let mut currency = None;
    // A sign may sit before or after the symbol: "-₩1,200" and "₩-1,200" both occur.
    for _ in 0..2 {
        if let Some(rest) = s.strip_prefix('-').or_else(|| s.strip_prefix('−')) {
            if negative {
                return Err(bad("it has two signs"));
            }
            negative = true;
            s = rest.trim_start();
        }
        if currency.is_none() {
            for (marker, code) in MARKERS {
                if let Some(rest) = s.strip_prefix(marker) {
                    currency = Some(code);
                    s = rest.trim_start();
                    break;
                } else if let Some(rest) = s.strip_suffix(marker) {
                    currency = Some(code);
                    s = rest.trim_end();
                    break;
                }
            }
        }
    }
    if s.contains('%') {
        return Err(bad("a percentage is not money"));
    }
    let digits: String = s.chars().filter(|c| *c != ',' && !is_space(*c)).collect();
    if !digits.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad(
            "only digits, separators and a currency symbol are allowed",
        ));
    }
    let micros = crate::ingest::money::exact_micros(&digits).map_err(|why| bad(&why))?;
    Ok((if negative { -micros } else { micros }, currency))
}

/// A rate or ratio as `f64`: "0.000741", "1,350.5", "12%" (= 0.12). The percent form is
/// parsed by moving the decimal point in the text (`12.5e-2`), so it rounds once, like any
/// other decimal, instead of twice through a division.
pub fn parse_rate(cell: &str) -> Result<f64, String> {
    let bad = |why: &str| format!("{cell:?} is not a number: {why}");
    let s: String = cell
        .trim()
        .chars()
        .filter(|c| *c != ',' && !is_space(*c))
        .collect();
    let (number, percent) = match s.strip_suffix('%') {
        Some(n) => (n, true),
        None => (s.as_str(), false),
    };
    let body = number.strip_prefix(['-', '+']).unwrap_or(number);
    let (i, f) = body.split_once('.').unwrap_or((body, ""));
    if (i.is_empty() && f.is_empty()) || !i.chars().chain(f.chars()).all(|c| c.is_ascii_digit()) {
        return Err(bad("expected digits with an optional decimal point or %"));
    }
    let text = if percent {
        format!("{number}e-2")
    } else {
        number.to_string()
    };
    let v: f64 = text.parse().map_err(|_| bad("unreadable"))?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(bad("not finite"))
    }
}

/// A count: "12,345" or "12345"; no decimals.
pub fn parse_count(cell: &str) -> Result<i64, String> {
    let s: String = cell
        .trim()
        .chars()
        .filter(|c| *c != ',' && !is_space(*c))
        .collect();
    let body = s.strip_prefix('-').unwrap_or(&s);
    if body.is_empty() || !body.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("{cell:?} is not a whole number"));
    }
    s.parse()
        .map_err(|_| format!("{cell:?} is too large for a count"))
}

/// A date as a sheet or export shows it: ISO "2026-01-03", the Korean locale's
/// "2026. 1. 3" (with or without the final dot) or "2026/01/03".
pub fn parse_date(cell: &str) -> Result<NaiveDate, String> {
    let s = cell.trim();
    let bad = || format!("{cell:?} is not a date (expected YYYY-MM-DD or YYYY. M. D)");
    let sep = if s.contains('-') {
        '-'
    } else if s.contains('/') {
        '/'
    } else {
        '.'
    };
    let parts: Vec<&str> = s.trim_end_matches('.').split(sep).map(str::trim).collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    let num = |p: &str, max_len: usize| {
        if p.is_empty() || p.len() > max_len || !p.chars().all(|c| c.is_ascii_digit()) {
            None
        } else {
            p.parse::<u32>().ok()
        }
    };
    let (Some(y), Some(m), Some(d)) = (num(y, 4), num(m, 2), num(d, 2)) else {
        return Err(bad());
    };
    if y < 1000 {
        return Err(bad());
    }
    NaiveDate::from_ymd_opt(y as i32, m, d).ok_or_else(bad)
}

/// A currency code as typed: trimmed and upper-cased, and three ASCII letters.
pub fn parse_currency(cell: &str) -> Result<String, String> {
    let code = cell.trim().to_ascii_uppercase();
    if code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(format!("{cell:?} is not an ISO 4217 currency code"))
    }
}

/// Days since 1970-01-01: the physical value of a Polars `Date`.
pub fn epoch_days(d: NaiveDate) -> i32 {
    (d - NaiveDate::default()).num_days() as i32
}

/// Micros written back as the decimal a person would type, with thousands separators:
/// 1_234_500_000 → "1,234.5". Inverse of [`parse_money_micros`] (exact).
pub fn format_micros_grouped(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    let whole = (abs / 1_000_000).to_string();
    let frac = abs % 1_000_000;
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if frac == 0 {
        format!("{sign}{grouped}")
    } else {
        let f = format!("{frac:06}");
        format!("{sign}{grouped}.{}", f.trim_end_matches('0'))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn money_parses_exactly_in_every_formatted_shape() {
        let cases = [
            ("1,234.50", 1_234_500_000, None),
            ("₩1,200", 1_200_000_000, Some("KRW")),
            ("1,200원", 1_200_000_000, Some("KRW")),
            ("$0.1", 100_000, Some("USD")),
            ("US$ 19.99", 19_990_000, Some("USD")),
            ("-₩1,200", -1_200_000_000, Some("KRW")),
            ("₩-1,200", -1_200_000_000, Some("KRW")),
            ("(1,234)", -1_234_000_000, None),
            ("0.000001", 1, None),
            ("1 234 000", 1_234_000_000_000, None),
            (".5", 500_000, None),
            ("92233720368.547758", 92_233_720_368_547_758, None),
        ];
        for (s, micros, cur) in cases {
            assert_eq!(parse_money_micros(s).unwrap(), (micros, cur), "{s}");
        }
        for s in [
            "",
            "abc",
            "12%",
            "1.0000001",
            "1,2a",
            "--1",
            "99999999999999999",
        ] {
            assert!(parse_money_micros(s).is_err(), "{s} should fail");
        }
    }

    #[test]
    fn money_formatting_round_trips() {
        for m in [
            0,
            1,
            999_999,
            1_000_000,
            1_234_567_891_234,
            -5_500_000,
            12_345_600,
        ] {
            let s = format_micros_grouped(m);
            assert_eq!(parse_money_micros(&s).unwrap().0, m, "{s}");
        }
        assert_eq!(format_micros_grouped(1_234_000_000_000), "1,234,000");
        assert_eq!(format_micros_grouped(1_234_500_000), "1,234.5");
    }

    #[test]
    fn rates_and_percentages_parse_to_the_nearest_double() {
        assert_eq!(parse_rate("12%").unwrap(), 0.12);
        assert_eq!(parse_rate("0.123%").unwrap(), 0.00123);
        assert_eq!(parse_rate("0.000741").unwrap(), 0.000741);
        assert_eq!(parse_rate("1,350.5").unwrap(), 1350.5);
        assert_eq!(parse_rate("1").unwrap(), 1.0);
        for s in ["", "x", "1e5", "nan", "inf", "1.2.3"] {
            assert!(parse_rate(s).is_err(), "{s} should fail");
        }
    }

    #[test]
    fn dates_parse_in_iso_and_korean_forms() {
        let d = NaiveDate::from_ymd_opt(2026, 1, 3).unwrap();
        for s in [
            "2026-01-03",
            "2026. 1. 3",
            "2026. 1. 3.",
            "2026.01.03",
            "2026/1/3",
        ] {
            assert_eq!(parse_date(s).unwrap(), d, "{s}");
        }
        for s in ["", "2026-13-01", "3/1/2016", "2026. 1", "yesterday"] {
            assert!(parse_date(s).is_err(), "{s} should fail");
        }
    }

    #[test]
    fn counts_accept_separators_only() {
        assert_eq!(parse_count("12,345").unwrap(), 12_345);
        assert!(parse_count("12.5").is_err());
        assert!(parse_count("").is_err());
    }
}
