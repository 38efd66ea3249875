//! Numbers for people: money with its currency symbol and thousands separators, counts,
//! percentages, and HTML escaping.
//!
//! The campaign table is rendered twice, here for the page as written and by the page's
//! script when a filter changes, so these rules are mirrored one for one in
//! `assets/report.js` (`money`, `count`, `pct`): integer rounding, half away from zero, on
//! values that are never negative there, so both sides print the same text.

/// Symbol and decimals of a reporting currency. Currencies without minor units in practice
/// (KRW, JPY) print whole units; unknown codes print the code itself before the amount.
pub fn currency_style(code: &str) -> (String, u32) {
    match code {
        "USD" => ("$".into(), 2),
        "EUR" => ("€".into(), 2),
        "GBP" => ("£".into(), 2),
        "KRW" => ("₩".into(), 0),
        "JPY" => ("¥".into(), 0),
        other => (format!("{other} "), 2),
    }
}

/// `1234567` -> `1,234,567`.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (k, ch) in digits.chars().enumerate() {
        if k > 0 && (digits.len() - k).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Integer micros as money: `money(1_234_567_890, "USD")` is `$1,234.57`; KRW has no decimals.
pub fn money(micros: i64, currency: &str) -> String {
    let (symbol, decimals) = currency_style(currency);
    let unit = 10_i64.pow(6 - decimals);
    // Half away from zero, in integers, so the script's rounding agrees to the last digit.
    let scaled = (micros.unsigned_abs() + unit.unsigned_abs() / 2) / unit.unsigned_abs();
    let sign = if micros < 0 && scaled > 0 { "-" } else { "" };
    if decimals == 0 {
        return format!("{sign}{symbol}{}", group(scaled));
    }
    let minor = 10_u64.pow(decimals);
    format!(
        "{sign}{symbol}{}.{:0width$}",
        group(scaled / minor),
        scaled % minor,
        width = decimals as usize
    )
}

/// Micros as money, or an em dash for a missing value.
pub fn money_or_dash(micros: Option<i64>, currency: &str) -> String {
    micros.map_or_else(|| DASH.to_string(), |m| money(m, currency))
}

/// Placeholder for a value that does not exist (no installs, no prediction yet).
pub const DASH: &str = "—";

/// A count with thousands separators.
pub fn count(n: i64) -> String {
    let s = group(n.unsigned_abs());
    if n < 0 { format!("-{s}") } else { s }
}

/// A share as a percentage with `decimals` decimals: `pct(0.1234, 1)` is `12.3%`.
pub fn pct(share: f64, decimals: u32) -> String {
    if !share.is_finite() {
        return DASH.to_string();
    }
    let scale = 10_f64.powi(decimals as i32);
    let v = (share * 100.0 * scale).round() / scale;
    format!("{v:.prec$}%", prec = decimals as usize)
}

/// An optional share as a percentage.
pub fn pct_or_dash(share: Option<f64>, decimals: u32) -> String {
    share.map_or_else(|| DASH.to_string(), |s| pct(s, decimals))
}

/// A ratio such as a lift: `2.43×`.
pub fn times(ratio: Option<f64>) -> String {
    match ratio {
        Some(r) if r.is_finite() => format!("{r:.2}×"),
        _ => DASH.to_string(),
    }
}

/// Change of `current` against `previous`, signed, as a percentage; a dash when the
/// previous period had nothing to compare with.
pub fn change(current: f64, previous: Option<f64>) -> Option<f64> {
    match previous {
        Some(p) if p.abs() > f64::EPSILON && current.is_finite() => Some(current / p - 1.0),
        _ => None,
    }
}

/// Escapes text for HTML element content and double-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON for a `<script type="application/json">` block: `</` cannot end the element early.
pub fn json_in_script(value: &serde_json::Value) -> String {
    value.to_string().replace("</", "<\\/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_has_symbol_separators_and_the_currency_decimals() {
        assert_eq!(money(1_234_567_890, "USD"), "$1,234.57");
        assert_eq!(money(0, "USD"), "$0.00");
        assert_eq!(money(5_000, "USD"), "$0.01");
        assert_eq!(money(4_999, "USD"), "$0.00");
        assert_eq!(money(-2_500_000, "USD"), "-$2.50");
        assert_eq!(money(1_234_567_890_000, "KRW"), "₩1,234,568");
        assert_eq!(money(1_500_000, "CHF"), "CHF 1.50");
        assert_eq!(money_or_dash(None, "USD"), "—");
    }

    #[test]
    fn counts_and_percentages_read_like_a_report() {
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(-1_000), "-1,000");
        assert_eq!(count(999), "999");
        assert_eq!(pct(0.1234, 1), "12.3%");
        assert_eq!(pct(1.0, 0), "100%");
        assert_eq!(pct(f64::NAN, 1), "—");
        assert_eq!(times(Some(2.4321)), "2.43×");
        assert_eq!(times(None), "—");
    }

    #[test]
    fn change_needs_a_previous_value() {
        assert_eq!(
            change(110.0, Some(100.0)).map(|c| (c * 1000.0).round()),
            Some(100.0)
        );
        assert_eq!(change(1.0, Some(0.0)), None);
        assert_eq!(change(1.0, None), None);
    }

    #[test]
    fn escaping_covers_markup_and_script_ends() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let v = serde_json::json!({"name": "</script><script>alert(1)</script>"});
        assert!(!json_in_script(&v).contains("</script>"));
    }
}
