//! Pipeline configuration: one TOML file under `pipelines/` describes a pipeline.
//!
//! Loading is parse → fill defaults → validate. Validation is pure apart from reading environment
//! variables through an injectable lookup, and collects every problem it finds. A
//! [`PipelineConfig`] only exists once it is valid. Credentials are never in the file: sources
//! name environment variables (`*_env`), checked at load time and read with [`resolve_secret`].

mod error;
mod secret;
mod sim;
mod sources;
mod types;

use std::num::NonZeroU32;
use std::path::{Component, Path};

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::Deserialize;

pub use error::{ConfigError, Problem};
pub use secret::{Secret, resolve_secret, std_env};
pub use sim::{SimConfig, SimRates};
pub use sources::{
    AdisonSource, AppleSearchAdsSource, AppsFlyerReport, AppsFlyerSource, AttributionWindow,
    CallBudget, DataResidency, GoogleAdsSource, GoogleSheetsSource, MetaLevel, MetaSource,
    MixpanelSource, NaverSource, SheetRanges, SourceCommon, SourceKind, SourceSettings, Sources,
};
pub use types::{Currency, Pattern, StoreLocation};

use types::{de_opt_date, de_tz};

/// The demo pipeline, compiled into the binary so it runs without the file on disk.
pub const EMBEDDED_DEMO: &str = include_str!("../../pipelines/demo.toml");

/// Where the demo config lives; [`PipelineConfig::load_or_embedded_demo`] falls back to
/// [`EMBEDDED_DEMO`] for this path.
pub const DEMO_PATH: &str = "pipelines/demo.toml";

/// A whole, validated pipeline config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// `[pipeline]`: name, lake, reporting zone and currency.
    pub pipeline: PipelineSection,
    /// `[analysis]`: observation windows, horizons, target action.
    #[serde(default)]
    pub analysis: AnalysisSection,
    /// `[test_users]`: rules that recognise QA users, campaigns and builds.
    #[serde(default)]
    pub test_users: TestUserRules,
    /// `[fraud]`: thresholds of the pipeline's own fraud rules.
    #[serde(default)]
    pub fraud: FraudRules,
    /// `[mysql]`: where marts are also written; absent means the lake only.
    #[serde(default)]
    pub mysql: Option<MysqlSection>,
    /// `[sources.*]`: the data sources.
    #[serde(default)]
    pub sources: Sources,
    /// `[sim]`: the simulated world; required when any source is simulated.
    #[serde(default)]
    pub sim: Option<SimConfig>,
    /// `[dedup_keys]`: per table (`layer.table`), the columns that make two rows the same,
    /// overriding the table's natural key in the cleanse stage. Tables and columns must exist
    /// in `schemas/`.
    #[serde(default)]
    pub dedup_keys: std::collections::BTreeMap<String, Vec<String>>,
}

fn seoul() -> Tz {
    Tz::Asia__Seoul
}

/// `[pipeline]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    /// Pipeline name (letters, digits, `_`, `-`); labels runs and lake paths.
    pub name: String,
    /// Root of the lake: a path (relative to the working directory), `file:///...`,
    /// `s3://bucket/prefix` or `memory://`.
    pub lake: StoreLocation,
    /// IANA zone report dates are in (default Asia/Seoul).
    #[serde(default = "seoul", deserialize_with = "de_tz")]
    pub reporting_timezone: Tz,
    /// Currency every amount is converted to (ISO 4217; default USD).
    #[serde(default)]
    pub reporting_currency: Currency,
    /// First report date the pipeline considers; absent means as far back as sources go.
    #[serde(default, deserialize_with = "de_opt_date")]
    pub history_start: Option<NaiveDate>,
    /// Rows of one day's Mixpanel export cleansed at a time (default 2,097,152, eight
    /// Parquet row groups). A larger day is read in batches of this many rows, so what
    /// cleanse holds follows the batch rather than the day; a smaller one is one batch.
    #[serde(default = "d_batch_rows")]
    pub batch_rows: NonZeroU32,
    /// Days of more than `batch_rows` events cleansed at the same time (default 1). Each
    /// holds its batches' identifier pairs until the day is written, so two side by side
    /// set cleanse's peak (on the month's last three days: 4.8 GiB, against 3.5 one at a
    /// time); one at a time took up to a fifth longer. Raise it where memory is plentiful.
    #[serde(default = "d_large_days_in_flight")]
    pub large_days_in_flight: NonZeroU32,
}

fn d_batch_rows() -> NonZeroU32 {
    NonZeroU32::MIN.saturating_add(2_097_151)
}

fn d_large_days_in_flight() -> NonZeroU32 {
    NonZeroU32::MIN
}

fn d_obs() -> Vec<u32> {
    vec![1, 3, 7]
}
fn d_primary() -> u32 {
    7
}
fn d_horizons() -> Vec<u32> {
    vec![30, 90, 180]
}
fn d_target() -> String {
    "purchase".to_owned()
}
fn d_168() -> NonZeroU32 {
    NonZeroU32::MIN.saturating_add(167)
}

/// `[analysis]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisSection {
    /// Days after install over which features are observed, strictly increasing, each > 0
    /// (default [1, 3, 7]).
    #[serde(default = "d_obs")]
    pub observation_days: Vec<u32>,
    /// The observation window models use, in days; one of `observation_days` (default 7).
    #[serde(default = "d_primary")]
    pub primary_observation_days: u32,
    /// LTV horizons in days after install, strictly increasing, each > max(observation_days)
    /// (default [30, 90, 180]).
    #[serde(default = "d_horizons")]
    pub horizons: Vec<u32>,
    /// Event name of the target action (default "purchase").
    #[serde(default = "d_target")]
    pub target_action: String,
    /// How far after install critical paths look, in hours (default 168).
    #[serde(default = "d_168")]
    pub critical_path_window_hours: NonZeroU32,
    /// How many recent days a nightly run re-pulls, in days; ad platforms restate spend
    /// (default 7; 0 re-pulls nothing).
    #[serde(default = "d_primary")]
    pub restatement_days: u32,
}

impl Default for AnalysisSection {
    fn default() -> Self {
        AnalysisSection {
            observation_days: d_obs(),
            primary_observation_days: d_primary(),
            horizons: d_horizons(),
            target_action: d_target(),
            critical_path_window_hours: d_168(),
            restatement_days: d_primary(),
        }
    }
}

impl AnalysisSection {
    /// The longest observation window, in days.
    pub fn max_observation_days(&self) -> u32 {
        self.observation_days.iter().copied().max().unwrap_or(0)
    }

    /// The longest LTV horizon, in days.
    pub fn max_horizon(&self) -> u32 {
        self.horizons.iter().copied().max().unwrap_or(0)
    }
}

/// `[test_users]`: rules marking users, campaigns and builds as internal. Regexes use Rust
/// `regex` syntax and match anywhere in the text unless anchored. Default: no rules.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestUserRules {
    /// Regexes over user names / customer ids.
    #[serde(default)]
    pub name_patterns: Vec<Pattern>,
    /// Email domains of staff, lowercase, without `@` (`example-corp.com`).
    #[serde(default)]
    pub email_domains: Vec<String>,
    /// Regexes over campaign names.
    #[serde(default)]
    pub campaign_patterns: Vec<Pattern>,
    /// Regexes over `app_version` of organic installs (internal builds).
    #[serde(default)]
    pub internal_build_patterns: Vec<Pattern>,
}

macro_rules! nz_default {
    ($($fn:ident = $v:expr;)*) => { $(fn $fn() -> NonZeroU32 { NonZeroU32::MIN.saturating_add($v - 1) })* };
}
nz_default! {
    d_nz_72 = 72;
    d_nz_60 = 60;
    d_nz_20 = 20;
    d_nz_3 = 3;
}
fn d_10() -> u32 {
    10
}

/// `[fraud]`: thresholds of the pipeline's own fraud rules (on top of Protect360).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FraudRules {
    /// Installs less than this many seconds after their click are click injection (default 10).
    #[serde(default = "d_10")]
    pub min_click_to_install_seconds: u32,
    /// Installs more than this many hours after their click are click flooding (default 72).
    #[serde(default = "d_nz_72")]
    pub max_click_to_install_hours: NonZeroU32,
    /// Window of the burst rules, in minutes (default 60).
    #[serde(default = "d_nz_60")]
    pub burst_window_minutes: NonZeroU32,
    /// More installs than this from one IP within the window are a burst (default 20).
    #[serde(default = "d_nz_20")]
    pub burst_max_installs_per_ip: NonZeroU32,
    /// More installs than this from one device within the window are a burst (default 3).
    #[serde(default = "d_nz_3")]
    pub burst_max_installs_per_device: NonZeroU32,
    /// Installs with no event within this many hours after install are suspicious (default 72).
    #[serde(default = "d_nz_72")]
    pub no_activity_hours: NonZeroU32,
}

impl Default for FraudRules {
    fn default() -> Self {
        FraudRules {
            min_click_to_install_seconds: d_10(),
            max_click_to_install_hours: d_nz_72(),
            burst_window_minutes: d_nz_60(),
            burst_max_installs_per_ip: d_nz_20(),
            burst_max_installs_per_device: d_nz_3(),
            no_activity_hours: d_nz_72(),
        }
    }
}

/// The variable a MySQL URL is read from when the config has no `[mysql]` section, and the
/// default of `mysql.url_env`.
pub const DEFAULT_MYSQL_URL_ENV: &str = "LTV_MYSQL_URL";

fn d_mysql_env() -> String {
    DEFAULT_MYSQL_URL_ENV.to_owned()
}

fn d_rows_per_insert() -> NonZeroU32 {
    NonZeroU32::MIN.saturating_add(499)
}

/// `[mysql]`: marts are also written to MySQL.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlSection {
    /// Env var holding `mysql://user:pass@host:port/db` (default LTV_MYSQL_URL).
    #[serde(default = "d_mysql_env")]
    pub url_env: String,
    /// Rows per multi-row INSERT (default 500); the writer lowers it for wide tables so that
    /// no statement has more than MySQL's 65,535 parameters.
    #[serde(default = "d_rows_per_insert")]
    pub rows_per_insert: NonZeroU32,
}

impl Default for MysqlSection {
    fn default() -> Self {
        MysqlSection {
            url_env: d_mysql_env(),
            rows_per_insert: d_rows_per_insert(),
        }
    }
}

impl MysqlSection {
    /// Reads the connection URL from the environment.
    pub fn url(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Secret, ConfigError> {
        resolve_secret("mysql", "url_env", &self.url_env, env)
    }
}

impl PipelineConfig {
    /// The MySQL URL marts are written to, or `None` for the lake only.
    ///
    /// With a `[mysql]` section the URL comes from its `url_env` variable, which must be set
    /// (loading already checked it). Without one, a non-empty `LTV_MYSQL_URL` still turns
    /// MySQL on, so a deployment can add the database without editing the pipeline file.
    pub fn mysql_url(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Secret>, ConfigError> {
        match &self.mysql {
            Some(m) => m.url(env).map(Some),
            None => Ok(env(DEFAULT_MYSQL_URL_ENV)
                .filter(|v| !v.trim().is_empty())
                .map(Secret::new)),
        }
    }

    /// The `[mysql]` settings, defaults when the section is absent.
    pub fn mysql_settings(&self) -> MysqlSection {
        self.mysql.clone().unwrap_or_default()
    }

    /// Reads, parses and validates the file at `path` against the process environment.
    pub fn load(path: &Path) -> Result<PipelineConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        PipelineConfig::from_toml(&text, &path.display().to_string(), &std_env)
    }

    /// Like [`PipelineConfig::load`], but when `path` is `pipelines/demo.toml` and that file does
    /// not exist, uses the embedded copy ([`EMBEDDED_DEMO`]).
    pub fn load_or_embedded_demo(path: &Path) -> Result<PipelineConfig, ConfigError> {
        if is_demo_path(path) && !path.exists() {
            return PipelineConfig::from_toml(
                EMBEDDED_DEMO,
                "embedded pipelines/demo.toml",
                &std_env,
            );
        }
        PipelineConfig::load(path)
    }

    /// Parses and validates TOML `text`. `origin` names the file in errors; `env` looks up
    /// environment variables (pass [`std_env`] for the real environment).
    pub fn from_toml(
        text: &str,
        origin: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PipelineConfig, ConfigError> {
        let mut config: PipelineConfig =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(origin, text, &e))?;
        for source in config.sources.configured_mut() {
            let defaults = source.kind().default_budget();
            let common = source.common_mut();
            common.budget = common.budget.or(defaults);
        }
        let problems = config.problems(env);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                origin: origin.to_owned(),
                problems,
            })
        }
    }

    /// Every rule the config breaks (empty when valid).
    fn problems(&self, env: &dyn Fn(&str) -> Option<String>) -> Vec<Problem> {
        let mut v = Validator::default();
        self.check_pipeline(&mut v);
        self.check_analysis(&mut v);
        self.check_test_users(&mut v);
        self.check_fraud(&mut v);
        self.check_sources(&mut v, env);
        self.check_sim(&mut v);
        self.check_dedup_keys(&mut v);
        v.problems
    }

    fn check_dedup_keys(&self, v: &mut Validator) {
        let registry = match crate::schema::Registry::embedded() {
            Ok(r) => r,
            Err(e) => return v.push("dedup_keys", format!("table schemas do not load: {e}")),
        };
        for (table, columns) in &self.dedup_keys {
            let key = format!("dedup_keys.\"{table}\"");
            let schema = match registry.get(table) {
                Ok(s) => s,
                Err(e) => {
                    v.push(&key, e.to_string());
                    continue;
                }
            };
            if columns.is_empty() {
                v.push(&key, "needs at least one column".to_owned());
            }
            for column in columns {
                if schema.column(column).is_none() {
                    v.push(&key, format!("table {table} has no column `{column}`"));
                }
            }
        }
    }

    fn check_pipeline(&self, v: &mut Validator) {
        let name = &self.pipeline.name;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            v.push(
                "pipeline.name",
                format!("`{name}` must be non-empty and use only letters, digits, `_` and `-`"),
            );
        }
    }

    fn check_analysis(&self, v: &mut Validator) {
        let a = &self.analysis;
        check_increasing(v, "analysis.observation_days", &a.observation_days);
        if !a.observation_days.contains(&a.primary_observation_days) {
            v.push(
                "analysis.primary_observation_days",
                format!(
                    "{} is not one of observation_days {:?}",
                    a.primary_observation_days, a.observation_days
                ),
            );
        }
        check_increasing(v, "analysis.horizons", &a.horizons);
        let max_obs = a.max_observation_days();
        if let Some(h) = a.horizons.iter().find(|h| **h <= max_obs) {
            v.push(
                "analysis.horizons",
                format!("horizon {h} must be longer than the longest observation window ({max_obs} days)"),
            );
        }
        if a.target_action.trim().is_empty() {
            v.push("analysis.target_action", "must not be empty".to_owned());
        }
    }

    fn check_test_users(&self, v: &mut Validator) {
        for d in &self.test_users.email_domains {
            let ok = !d.is_empty()
                && !d.contains('@')
                && d.contains('.')
                && d.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
            if !ok {
                v.push(
                    "test_users.email_domains",
                    format!("`{d}` must be a lowercase domain without `@`, like example-corp.com"),
                );
            }
        }
    }

    fn check_fraud(&self, v: &mut Validator) {
        let f = &self.fraud;
        let max_seconds = u64::from(f.max_click_to_install_hours.get()) * 3600;
        if u64::from(f.min_click_to_install_seconds) >= max_seconds {
            v.push(
                "fraud.min_click_to_install_seconds",
                format!(
                    "{} s is not below max_click_to_install_hours ({} h)",
                    f.min_click_to_install_seconds, f.max_click_to_install_hours
                ),
            );
        }
    }

    fn check_sources(&self, v: &mut Validator, env: &dyn Fn(&str) -> Option<String>) {
        let s = &self.sources;
        for source in s.configured() {
            let name = source.kind().name();
            for (field, var) in source.credential_envs() {
                if !secret::is_env_var_name(var) {
                    v.push(
                        &format!("sources.{name}.{field}"),
                        "must be the NAME of an environment variable (A-Z, 0-9, _), not the \
                         credential itself (value not shown)"
                            .to_owned(),
                    );
                }
            }
            if !source.common().enabled {
                continue;
            }
            if source.is_simulated() {
                if self.sim.is_none() {
                    let how = if source.kind() == SourceKind::Adison {
                        "drop_url"
                    } else {
                        "base_url"
                    };
                    v.push(
                        &format!("sources.{name}"),
                        format!(
                            "source {name} has no {how}, so it would be served by the simulator, \
                             but the config has no [sim] section; set {how} or add [sim]"
                        ),
                    );
                }
                continue;
            }
            for (field, var) in source.credential_envs() {
                if secret::is_env_var_name(var)
                    && let Err(e) = resolve_secret(name, field, var, env)
                {
                    v.push(&format!("sources.{name}.{field}"), e.to_string());
                }
            }
        }
        if let Some(m) = &self.mysql {
            if !secret::is_env_var_name(&m.url_env) {
                v.push(
                    "mysql.url_env",
                    "must be the NAME of an environment variable (value not shown)".to_owned(),
                );
            } else if let Err(e) = m.url(env) {
                v.push("mysql.url_env", e.to_string());
            }
        }
        if s.mixpanel.as_ref().is_some_and(|m| m.project_id == 0) {
            v.push(
                "sources.mixpanel.project_id",
                "must be a Mixpanel project id (> 0)".to_owned(),
            );
        }
        if let Some(a) = &s.appsflyer {
            non_empty_list(v, "sources.appsflyer.app_ids", &a.app_ids);
            if a.reports.is_empty() {
                v.push(
                    "sources.appsflyer.reports",
                    "must list at least one report".to_owned(),
                );
            }
            no_duplicates(v, "sources.appsflyer.reports", &a.reports);
            if a.backfill_days_per_call.get() > 90 {
                v.push(
                    "sources.appsflyer.backfill_days_per_call",
                    format!(
                        "{} days is over the Pull API's 90-day range",
                        a.backfill_days_per_call
                    ),
                );
            }
        }
        if let Some(g) = &s.google_sheets {
            if g.spreadsheet_id.trim().is_empty() {
                v.push(
                    "sources.google_sheets.spreadsheet_id",
                    "must not be empty".to_owned(),
                );
            }
            let r = &g.ranges;
            for (key, range) in [
                ("campaign_overrides", &r.campaign_overrides),
                ("manual_costs", &r.manual_costs),
                ("test_devices", &r.test_devices),
                ("fx_rates", &r.fx_rates),
            ] {
                if range.trim().is_empty() {
                    v.push(
                        &format!("sources.google_sheets.ranges.{key}"),
                        "must not be empty".to_owned(),
                    );
                }
            }
        }
        if let Some(a) = &s.adison {
            if a.common.base_url.is_some() {
                v.push(
                    "sources.adison.base_url",
                    "adison has no HTTP API; set drop_url to where its files are dropped"
                        .to_owned(),
                );
            }
            if !a.file_pattern.contains("{date}") {
                v.push(
                    "sources.adison.file_pattern",
                    format!("`{}` must contain {{date}}", a.file_pattern),
                );
            }
        }
        if let Some(m) = &s.meta {
            non_empty_list(v, "sources.meta.ad_account_ids", &m.ad_account_ids);
            for id in &m.ad_account_ids {
                let ok = id
                    .strip_prefix("act_")
                    .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
                if !ok {
                    v.push(
                        "sources.meta.ad_account_ids",
                        format!("`{id}` must look like act_1234567890"),
                    );
                }
            }
            if !is_version(&m.api_version, true) {
                v.push(
                    "sources.meta.api_version",
                    format!("`{}` must look like v23.0", m.api_version),
                );
            }
            if m.levels.is_empty() {
                v.push(
                    "sources.meta.levels",
                    "must list at least one level".to_owned(),
                );
            }
            no_duplicates(v, "sources.meta.levels", &m.levels);
            if m.attribution_windows.is_empty() {
                v.push(
                    "sources.meta.attribution_windows",
                    "must list at least one window".to_owned(),
                );
            }
            no_duplicates(
                v,
                "sources.meta.attribution_windows",
                &m.attribution_windows,
            );
        }
        if let Some(g) = &s.google_ads {
            non_empty_list(v, "sources.google_ads.customer_ids", &g.customer_ids);
            let ids = g.customer_ids.iter().chain(g.login_customer_id.iter());
            for id in ids {
                if id.len() != 10 || !id.chars().all(|c| c.is_ascii_digit()) {
                    v.push(
                        "sources.google_ads.customer_ids",
                        format!("`{id}` must be 10 digits without dashes (e.g. 1234567890)"),
                    );
                }
            }
            if !is_version(&g.api_version, false) {
                v.push(
                    "sources.google_ads.api_version",
                    format!("`{}` must look like v21", g.api_version),
                );
            }
        }
    }

    fn check_sim(&self, v: &mut Validator) {
        let Some(sim) = &self.sim else { return };
        if !(100..=1_000_000).contains(&sim.users_per_day) {
            v.push(
                "sim.users_per_day",
                format!("{} is outside 100..=1000000", sim.users_per_day),
            );
        }
        share(v, "sim.organic_share", sim.organic_share, false);
        share(v, "sim.ios_share", sim.ios_share, true);
        share(v, "sim.att_opt_in_rate", sim.att_opt_in_rate, true);
        for (key, rate) in sim.rates.all() {
            share(v, &format!("sim.rates.{key}"), rate, false);
        }
        let fraud = sim.rates.fraud_total();
        if fraud >= 0.5 {
            v.push(
                "sim.rates",
                format!("the fraud_* rates add up to {fraud:.3}; their sum must be below 0.5"),
            );
        }
        let max_h = self.analysis.max_horizon();
        if sim.horizon_days.get() < max_h {
            v.push(
                "sim.horizon_days",
                format!(
                    "{} days is shorter than the longest analysis horizon ({max_h} days), so the truth could not score it",
                    sim.horizon_days
                ),
            );
        }
    }
}

/// Whether `path` is [`DEMO_PATH`], ignoring `./` components.
fn is_demo_path(path: &Path) -> bool {
    path.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .eq(Path::new(DEMO_PATH).components())
}

#[derive(Default)]
struct Validator {
    problems: Vec<Problem>,
}

impl Validator {
    fn push(&mut self, key: &str, message: String) {
        self.problems.push(Problem {
            key: key.to_owned(),
            message,
        });
    }
}

fn check_increasing(v: &mut Validator, key: &str, values: &[u32]) {
    if values.is_empty() {
        v.push(key, "must list at least one value".to_owned());
    } else if values.contains(&0) {
        v.push(key, format!("{values:?}: every value must be > 0"));
    } else if values.windows(2).any(|w| w[0] >= w[1]) {
        v.push(key, format!("{values:?} must be strictly increasing"));
    }
}

fn non_empty_list(v: &mut Validator, key: &str, values: &[String]) {
    if values.is_empty() {
        v.push(key, "must list at least one value".to_owned());
    }
    if values.iter().any(|s| s.trim().is_empty()) {
        v.push(key, "values must not be empty".to_owned());
    }
}

fn no_duplicates<T: PartialEq + std::fmt::Debug>(v: &mut Validator, key: &str, values: &[T]) {
    for (i, x) in values.iter().enumerate() {
        if values.get(..i).is_some_and(|before| before.contains(x)) {
            v.push(key, format!("{x:?} is listed twice"));
        }
    }
}

fn share(v: &mut Validator, key: &str, value: f64, inclusive: bool) {
    let ok = value >= 0.0 && if inclusive { value <= 1.0 } else { value < 1.0 };
    if !ok {
        let range = if inclusive { "[0, 1]" } else { "[0, 1)" };
        v.push(key, format!("{value} is outside {range}"));
    }
}

/// `v21` (minor = false) or `v23.0` (minor = true).
fn is_version(s: &str, minor: bool) -> bool {
    let Some(rest) = s.strip_prefix('v') else {
        return false;
    };
    let digits = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    match rest.split_once('.') {
        Some((major, m)) => minor && digits(major) && digits(m),
        None => !minor && digits(rest),
    }
}

#[cfg(test)]
mod tests;
