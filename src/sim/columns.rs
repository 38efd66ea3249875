//! Column buffers the generator appends to, one per simulated table, turned into Polars
//! frames when a partition (or a part of one) is flushed. Appending to plain vectors keeps
//! generation allocation-light: names and codes are `&'static str` until the frame is built.

use polars::prelude::*;

/// A buffer of rows that becomes one frame of a table.
pub trait Columns: Default {
    fn len(&self) -> usize;
    fn into_frame(self) -> PolarsResult<DataFrame>;
}

fn millis(name: &str, v: Vec<i64>) -> Column {
    Series::new(name.into(), v)
        .into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
        .into()
}

fn opt_millis(name: &str, v: Vec<Option<i64>>) -> Column {
    Series::new(name.into(), v)
        .into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
        .into()
}

fn plain<T, V: AsRef<[T]>>(name: &str, v: V) -> Column
where
    Series: NamedFrom<V, [T]>,
{
    Series::new(name.into(), v).into()
}

/// Declares a column buffer: each field is a column, with the function that turns its
/// vector into a Polars column (`plain`, or `millis` for UTC millisecond timestamps).
macro_rules! columns {
    ($(#[$meta:meta])* $name:ident { $($field:ident: $ty:ty => $conv:ident),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Default)]
        pub struct $name {
            $(pub $field: Vec<$ty>,)*
        }

        impl Columns for $name {
            fn len(&self) -> usize {
                [$(self.$field.len()),*].into_iter().max().unwrap_or(0)
            }
            fn into_frame(self) -> PolarsResult<DataFrame> {
                DataFrame::new_infer_height(vec![$($conv(stringify!($field), self.$field)),*])
            }
        }
    };
}

columns!(
    /// `sim.events`
    EventCols {
        row_id: u64 => plain,
        user_id: u64 => plain,
        time: i64 => millis,
        event: &'static str => plain,
        device_id: u64 => plain,
        login_id: Option<u64> => plain,
        insert_id: u64 => plain,
        platform: &'static str => plain,
        country: &'static str => plain,
        revenue_micros: Option<i64> => plain,
        currency: Option<&'static str> => plain,
        malformed: Option<&'static str> => plain,
    }
);

columns!(
    /// `sim.installs`
    InstallCols {
        row_id: u64 => plain,
        user_id: u64 => plain,
        appsflyer_id: String => plain,
        advertising_id: Option<String> => plain,
        customer_user_id: Option<String> => plain,
        platform: &'static str => plain,
        country: &'static str => plain,
        app_version: &'static str => plain,
        media_source: &'static str => plain,
        channel: &'static str => plain,
        campaign_id: Option<String> => plain,
        campaign_name: Option<String> => plain,
        adset_id: Option<String> => plain,
        adset_name: Option<String> => plain,
        ad_id: Option<String> => plain,
        ad_name: Option<String> => plain,
        install_time: i64 => millis,
        click_time: Option<i64> => opt_millis,
        ip: String => plain,
        device_model: &'static str => plain,
        af_fraud_report: Option<&'static str> => plain,
    }
);

columns!(
    /// `sim.af_events`
    AfEventCols {
        row_id: u64 => plain,
        user_id: u64 => plain,
        appsflyer_id: String => plain,
        advertising_id: Option<String> => plain,
        customer_user_id: Option<String> => plain,
        event_time: i64 => millis,
        event_name: &'static str => plain,
        revenue_micros: Option<i64> => plain,
        currency: Option<&'static str> => plain,
        af_fraud_report: Option<&'static str> => plain,
    }
);

columns!(
    /// `sim.profiles`
    ProfileCols {
        user_id: u64 => plain,
        login_id: u64 => plain,
        device_id: u64 => plain,
        appsflyer_id: String => plain,
        advertising_id: Option<String> => plain,
        email: String => plain,
        name: String => plain,
        platform: &'static str => plain,
        country: &'static str => plain,
        created_at: i64 => millis,
    }
);

columns!(
    /// `truth.dirty_rows`
    DirtyCols {
        table: &'static str => plain,
        row_id: u64 => plain,
        label: &'static str => plain,
    }
);

impl DirtyCols {
    pub fn push(&mut self, table: &'static str, row_id: u64, label: &'static str) {
        self.table.push(table);
        self.row_id.push(row_id);
        self.label.push(label);
    }
}

columns!(
    /// `truth.users`; money in US dollar micros.
    TruthUserCols {
        user_id: u64 => plain,
        channel: &'static str => plain,
        campaign_id: Option<String> => plain,
        ad_id: Option<String> => plain,
        platform: &'static str => plain,
        country: &'static str => plain,
        local_currency: &'static str => plain,
        is_test: bool => plain,
        test_kind: Option<&'static str> => plain,
        fraud_kind: Option<&'static str> => plain,
        engagement: f64 => plain,
        payer_probability: f64 => plain,
        walked_planted_path: bool => plain,
        currency: &'static str => plain,
        expected_revenue_d7_micros: i64 => plain,
        expected_revenue_d30_micros: i64 => plain,
        expected_revenue_d90_micros: i64 => plain,
        expected_revenue_d180_micros: i64 => plain,
        revenue_d7_micros: i64 => plain,
        revenue_d30_micros: i64 => plain,
        revenue_d90_micros: i64 => plain,
        revenue_d180_micros: i64 => plain,
    }
);

/// Days since 1970-01-01 as a Polars `date` column.
fn date(name: &str, v: Vec<i32>) -> Column {
    Series::new(name.into(), v).into_date().into()
}

fn opt_date(name: &str, v: Vec<Option<i32>>) -> Column {
    Series::new(name.into(), v).into_date().into()
}

columns!(
    /// `sim.ad_daily`; money in micros of the account currency.
    AdDailyCols {
        row_id: u64 => plain,
        channel: &'static str => plain,
        account_id: String => plain,
        campaign_id: String => plain,
        adset_id: String => plain,
        ad_id: String => plain,
        currency: &'static str => plain,
        spend_micros: i64 => plain,
        spend_first_reported_micros: i64 => plain,
        restated_on: Option<i32> => opt_date,
        impressions: i64 => plain,
        clicks: i64 => plain,
        installs: i64 => plain,
        view_installs: i64 => plain,
        purchases_1d_click: i64 => plain,
        purchases_7d_click: i64 => plain,
        purchases_28d_click: i64 => plain,
        purchases_1d_view: i64 => plain,
        purchase_value_1d_click_micros: i64 => plain,
        purchase_value_7d_click_micros: i64 => plain,
        purchase_value_28d_click_micros: i64 => plain,
        purchase_value_1d_view_micros: i64 => plain,
    }
);

columns!(
    /// `sim.campaigns`
    CampaignCols {
        channel: &'static str => plain,
        account_id: String => plain,
        account_currency: &'static str => plain,
        account_timezone: &'static str => plain,
        campaign_id: String => plain,
        campaign_name: String => plain,
        adset_id: String => plain,
        adset_name: String => plain,
        ad_id: String => plain,
        ad_name: String => plain,
        platform: &'static str => plain,
        is_test: bool => plain,
        first_day: i32 => date,
        last_day: i32 => date,
    }
);

columns!(
    /// `sim.test_devices`
    TestDeviceCols {
        advertising_id: String => plain,
        label: String => plain,
        platform: &'static str => plain,
    }
);

columns!(
    /// `sim.fx_rates`
    FxCols {
        currency: &'static str => plain,
        usd_per_unit: f64 => plain,
    }
);

columns!(
    /// `truth.campaigns`; money in US dollar micros.
    TruthCampaignCols {
        channel: &'static str => plain,
        campaign_id: String => plain,
        campaign_name: String => plain,
        is_test: bool => plain,
        retention_d1: f64 => plain,
        retention_d7: f64 => plain,
        retention_d30: f64 => plain,
        base_payer_rate: f64 => plain,
        purchase_rate: f64 => plain,
        currency: &'static str => plain,
        ltv_d7_micros: i64 => plain,
        ltv_d30_micros: i64 => plain,
        ltv_d90_micros: i64 => plain,
        ltv_d180_micros: i64 => plain,
    }
);

columns!(
    /// `truth.planted_paths`
    PathCols {
        path: String => plain,
        payer_lift: f64 => plain,
    }
);
