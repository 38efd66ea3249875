//! The pipeline's own fraud rules over attributed installs, on top of Protect360's lists,
//! with the thresholds of `[fraud]`. Each rule fills [`FRAUD_REASON`] where it is still null
//! (the first rule that fires names the reason) and never drops a row: fraudulent installs
//! are still reported against the campaign that paid for them.

use polars::prelude::*;

use crate::config::FraudRules;

/// Why an install is fraud; null for installs no rule flagged.
pub const FRAUD_REASON: &str = "_fraud_reason";

fn ms(name: &str) -> Expr {
    col(name).cast(DataType::Int64)
}

/// Adds [`FRAUD_REASON`] (all null) when the frame has none yet, so rules can be chained in
/// any order.
pub fn with_fraud_reason(lf: LazyFrame) -> LazyFrame {
    lf.with_column(lit(NULL).cast(DataType::String).alias(FRAUD_REASON))
}

fn first_reason(fires: Expr, reason: &str) -> Expr {
    when(col(FRAUD_REASON).is_null().and(fires))
        .then(lit(reason.to_string()))
        .otherwise(col(FRAUD_REASON))
        .alias(FRAUD_REASON)
}

/// Click injection (the install follows its click in less than `min_click_to_install_seconds`,
/// faster than a store download) and click flooding (the click is older than
/// `max_click_to_install_hours`). Installs without a touch time are left alone.
pub fn mark_click_timing(lf: LazyFrame, rules: &FraudRules) -> LazyFrame {
    let gap_ms = ms("install_time") - ms("attributed_touch_time");
    let min_ms = i64::from(rules.min_click_to_install_seconds) * 1000;
    let max_ms = i64::from(rules.max_click_to_install_hours.get()) * 3_600_000;
    lf.with_column(first_reason(
        gap_ms.clone().lt(lit(min_ms)),
        "click injection",
    ))
    .with_column(first_reason(gap_ms.gt(lit(max_ms)), "click flooding"))
}

/// Bursts: more installs than allowed from one IP, or from one advertising ID, within one
/// `burst_window_minutes` window (fixed windows from the epoch, so the rule is the same in
/// every partition and rerun). Fails only if Polars cannot build the window expression.
pub fn mark_bursts(lf: LazyFrame, rules: &FraudRules) -> PolarsResult<LazyFrame> {
    let window_ms = i64::from(rules.burst_window_minutes.get()) * 60_000;
    let bucket = (ms("install_time") / lit(window_ms)).alias("_burst_window");
    let per_ip = len().over([col("ip"), col("_burst_window")])?;
    let per_device = len().over([col("advertising_id"), col("_burst_window")])?;
    Ok(lf
        .with_column(bucket)
        .with_column(first_reason(
            col("ip")
                .is_not_null()
                .and(per_ip.gt(lit(rules.burst_max_installs_per_ip.get()))),
            "install burst from one IP",
        ))
        .with_column(first_reason(
            col("advertising_id")
                .is_not_null()
                .and(per_device.gt(lit(rules.burst_max_installs_per_device.get()))),
            "install burst from one device",
        ))
        .drop(cols(["_burst_window"])))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn time(name: &str, seconds: &[Option<i64>]) -> Column {
        let ms: Vec<Option<i64>> = seconds.iter().map(|s| s.map(|s| s * 1000)).collect();
        Column::new(name.into(), ms)
            .cast(&DataType::Datetime(
                TimeUnit::Milliseconds,
                Some(TimeZone::UTC),
            ))
            .unwrap()
    }

    fn reasons(lf: LazyFrame) -> Vec<Option<String>> {
        let df = lf.collect().unwrap();
        df.column(FRAUD_REASON)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn click_timing_finds_injection_and_flooding_at_the_thresholds() {
        let day = 86_400;
        let df = DataFrame::new_infer_height(vec![
            time(
                "install_time",
                &[Some(day), Some(day), Some(day), Some(4 * day), Some(day)],
            ),
            // 3 s (injection), 10 s (exactly the minimum: fine), 1 h, 72 h + 1 s (flooding),
            // no touch (organic-like): left alone.
            time(
                "attributed_touch_time",
                &[
                    Some(day - 3),
                    Some(day - 10),
                    Some(day - 3600),
                    Some(day - 1),
                    None,
                ],
            ),
        ])
        .unwrap();
        let rules = FraudRules::default();
        assert_eq!(rules.min_click_to_install_seconds, 10);
        let out = mark_click_timing(with_fraud_reason(df.lazy()), &rules);
        assert_eq!(
            reasons(out),
            [s("click injection"), None, None, s("click flooding"), None]
        );
    }

    #[test]
    fn bursts_count_per_ip_and_device_within_a_window() {
        let rules = FraudRules {
            burst_window_minutes: NonZeroU32::new(60).unwrap(),
            burst_max_installs_per_ip: NonZeroU32::new(2).unwrap(),
            burst_max_installs_per_device: NonZeroU32::new(1).unwrap(),
            ..FraudRules::default()
        };
        // Three installs from one IP in one hour (a burst); the same IP an hour later is
        // another window; one device twice in the hour (a burst); null IPs never group.
        let df = DataFrame::new_infer_height(vec![
            time(
                "install_time",
                &[
                    Some(10),
                    Some(20),
                    Some(30),
                    Some(3700),
                    Some(40),
                    Some(50),
                    Some(60),
                    Some(70),
                ],
            ),
            Column::new(
                "ip".into(),
                [
                    Some("1.1.1.1"),
                    Some("1.1.1.1"),
                    Some("1.1.1.1"),
                    Some("1.1.1.1"),
                    None,
                    None,
                    None,
                    Some("2.2.2.2"),
                ],
            ),
            Column::new(
                "advertising_id".into(),
                [
                    Some("a"),
                    Some("b"),
                    Some("c"),
                    Some("d"),
                    Some("e"),
                    Some("e"),
                    None,
                    None,
                ],
            ),
        ])
        .unwrap();
        let out = mark_bursts(with_fraud_reason(df.lazy()), &rules).unwrap();
        let ip = s("install burst from one IP");
        let device = s("install burst from one device");
        assert_eq!(
            reasons(out),
            [
                ip.clone(),
                ip.clone(),
                ip,
                None,
                device.clone(),
                device,
                None,
                None
            ]
        );
    }

    #[test]
    fn the_first_rule_that_fires_names_the_reason() {
        let rules = FraudRules {
            burst_max_installs_per_device: NonZeroU32::new(1).unwrap(),
            ..FraudRules::default()
        };
        let df = DataFrame::new_infer_height(vec![
            time("install_time", &[Some(100), Some(200)]),
            time("attributed_touch_time", &[Some(99), Some(150)]),
            Column::new("ip".into(), [Some("9.9.9.9"), Some("8.8.8.8")]),
            Column::new("advertising_id".into(), [Some("x"), Some("x")]),
        ])
        .unwrap();
        let out = mark_bursts(
            mark_click_timing(with_fraud_reason(df.lazy()), &rules),
            &rules,
        )
        .unwrap();
        assert_eq!(
            reasons(out),
            [s("click injection"), s("install burst from one device")]
        );
    }
}
