//! Small pieces of Mixpanel's wire format used both when parsing and when rendering: loose
//! string values, exact decimal money, JSON string escaping and project time.

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::{DateTime, Duration, LocalResult, Offset, TimeZone};
use chrono_tz::Tz;
use serde_json::value::RawValue;

/// Reads a property that is meant to be a string. Mixpanel stores what the client sent, so an
/// id may arrive as a number (the Engage docs' own example has `"$distinct_id": 4`): numbers
/// and booleans become their JSON text, `null` becomes `None`. Objects and arrays are errors
/// (the message is the found JSON type) because no column could hold them faithfully.
pub(crate) fn loose_str(raw: &RawValue) -> Result<Option<Cow<'_, str>>, &'static str> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => {
            // Borrow when the string has no escapes (nearly always), unescape otherwise.
            if let Ok(s) = serde_json::from_str::<&str>(text) {
                Ok(Some(Cow::Borrowed(s)))
            } else {
                serde_json::from_str::<String>(text)
                    .map(|s| Some(Cow::Owned(s)))
                    .map_err(|_| "an invalid string")
            }
        }
        Some(b'n') => Ok(None),
        Some(b'{') => Err("an object"),
        Some(b'[') => Err("an array"),
        Some(_) => Ok(Some(Cow::Borrowed(text))),
        None => Ok(None),
    }
}

/// [`loose_str`] of an optional (absent) property.
pub(crate) fn opt_str(raw: Option<&RawValue>) -> Result<Option<Cow<'_, str>>, &'static str> {
    match raw {
        None => Ok(None),
        Some(v) => loose_str(v),
    }
}

/// Largest power of ten that still fits the i128 arithmetic below with room to spare.
const MAX_DIGITS: usize = 30;

/// Parses a decimal number (`9.99`, `-1200`, `1.5e3`, `0.1234565`) exactly into millionths.
/// Digits beyond the sixth decimal are rounded half away from zero: a JavaScript client's
/// `9.990000000000002` is still 9,990,000 micros. `None` when `text` is not a decimal number
/// or does not fit an i64 of micros.
pub(crate) fn decimal_to_micros(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let negative = match bytes.first() {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut mantissa: i128 = 0;
    let mut digits = 0usize;
    let mut significant = 0usize;
    let mut frac_len: i64 = 0;
    let mut seen_dot = false;
    while i < bytes.len() {
        match bytes[i] {
            b'0'..=b'9' => {
                digits += 1;
                if mantissa != 0 || bytes[i] != b'0' {
                    significant += 1;
                }
                if significant > MAX_DIGITS {
                    return None;
                }
                mantissa = mantissa * 10 + i128::from(bytes[i] - b'0');
                if seen_dot {
                    frac_len += 1;
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => break,
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    let mut exponent: i64 = 0;
    if i < bytes.len() {
        if !matches!(bytes[i], b'e' | b'E') {
            return None;
        }
        exponent = text.get(i + 1..)?.parse::<i64>().ok()?;
        if exponent.abs() > 60 {
            // Only zero survives such an exponent without overflowing or vanishing entirely.
            return (mantissa == 0).then_some(0);
        }
    }
    // value = mantissa * 10^(exponent - frac_len); micros = value * 10^6.
    let shift = exponent - frac_len + 6;
    let micros = if shift >= 0 {
        let scale = 10i128.checked_pow(u32::try_from(shift).ok()?)?;
        mantissa.checked_mul(scale)?
    } else {
        let drop = u32::try_from(-shift).ok()?;
        if drop > 38 {
            0
        } else {
            let scale = 10i128.pow(drop);
            let (q, r) = (mantissa / scale, mantissa % scale);
            if r * 2 >= scale { q + 1 } else { q }
        }
    };
    let micros = if negative { -micros } else { micros };
    i64::try_from(micros).ok()
}

/// Writes millionths as the shortest exact decimal (`9990000` → `9.99`, `5500000000` →
/// `5500`), which is what an app sending a JSON number for `revenue` puts on the wire.
pub fn write_micros_decimal(out: &mut String, micros: i64) {
    if micros < 0 {
        out.push('-');
    }
    let abs = micros.unsigned_abs();
    let (whole, frac) = (abs / 1_000_000, abs % 1_000_000);
    let _ = write!(out, "{whole}");
    if frac != 0 {
        let mut frac_text = format!("{frac:06}");
        while frac_text.ends_with('0') {
            frac_text.pop();
        }
        out.push('.');
        out.push_str(&frac_text);
    }
}

/// Writes `s` as a JSON string literal. Renderers write millions of lines by hand into one
/// buffer rather than building a JSON tree per line; this is the one place escaping happens.
pub fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(s);
    } else {
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
    }
    out.push('"');
}

/// The true UTC instant (ms since epoch) of a Mixpanel *project time* (ms): the wall-clock
/// time in `tz` written as if it were UTC, as projects created before 2023 store `time`.
///
/// Wall times repeated by a fall-back transition are ambiguous and read as the earlier
/// instant; wall times inside a spring-forward gap (which honest project time never
/// contains) are read with the offsets on either side, also taking the earlier instant.
/// `None` only for times outside chrono's range.
pub fn project_time_to_utc_ms(project_ms: i64, tz: Tz) -> Option<i64> {
    let secs = project_ms.div_euclid(1000);
    let sub_ms = project_ms.rem_euclid(1000);
    let naive = DateTime::from_timestamp(secs, 0)?.naive_utc();
    let utc_secs = match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => t.timestamp(),
        LocalResult::Ambiguous(a, b) => a.timestamp().min(b.timestamp()),
        LocalResult::None => {
            let day = Duration::hours(24);
            let before = tz.offset_from_utc_datetime(&(naive - day)).fix();
            let after = tz.offset_from_utc_datetime(&(naive + day)).fix();
            let as_utc = naive.and_utc().timestamp();
            (as_utc - i64::from(before.local_minus_utc()))
                .min(as_utc - i64::from(after.local_minus_utc()))
        }
    };
    utc_secs.checked_mul(1000)?.checked_add(sub_ms)
}

/// The project time (ms) Mixpanel stores for the UTC instant `utc_ms` in a project whose zone
/// is `tz`: the instant shifted by the zone's offset at that instant.
pub fn utc_ms_to_project_time(utc_ms: i64, tz: Tz) -> i64 {
    let Some(t) = DateTime::from_timestamp_millis(utc_ms) else {
        return utc_ms;
    };
    let offset = tz.offset_from_utc_datetime(&t.naive_utc()).fix();
    utc_ms + i64::from(offset.local_minus_utc()) * 1000
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    #[test]
    fn decimals_become_exact_micros() {
        assert_eq!(decimal_to_micros("9.99"), Some(9_990_000));
        assert_eq!(decimal_to_micros("5500"), Some(5_500_000_000));
        assert_eq!(decimal_to_micros("-1.5"), Some(-1_500_000));
        assert_eq!(decimal_to_micros("1.5e3"), Some(1_500_000_000));
        assert_eq!(decimal_to_micros("1E-6"), Some(1));
        assert_eq!(decimal_to_micros("9.990000000000002"), Some(9_990_000));
        assert_eq!(decimal_to_micros("0.0000005"), Some(1));
        assert_eq!(decimal_to_micros("0.00000049"), Some(0));
        assert_eq!(decimal_to_micros("0.1"), Some(100_000));
        assert_eq!(decimal_to_micros("abc"), None);
        assert_eq!(decimal_to_micros(""), None);
        assert_eq!(decimal_to_micros("1.2.3"), None);
        assert_eq!(decimal_to_micros("99999999999999999999"), None);
    }

    #[test]
    fn micros_render_as_shortest_exact_decimal() {
        for (m, text) in [
            (9_990_000, "9.99"),
            (5_500_000_000, "5500"),
            (-1_500_000, "-1.5"),
            (1, "0.000001"),
            (0, "0"),
        ] {
            let mut s = String::new();
            write_micros_decimal(&mut s, m);
            assert_eq!(s, text);
            assert_eq!(decimal_to_micros(&s), Some(m));
        }
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut s = String::new();
        write_json_str(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(
            serde_json::from_str::<String>(&s).unwrap(),
            "a\"b\\c\nd\u{1}é"
        );
    }

    #[test]
    fn loose_strings_accept_numbers_and_reject_objects() {
        assert_eq!(loose_str(&raw("\"x\"")).unwrap().as_deref(), Some("x"));
        assert_eq!(
            loose_str(&raw("\"a\\u00e9\"")).unwrap().as_deref(),
            Some("aé")
        );
        assert_eq!(loose_str(&raw("4")).unwrap().as_deref(), Some("4"));
        assert_eq!(loose_str(&raw("null")).unwrap(), None);
        assert!(loose_str(&raw("{\"a\":1}")).is_err());
    }

    #[test]
    fn project_time_round_trips_outside_folds() {
        let tz: Tz = "America/Los_Angeles".parse().unwrap();
        // Summer (PDT, UTC-7) and winter (PST, UTC-8).
        for utc in [1_783_000_000_123i64, 1_767_225_600_000] {
            assert_eq!(
                project_time_to_utc_ms(utc_ms_to_project_time(utc, tz), tz),
                Some(utc)
            );
        }
        // 2026-11-01 01:30 happens twice in Los Angeles: the earlier (PDT) instant wins.
        let local = chrono::NaiveDate::from_ymd_opt(2026, 11, 1)
            .unwrap()
            .and_hms_opt(1, 30, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis();
        let expected = chrono::NaiveDate::from_ymd_opt(2026, 11, 1)
            .unwrap()
            .and_hms_opt(8, 30, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis();
        assert_eq!(project_time_to_utc_ms(local, tz), Some(expected));
        // 2026-03-08 02:30 does not exist there: the earlier reading is 09:30Z (01:30 PST).
        let gap = chrono::NaiveDate::from_ymd_opt(2026, 3, 8)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis();
        assert_eq!(project_time_to_utc_ms(gap, tz), Some(gap + 7 * 3_600_000));
    }
}
