//! `mart.user_ltv`: the prediction run's users, as the mart.

use polars::prelude::*;

use super::{MART_HORIZONS, MartParams, campaign_key, null_of};
use crate::model::predict::{Basis, HorizonSummary};

/// Which model predicted each horizon, as one string: `d30=hurdle d90=extrapolated`.
pub fn model_label(horizons: &[HorizonSummary]) -> String {
    horizons
        .iter()
        .map(|h| match &h.basis {
            Basis::Trained { model, .. } => format!("d{}={model}", h.horizon_days),
            Basis::Extrapolated { .. } => format!("d{}=extrapolated", h.horizon_days),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `mart.user_ltv` from the predictions' user frame (see
/// [`crate::model::predict::Predictions::users`]).
pub fn user_ltv(users: LazyFrame, horizons: &[HorizonSummary], params: &MartParams) -> LazyFrame {
    let mut out = vec![
        col("install_date").alias("dt"),
        col("user_key"),
        col("channel"),
        campaign_key(),
        col("platform"),
        col("country"),
        lit(params.currency.clone()).alias("currency"),
        lit(params.window_days)
            .cast(DataType::UInt32)
            .alias("window_days"),
        col("revenue_window_micros"),
    ];
    for h in MART_HORIZONS {
        let name = format!("pred_d{h}_micros");
        out.push(if params.predicted(h) {
            col(&name)
        } else {
            null_of(DataType::Int64, &name)
        });
    }
    out.push(if params.predicted(90) {
        col("p_pay_d90")
    } else {
        null_of(DataType::Float64, "p_pay_d90")
    });
    out.push(lit(model_label(horizons)).alias("model"));
    let flags: Vec<Expr> = params
        .horizons
        .iter()
        .map(|h| col(format!("extrapolated_d{h}")))
        .collect();
    out.push(
        any_horizontal(flags)
            .map(|e| e.fill_null(lit(false)))
            .unwrap_or_else(|_| lit(false))
            .alias("extrapolated"),
    );
    for h in MART_HORIZONS {
        let name = format!("extrapolated_d{h}");
        out.push(if params.predicted(h) {
            col(&name)
        } else {
            null_of(DataType::Boolean, &name)
        });
    }
    users
        .select(out)
        .sort(["dt", "user_key"], SortMultipleOptions::default())
}
