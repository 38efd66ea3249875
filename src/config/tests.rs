#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const MINIMAL: &str = r#"
[pipeline]
name = "t"
lake = "memory://"
"#;

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(text: &str) -> Result<PipelineConfig, ConfigError> {
    PipelineConfig::from_toml(text, "test.toml", &no_env)
}

/// Parses, expecting failure; returns the error's message.
fn err(text: &str) -> String {
    match parse(text) {
        Ok(c) => panic!("expected an error, parsed {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn with(extra: &str) -> String {
    format!("{MINIMAL}\n{extra}")
}

const REAL_META: &str = r#"
[sources.meta]
base_url = "https://graph.facebook.com"
ad_account_ids = ["act_1"]
access_token_env = "META_ACCESS_TOKEN"
"#;

#[test]
fn minimal_file_gets_defaults() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.pipeline.lake, StoreLocation::Memory);
    assert_eq!(c.pipeline.reporting_timezone, chrono_tz::Asia::Seoul);
    assert_eq!(c.pipeline.reporting_currency, Currency::USD);
    assert_eq!(c.pipeline.history_start, None);
    assert_eq!(c.pipeline.batch_rows.get(), 2_097_152);
    assert_eq!(c.pipeline.large_days_in_flight.get(), 1);
    assert_eq!(c.analysis, AnalysisSection::default());
    assert_eq!(c.analysis.observation_days, vec![1, 3, 7]);
    assert_eq!(c.analysis.primary_observation_days, 7);
    assert_eq!(c.analysis.horizons, vec![30, 90, 180]);
    assert_eq!(c.analysis.target_action, "purchase");
    assert_eq!(c.analysis.critical_path_window_hours.get(), 168);
    assert_eq!(c.analysis.restatement_days, 7);
    assert_eq!(c.fraud.min_click_to_install_seconds, 10);
    assert_eq!(c.fraud.max_click_to_install_hours.get(), 72);
    assert_eq!(c.fraud.burst_window_minutes.get(), 60);
    assert_eq!(c.fraud.burst_max_installs_per_ip.get(), 20);
    assert_eq!(c.fraud.burst_max_installs_per_device.get(), 3);
    assert_eq!(c.fraud.no_activity_hours.get(), 72);
    assert!(c.test_users.name_patterns.is_empty());
    assert!(c.mysql.is_none());
    assert!(c.sim.is_none());
    assert!(c.sources.configured().is_empty());
}

#[test]
fn minimal_sections_get_defaults() {
    let c = parse(&with(
        r#"
[sim]
[sources.mixpanel]
project_id = 5
[sources.appsflyer]
app_ids = ["id1"]
[sources.adison]
"#,
    ))
    .unwrap();
    let sim = c.sim.as_ref().unwrap();
    assert_eq!(sim.seed, 42);
    assert_eq!(sim.start_date, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
    assert_eq!(sim.days.get(), 90);
    assert_eq!(sim.users_per_day, 2000);
    assert_eq!(sim.campaigns_per_channel.get(), 4);
    assert_eq!(sim.horizon_days.get(), 180);
    assert_eq!(sim.rates, SimRates::default());
    assert_eq!(sim.rates.restatement, 0.10);
    assert_eq!(sim.rates.malformed_event, 0.002);
    assert_eq!(
        sim.end_date(),
        NaiveDate::from_ymd_opt(2026, 3, 31).unwrap()
    );

    let m = c.sources.mixpanel.as_ref().unwrap();
    assert!(m.common.enabled);
    assert!(m.is_simulated());
    assert_eq!(m.common.timeout_seconds.get(), 60);
    assert_eq!(m.common.concurrency.get(), 1);
    assert_eq!(m.common.budget.per_second.map(|n| n.get()), Some(3));
    assert_eq!(m.common.budget.per_hour.map(|n| n.get()), Some(60));
    assert_eq!(m.data_residency, DataResidency::Us);
    assert_eq!(m.project_timezone, None);
    assert!(!m.time_in_ms);
    assert_eq!(
        m.service_account_secret_env,
        "MIXPANEL_SERVICE_ACCOUNT_SECRET"
    );

    let a = c.sources.appsflyer.as_ref().unwrap();
    assert_eq!(a.reports, AppsFlyerReport::ALL.to_vec());
    assert_eq!(a.timezone, chrono_tz::UTC);
    assert_eq!(a.maximum_rows.get(), 1_000_000);
    assert_eq!(a.common.budget.per_day.map(|n| n.get()), Some(24));

    let ad = c.sources.adison.as_ref().unwrap();
    assert_eq!(ad.currency, Currency::KRW);
    assert_eq!(ad.common.budget, CallBudget::default());
    assert_eq!(
        ad.file_name(NaiveDate::from_ymd_opt(2026, 1, 2).unwrap()),
        "adison_2026-01-02.csv"
    );
}

#[test]
fn budget_overrides_merge_with_source_defaults() {
    let c = parse(&with(
        r#"
[sim]
[sources.mixpanel]
project_id = 5
[sources.mixpanel.budget]
per_second = 1
per_day = 500
"#,
    ))
    .unwrap();
    let b = c.sources.mixpanel.unwrap().common.budget;
    assert_eq!(b.per_second.map(|n| n.get()), Some(1));
    assert_eq!(b.per_hour.map(|n| n.get()), Some(60));
    assert_eq!(b.per_day.map(|n| n.get()), Some(500));
    assert!(
        err(&with(
            "[sim]\n[sources.naver]\ncustomer_id = 1\n[sources.naver.budget]\nper_second = 0\n"
        ))
        .contains("nonzero")
    );
}

#[test]
fn unknown_key_is_named_with_line_and_column() {
    let e = err(&with("[analysis]\nhorizonz = [30]\n"));
    assert!(e.starts_with("test.toml:7:1: analysis.horizonz: "), "{e}");
    assert!(e.contains("unknown field `horizonz`"), "{e}");
}

#[test]
fn unknown_key_in_a_source_table_is_rejected() {
    let e = err(&with(
        "[sim]\n[sources.meta]\nad_account_ids = [\"act_1\"]\naccess_token = \"EAAsecretvalue\"\n",
    ));
    assert!(e.contains("access_token"), "{e}");
    assert!(e.contains("test.toml:"), "{e}");
    assert!(!e.contains("EAAsecretvalue"), "{e}");
}

#[test]
fn unknown_section_is_rejected() {
    let e = err(&with("[extra]\nx = 1\n"));
    assert!(e.contains("unknown field `extra`"), "{e}");
}

#[test]
fn unknown_source_lists_known_names() {
    let e = err(&with("[sources.tiktok]\nenabled = true\n"));
    assert!(e.contains("unknown source `tiktok`"), "{e}");
    for kind in SourceKind::ALL {
        assert!(e.contains(kind.name()), "{e} should list {kind}");
    }
    assert!(e.contains("test.toml:"), "{e}");
}

#[test]
fn a_batch_of_no_rows_is_rejected() {
    let e = err(&MINIMAL.replace("memory://\"", "memory://\"\nbatch_rows = 0"));
    assert!(e.contains("pipeline.batch_rows"), "{e}");
    let ok = parse(&MINIMAL.replace("memory://\"", "memory://\"\nbatch_rows = 1000")).unwrap();
    assert_eq!(ok.pipeline.batch_rows.get(), 1000);
    let e = err(&MINIMAL.replace("memory://\"", "memory://\"\nlarge_days_in_flight = 0"));
    assert!(e.contains("pipeline.large_days_in_flight"), "{e}");
    let ok =
        parse(&MINIMAL.replace("memory://\"", "memory://\"\nlarge_days_in_flight = 2")).unwrap();
    assert_eq!(ok.pipeline.large_days_in_flight.get(), 2);
}

#[test]
fn bad_date_is_rejected() {
    let e = err(&MINIMAL.replace("memory://\"", "memory://\"\nhistory_start = \"2026-02-30\""));
    assert!(e.contains("2026-02-30"), "{e}");
    assert!(e.contains("pipeline.history_start"), "{e}");
    // Bare TOML dates work, and are checked too.
    let ok =
        parse(&MINIMAL.replace("memory://\"", "memory://\"\nhistory_start = 2026-02-28")).unwrap();
    assert_eq!(
        ok.pipeline.history_start,
        NaiveDate::from_ymd_opt(2026, 2, 28)
    );
    let e = err(&with("[sim]\nstart_date = 2026-02-30\n"));
    assert!(
        e.contains("sim.start_date") || e.contains("2026-02-30"),
        "{e}"
    );
}

#[test]
fn bad_time_zone_is_rejected() {
    let e = err(&MINIMAL.replace(
        "memory://\"",
        "memory://\"\nreporting_timezone = \"Asia/Seol\"",
    ));
    assert!(e.contains("unknown time zone `Asia/Seol`"), "{e}");
    assert!(e.contains("pipeline.reporting_timezone"), "{e}");
}

#[test]
fn bad_currency_is_rejected() {
    let e = err(&MINIMAL.replace("memory://\"", "memory://\"\nreporting_currency = \"usd\""));
    assert!(e.contains("unknown currency `usd`"), "{e}");
    assert!(e.contains("KRW"), "{e}");
    let ok = parse(&MINIMAL.replace("memory://\"", "memory://\"\nreporting_currency = \"KRW\""))
        .unwrap();
    assert_eq!(ok.pipeline.reporting_currency, Currency::KRW);
    assert_eq!(Currency::KRW.minor_units(), 0);
}

#[test]
fn bad_regex_names_the_pattern() {
    let e = err(&with(
        "[test_users]\nname_patterns = [\"ok\", \"(?i)^qa[\"]\n",
    ));
    assert!(e.contains("invalid regex `(?i)^qa[`"), "{e}");
    assert!(e.contains("test_users.name_patterns"), "{e}");
}

#[test]
fn patterns_compile_and_match() {
    let c = parse(&with(
        "[test_users]\nname_patterns = [\"(?i)^qa[ _-]\", \"(?i)\\\\btest(er)?\\\\b\"]\n",
    ))
    .unwrap();
    let p = &c.test_users.name_patterns;
    assert!(p[0].is_match("QA_kim"));
    assert!(p[1].is_match("my Tester"));
    assert!(!p[1].is_match("contestant"));
    assert_eq!(p[0].as_str(), "(?i)^qa[ _-]");
}

#[test]
fn horizons_must_increase_and_exceed_observation() {
    let e = err(&with("[analysis]\nhorizons = [90, 30]\n"));
    assert!(
        e.contains("analysis.horizons: [90, 30] must be strictly increasing"),
        "{e}"
    );
    let e = err(&with("[analysis]\nhorizons = [30, 30]\n"));
    assert!(e.contains("strictly increasing"), "{e}");
    let e = err(&with("[analysis]\nhorizons = [7, 30]\n"));
    assert!(e.contains("horizon 7 must be longer"), "{e}");
    let e = err(&with(
        "[analysis]\nobservation_days = [0, 3]\nprimary_observation_days = 3\n",
    ));
    assert!(e.contains("analysis.observation_days"), "{e}");
    let e = err(&with(
        "[analysis]\nobservation_days = [3, 1]\nprimary_observation_days = 3\n",
    ));
    assert!(
        e.contains("analysis.observation_days: [3, 1] must be strictly increasing"),
        "{e}"
    );
    let e = err(&with("[analysis]\nprimary_observation_days = 5\n"));
    assert!(e.contains("analysis.primary_observation_days"), "{e}");
}

#[test]
fn missing_env_var_is_named() {
    let e = err(&with(REAL_META));
    assert!(
        e.contains(
            "source meta: environment variable META_ACCESS_TOKEN is not set (access_token_env)"
        ),
        "{e}"
    );
    assert!(
        e.starts_with("test.toml: sources.meta.access_token_env"),
        "{e}"
    );

    let empty = |k: &str| (k == "META_ACCESS_TOKEN").then(String::new);
    let e = PipelineConfig::from_toml(&with(REAL_META), "x.toml", &empty)
        .unwrap_err()
        .to_string();
    assert!(e.contains("META_ACCESS_TOKEN is empty"), "{e}");

    let set = |k: &str| (k == "META_ACCESS_TOKEN").then(|| "tok".to_owned());
    let c = PipelineConfig::from_toml(&with(REAL_META), "x.toml", &set).unwrap();
    let meta = c.sources.meta.unwrap();
    assert!(!meta.is_simulated());
    assert_eq!(meta.common.budget.per_hour.map(|n| n.get()), Some(200));
}

#[test]
fn every_missing_variable_is_reported() {
    let text = with(
        r#"
[mysql]
[sources.naver]
base_url = "https://api.searchad.naver.com"
customer_id = 1
"#,
    );
    let e = err(&text);
    for var in ["LTV_MYSQL_URL", "NAVER_API_KEY", "NAVER_SECRET_KEY"] {
        assert!(e.contains(var), "{e} should name {var}");
    }
    assert!(e.contains("3 problems"), "{e}");
}

#[test]
fn disabled_or_simulated_sources_need_no_credentials() {
    let disabled = REAL_META.replace("[sources.meta]", "[sources.meta]\nenabled = false");
    parse(&with(&disabled)).unwrap();
    let simulated = with("[sim]\n[sources.meta]\nad_account_ids = [\"act_1\"]\n");
    parse(&simulated).unwrap();
}

#[test]
fn simulated_source_needs_sim_section() {
    let e = err(&with("[sources.mixpanel]\nproject_id = 1\n"));
    assert!(e.contains("sources.mixpanel"), "{e}");
    assert!(e.contains("[sim]"), "{e}");
    let e = err(&with("[sources.adison]\n"));
    assert!(e.contains("source adison has no drop_url"), "{e}");
    parse(&with(
        "[sources.adison]\ndrop_url = \"s3://drops/adison/\"\n",
    ))
    .unwrap();
}

#[test]
fn fraud_rates_sum_must_stay_below_half() {
    let e = err(&with(
        "[sim]\n[sim.rates]\nfraud_p360_blocked = 0.2\nfraud_p360_detection = 0.2\nfraud_burst = 0.1\n",
    ));
    assert!(e.contains("sim.rates: the fraud_* rates add up to"), "{e}");
    assert!(e.contains("below 0.5"), "{e}");
    // 0.2 + 0.2 + 0.01 * 4 = 0.44 is fine.
    parse(&with(
        "[sim]\n[sim.rates]\nfraud_p360_blocked = 0.2\nfraud_p360_detection = 0.2\n",
    ))
    .unwrap();
}

#[test]
fn sim_ranges_are_checked() {
    let e = err(&with("[sim]\nusers_per_day = 99\n"));
    assert!(e.contains("sim.users_per_day"), "{e}");
    let e = err(&with("[sim]\norganic_share = 1.0\n"));
    assert!(e.contains("sim.organic_share: 1 is outside [0, 1)"), "{e}");
    let e = err(&with("[sim]\n[sim.rates]\nrestatement = -0.1\n"));
    assert!(e.contains("sim.rates.restatement"), "{e}");
    let e = err(&with("[sim]\n[sim.rates]\nmalformed_event = 1.0\n"));
    assert!(e.contains("sim.rates.malformed_event"), "{e}");
    let e = err(&with("[sim]\ndays = 0\n"));
    assert!(e.contains("sim.days"), "{e}");
    let e = err(&with("[sim]\nhorizon_days = 90\n"));
    assert!(e.contains("sim.horizon_days"), "{e}");
}

#[test]
fn source_enums_reject_unknown_values() {
    let e = err(&with(
        "[sim]\n[sources.appsflyer]\napp_ids = [\"a\"]\nreports = [\"installs\"]\n",
    ));
    assert!(e.contains("unknown variant `installs`"), "{e}");
    assert!(e.contains("installs_report"), "{e}");
    let e = err(&with(
        "[sim]\n[sources.meta]\nad_account_ids = [\"act_1\"]\nattribution_windows = [\"3d_click\"]\n",
    ));
    assert!(e.contains("3d_click"), "{e}");
    let e = err(&with("[sim]\n[sources.meta]\nad_account_ids = [\"123\"]\n"));
    assert!(e.contains("act_1234567890"), "{e}");
    let e = err(&with("[sim]\n[sources.appsflyer]\napp_ids = []\n"));
    assert!(e.contains("sources.appsflyer.app_ids"), "{e}");
    let e = err(&with(
        "[sim]\n[sources.google_ads]\ncustomer_ids = [\"123-456-7890\"]\n",
    ));
    assert!(e.contains("10 digits"), "{e}");
}

#[test]
fn base_url_must_be_http_without_credentials() {
    let e = err(&with(
        "[sim]\n[sources.naver]\ncustomer_id = 1\nbase_url = \"https://user:hunter2@example.com\"\n",
    ));
    assert!(!e.contains("hunter2"), "{e}");
    assert!(e.contains("user name or password"), "{e}");
    let e = err(&with(
        "[sim]\n[sources.naver]\ncustomer_id = 1\nbase_url = \"ftp://example.com\"\n",
    ));
    assert!(e.contains("expected http or https"), "{e}");
}

#[test]
fn credential_pasted_into_env_field_is_not_echoed() {
    let text = with(&REAL_META.replace("\"META_ACCESS_TOKEN\"", "\"EAAB9xsecret0token\""));
    let e = err(&text);
    assert!(!e.contains("EAAB9xsecret0token"), "{e}");
    assert!(e.contains("sources.meta.access_token_env"), "{e}");
    assert!(e.contains("NAME of an environment variable"), "{e}");
}

#[test]
fn toml_syntax_error_has_position() {
    let e = err("[pipeline]\nname = \"t\nlake = 1\n");
    assert!(e.starts_with("test.toml:2:"), "{e}");
    let e = err("[pipeline]\nname = \"t\"\n");
    assert!(e.contains("missing field `lake`"), "{e}");
}

#[test]
fn lake_locations_parse() {
    let loc = |s: &str| s.parse::<StoreLocation>();
    assert_eq!(loc("./lake"), Ok(StoreLocation::Local("./lake".into())));
    assert_eq!(
        loc("file:///data/lake"),
        Ok(StoreLocation::Local("/data/lake".into()))
    );
    assert_eq!(
        loc("s3://bucket/a/b/"),
        Ok(StoreLocation::S3 {
            bucket: "bucket".into(),
            prefix: "a/b".into()
        })
    );
    assert_eq!(
        loc("s3://bucket"),
        Ok(StoreLocation::S3 {
            bucket: "bucket".into(),
            prefix: String::new()
        })
    );
    assert_eq!(loc("memory://"), Ok(StoreLocation::Memory));
    assert!(
        loc("gs://bucket")
            .unwrap_err()
            .contains("unsupported location scheme `gs`")
    );
    assert!(loc("s3:///x").is_err());
    let e = err(&MINIMAL.replace("memory://", "http://x"));
    assert!(e.contains("pipeline.lake"), "{e}");
}

#[test]
fn secret_is_redacted() {
    let s = Secret::new("hunter2");
    assert_eq!(format!("{s}"), "***");
    assert_eq!(format!("{s:?}"), "***");
    assert_eq!(format!("{:?}", Some(&s)), "Some(***)");
    assert_eq!(s.expose(), "hunter2");

    let env = |k: &str| (k == "TOKEN").then(|| "hunter2".to_owned());
    let got = resolve_secret("meta", "access_token_env", "TOKEN", &env).unwrap();
    assert_eq!(got.expose(), "hunter2");
    assert!(!format!("{got:?} {got}").contains("hunter2"));

    let e = resolve_secret("meta", "access_token_env", "OTHER", &env).unwrap_err();
    assert_eq!(
        e.to_string(),
        "source meta: environment variable OTHER is not set (access_token_env)"
    );
}

#[test]
fn valid_config_debug_has_no_secret_values() {
    let env = |_: &str| Some("hunter2-secret".to_owned());
    let c =
        PipelineConfig::from_toml(&with(&format!("[mysql]\n{REAL_META}")), "x.toml", &env).unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("hunter2"), "{dbg}");
    assert!(dbg.contains("META_ACCESS_TOKEN"));
    assert_eq!(
        c.mysql.as_ref().unwrap().url(&env).unwrap().to_string(),
        "***"
    );
}

#[test]
fn embedded_demo_is_valid_and_simulated() {
    let c = PipelineConfig::from_toml(EMBEDDED_DEMO, "embedded", &no_env).unwrap();
    assert_eq!(c.pipeline.name, "demo");
    assert!(c.sim.is_some());
    assert_eq!(c.sources.configured().len(), SourceKind::ALL.len());
    assert!(c.sources.enabled().iter().all(|s| s.is_simulated()));
}

#[test]
fn demo_path_is_recognised() {
    assert!(is_demo_path(Path::new("pipelines/demo.toml")));
    assert!(is_demo_path(Path::new("./pipelines/demo.toml")));
    assert!(!is_demo_path(Path::new("/elsewhere/pipelines/demo.toml")));
    assert!(!is_demo_path(Path::new("pipelines/nightly.toml")));
}

#[test]
fn demo_path_falls_back_to_embedded_copy() {
    // Relative to the crate root when run by cargo test; works whether or not the file exists.
    let c = PipelineConfig::load_or_embedded_demo(Path::new(DEMO_PATH)).unwrap();
    assert_eq!(c.pipeline.name, "demo");
    let e = PipelineConfig::load_or_embedded_demo(Path::new("pipelines/nope.toml")).unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot read pipeline config pipelines/nope.toml"),
        "{e}"
    );
}

#[test]
fn dedup_keys_name_real_tables_and_columns() {
    let ok = parse(&with(
        "[dedup_keys]\n\"sim.events\" = [\"insert_id\", \"event\"]\n",
    ))
    .unwrap();
    assert_eq!(ok.dedup_keys["sim.events"], vec!["insert_id", "event"]);
    let e = err(&with("[dedup_keys]\n\"raw.nope\" = [\"id\"]\n"));
    assert!(e.contains("raw.nope"), "{e}");
    let e = err(&with("[dedup_keys]\n\"sim.events\" = [\"insert_idd\"]\n"));
    assert!(e.contains("insert_idd") && e.contains("sim.events"), "{e}");
    let e = err(&with("[dedup_keys]\n\"sim.events\" = []\n"));
    assert!(e.contains("at least one column"), "{e}");
}

#[test]
fn mysql_url_comes_from_the_section_or_the_default_variable() {
    let url = "mysql://ltv:pw@db:3306/marts";
    // No section, no variable: the lake only.
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.mysql_url(&no_env).unwrap(), None);
    assert_eq!(c.mysql_settings().rows_per_insert.get(), 500);
    // No section, LTV_MYSQL_URL set: MySQL on, with the defaults.
    let default_var = |k: &str| (k == "LTV_MYSQL_URL").then(|| url.to_owned());
    assert_eq!(c.mysql_url(&default_var).unwrap().unwrap().expose(), url);
    let blank = |k: &str| (k == "LTV_MYSQL_URL").then(|| "  ".to_owned());
    assert_eq!(c.mysql_url(&blank).unwrap(), None);

    // A section names its own variable and batch size.
    let own_var = |k: &str| (k == "MARTS_DB").then(|| url.to_owned());
    let text = with("[mysql]\nurl_env = \"MARTS_DB\"\nrows_per_insert = 2000\n");
    let c = PipelineConfig::from_toml(&text, "x.toml", &own_var).unwrap();
    assert_eq!(c.mysql_url(&own_var).unwrap().unwrap().expose(), url);
    assert_eq!(c.mysql_settings().rows_per_insert.get(), 2000);
    // ... and that variable is required: LTV_MYSQL_URL does not stand in for it.
    let e = c.mysql_url(&default_var).unwrap_err().to_string();
    assert!(e.contains("MARTS_DB") && !e.contains("pw"), "{e}");

    let e = err(&with("[mysql]\nrows_per_insert = 0\n"));
    assert!(e.contains("rows_per_insert"), "{e}");
}
