//! Money on the wire: decimal text to integer micros, exactly.

/// Parses an exact decimal (`4.99`, `-0.5`, `6500`) into micros, without going through a
/// float: money must add up to the micro. More than six decimals is an error
/// unless the extra digits are zeros (nothing is silently rounded).
pub fn exact_micros(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return Err(format!("{s:?} is not a decimal number"));
    }
    let (kept, dropped) = frac.split_at(frac.len().min(6));
    if dropped.bytes().any(|b| b != b'0') {
        return Err(format!("{s:?} has more than 6 decimals"));
    }
    let whole: i64 = if int.is_empty() {
        0
    } else {
        int.parse()
            .map_err(|_| format!("{s:?} is too large for micros"))?
    };
    let frac_micros: i64 = format!("{kept:0<6}")
        .parse()
        .map_err(|_| format!("{s:?} is not a decimal number"))?;
    let micros = whole
        .checked_mul(1_000_000)
        .and_then(|m| m.checked_add(frac_micros))
        .ok_or_else(|| format!("{s:?} is too large for micros"))?;
    Ok(if negative { -micros } else { micros })
}
