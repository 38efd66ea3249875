//! `ltv report` on a small simulated world run through the whole nightly job: the page has
//! every section and the marts' numbers; in headless Chromium it loads from disk with no
//! console error and no request beyond the file, every chart has drawn its marks, and the
//! filters change the campaign table (and reset it to exactly the page as written); an
//! empty range and an empty lake give pages that say so.
//!
//! The browser half needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them). Without them it skips with a note, except under `CI=true`, where it fails. The
//! page and a screenshot are kept under `<target>/test-artifacts/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use chrono::NaiveDate;
use common::{ci, sum_i64};
use ltv::config::{PipelineConfig, std_env};
use ltv::ingest::http::RetryPolicy;
use ltv::lake::{DateRange, Lake};
use ltv::pipeline::{RunKind, RunRequest, run_pipeline};
use ltv::report::{ReportRequest, SECTIONS, build_report, count, money, write_report};
use ltv::schema::Registry;
use polars::prelude::*;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

const DAYS: u32 = 45;
const USERS_PER_DAY: u32 = 300;

fn start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
}

/// `<target>/test-artifacts/<name>`: kept after the run, for a person to open.
fn artifacts(name: &str) -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .unwrap_or(tmp)
        .join("test-artifacts")
        .join(name)
}

/// The world, simulated, pulled and run through the nightly job once for every test.
async fn world() -> &'static Lake {
    static WORLD: OnceCell<Lake> = OnceCell::const_new();
    WORLD
        .get_or_init(|| async {
            let mut config =
                PipelineConfig::from_toml(ltv::config::EMBEDDED_DEMO, "test", &std_env).unwrap();
            let mut sim = config.sim.clone().unwrap();
            sim.seed = 8;
            sim.days = NonZeroU32::new(DAYS).unwrap();
            sim.users_per_day = USERS_PER_DAY;
            sim.start_date = start();
            config.sim = Some(sim);
            // As in tests/pipeline.rs: a 45-day history can backtest a 3-day window at D14 and
            // train D30; D90 is extrapolated by the revenue curve, as in the 90-day demo.
            config.analysis.primary_observation_days = 3;
            config.analysis.horizons = vec![14, 30, 90];
            let lake = Lake::open("memory://").unwrap();
            ltv::sim::simulate(config.sim.as_ref().unwrap(), &lake)
                .await
                .unwrap();
            let days = ltv::ingest::sources::world_days(&lake)
                .await
                .unwrap()
                .unwrap();
            ltv::ingest::sources::drop_simulated_adison_files(&config, &lake, days)
                .await
                .unwrap();
            let no_mysql = |_: &str| None;
            let mut request = RunRequest::new(
                RunKind::Nightly {
                    date: start() + chrono::Duration::days(i64::from(DAYS)),
                },
                &no_mysql,
            );
            request.ingest.retry = RetryPolicy {
                max_attempts: 5,
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(20),
            };
            let report = run_pipeline(&config, &lake, request).await.unwrap();
            assert!(report.failed().is_none(), "{report}");
            lake
        })
        .await
}

fn request(from: Option<NaiveDate>, to: Option<NaiveDate>, out: PathBuf) -> ReportRequest {
    ReportRequest {
        from,
        to,
        out_dir: out,
        fallback_currency: "USD".into(),
    }
}

async fn mart(lake: &Lake, name: &str, range: DateRange) -> DataFrame {
    let registry = Registry::embedded().unwrap();
    lake.scan(registry.get(name).unwrap(), range)
        .await
        .unwrap()
        .collect()
        .unwrap()
}

/// First and last install date of `mart.campaign_daily`.
async fn extent(lake: &Lake) -> (NaiveDate, NaiveDate) {
    let df = mart(lake, "mart.campaign_daily", DateRange::all()).await;
    let days = df.column("dt").unwrap().cast(&DataType::Int32).unwrap();
    let days = days.i32().unwrap();
    let day = |d: i32| {
        NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(i64::from(d))
    };
    (day(days.min().unwrap()), day(days.max().unwrap()))
}

/// The HTML of the element with `id` (up to its closing tag of the same name, no nesting of
/// that tag inside).
fn element<'a>(html: &'a str, tag: &str, id: &str) -> &'a str {
    let open = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id}"));
    let close = html[open..]
        .find(&format!("</{tag}>"))
        .unwrap_or_else(|| panic!("#{id} is not closed"));
    &html[open..open + close]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_holds_every_section_and_the_marts_numbers() {
    let lake = world().await;
    let (html, out) = build_report(lake, &request(None, None, artifacts("unused")))
        .await
        .unwrap();
    let (_, last) = extent(lake).await;
    assert!(last >= start() + chrono::Duration::days(i64::from(DAYS) - 1));
    assert_eq!(
        out.to, last,
        "the default range ends at the marts' last day"
    );
    assert_eq!(out.from, last - chrono::Duration::days(27));
    for (id, title) in SECTIONS {
        assert!(
            html.contains(&format!("<section id=\"{id}\"")),
            "section {id} missing"
        );
        assert!(html.contains(&format!(">{title}</h2>")), "heading {title}");
    }

    // The overview's totals are the mart's over the range.
    let daily = mart(
        lake,
        "mart.campaign_daily",
        DateRange::new(out.from, out.to),
    )
    .await;
    assert!(daily.height() > 100);
    let spend = sum_i64(&daily, "spend_micros");
    let installs = sum_i64(&daily, "installs");
    let revenue = sum_i64(&daily, "revenue_to_date_micros");
    let card = element(&html, "div", "kpi-spend");
    assert!(
        card.contains(&money(spend, "USD")),
        "{card} vs {}",
        money(spend, "USD")
    );
    let card = element(&html, "div", "kpi-installs");
    assert!(card.contains(&count(installs)), "{card} vs {installs}");
    let card = element(&html, "div", "kpi-revenue");
    assert!(card.contains(&money(revenue, "USD")), "{card}");
    // The previous 28 days are partly in the world: there is a change to show.
    assert!(element(&html, "div", "kpi-installs").contains("vs previous period"));

    // The biggest campaign's row carries its installs and spend.
    let per_campaign = daily
        .clone()
        .lazy()
        .group_by([col("channel"), col("campaign_id")])
        .agg([
            col("spend_micros").sum().alias("spend"),
            col("installs").sum().alias("installs"),
        ])
        .sort(
            ["spend"],
            SortMultipleOptions::default().with_order_descending(true),
        )
        .collect()
        .unwrap();
    let top_id = per_campaign
        .column("campaign_id")
        .unwrap()
        .str()
        .unwrap()
        .get(0)
        .unwrap()
        .to_string();
    let top_spend = per_campaign
        .column("spend")
        .unwrap()
        .i64()
        .unwrap()
        .get(0)
        .unwrap();
    let top_installs = per_campaign
        .column("installs")
        .unwrap()
        .i64()
        .unwrap()
        .get(0)
        .unwrap();
    let table = element(&html, "table", "campaign-table");
    let row_start = table
        .find(&format!("<span class=\"id\">{top_id}</span>"))
        .unwrap_or_else(|| panic!("{top_id} not in the table"));
    let row = &table[row_start..row_start + table[row_start..].find("</tr>").unwrap()];
    assert!(
        row.contains(&format!(
            "data-sort=\"{top_installs}\"><span class=\"name\">{}</span></td>",
            count(top_installs)
        )),
        "{row}"
    );
    assert!(row.contains(&money(top_spend, "USD")), "{row}");
    assert_eq!(
        table.matches("<tr>").count() - 1,
        per_campaign.height(),
        "one row per campaign"
    );

    // Every chart is drawn, inline, by plotters.
    for chart in [
        "ltv-curves",
        "spend-vs-value",
        "critical-paths",
        "calibration",
    ] {
        let fig = element(&html, "figure", &format!("chart-{chart}"));
        assert!(fig.contains("<svg role=\"img\""), "{chart} has no SVG");
    }
    // Critical paths, model quality and data quality hold their marts' rows.
    assert!(
        html.contains("tutorial_complete"),
        "the planted path's step"
    );
    let eval = mart(lake, "mart.model_evaluation", DateRange::all()).await;
    assert!(eval.height() > 0);
    assert!(html.contains("<span class=\"chosen\">chosen</span>"));
    let quality = mart(lake, "mart.data_quality", DateRange::new(out.from, out.to)).await;
    let rule = quality
        .column("rule")
        .unwrap()
        .str()
        .unwrap()
        .get(0)
        .unwrap();
    assert!(
        element(&html, "section", "data-quality").contains(rule),
        "{rule}"
    );

    // Self-contained: nothing to fetch.
    for needle in ["src=", "<link", "@import", "url(", "<img", "<iframe"] {
        assert!(!html.contains(needle), "the page would fetch: {needle}");
    }
    println!(
        "report: {} bytes, {} campaigns, {}..{}",
        html.len(),
        out.campaigns,
        out.from,
        out.to
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_range_says_so() {
    let lake = world().await;
    let d = |s: &str| s.parse::<NaiveDate>().unwrap();
    let (html, out) = build_report(
        lake,
        &request(
            Some(d("2020-03-01")),
            Some(d("2020-03-31")),
            artifacts("unused"),
        ),
    )
    .await
    .unwrap();
    assert_eq!(out.campaigns, 0);
    assert!(element(&html, "section", "overview").contains("No campaigns in this range"));
    assert!(element(&html, "section", "campaigns").contains("No campaigns in this range"));
    assert!(element(&html, "section", "ltv-curves").contains("No cohorts in this range"));
    assert!(element(&html, "section", "spend-vs-value").contains("No campaigns in this range"));
    assert!(!html.contains("chart-ltv-curves") && !html.contains("chart-spend-vs-value"));
    assert!(!html.contains("id=\"campaign-table\""));
    // The marts' own days are named, so the reader knows where to look.
    let (first, last) = extent(lake).await;
    assert!(html.contains(&format!("The marts hold install dates {first} – {last}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_lake_gives_a_page_that_says_so() {
    let lake = Lake::open("memory://").unwrap();
    let out = artifacts("empty-lake");
    let written = write_report(&lake, &request(None, None, out.clone()))
        .await
        .unwrap();
    let html = std::fs::read_to_string(&written.path).unwrap();
    assert!(html.contains("The marts are empty"));
    assert!(!html.contains("<svg"), "no chart without data");
    assert!(html.contains("No backtest in the marts yet"));
    assert!(html.contains("No critical-path analysis in the marts yet"));
    assert!(html.contains("No unmapped campaigns"));
    for (id, _) in SECTIONS {
        assert!(html.contains(&format!("<section id=\"{id}\"")), "{id}");
    }
}

// --- The browser --------------------------------------------------------------------------

struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
    session: Option<String>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    /// chromedriver on a free loopback port, or `None` (with a note) when it is not installed.
    async fn start() -> Option<Driver> {
        let (driver, chromium) = (
            Path::new("/usr/bin/chromedriver"),
            Path::new("/usr/bin/chromium"),
        );
        if !driver.exists() || !chromium.exists() {
            let msg = "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)";
            assert!(!ci(), "CI=true: {msg}");
            println!("SKIPPED the browser test: {msg}");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let mut d = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            session: None,
        };
        for _ in 0..100 {
            if let Ok(r) = d.http.get(format!("{}/status", d.base)).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"].as_bool() == Some(true)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                         "--disable-background-networking", "--window-size=1366,900"],
            },
            "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"},
        }}});
        let v = d.call("POST", "/session", caps).await;
        d.session = Some(
            v["sessionId"]
                .as_str()
                .unwrap_or_else(|| panic!("no session: {v}"))
                .to_string(),
        );
        Some(d)
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let r = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        }
        .send()
        .await
        .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v["value"].clone()
    }

    async fn session(&self, method: &str, path: &str, body: Value) -> Value {
        let id = self.session.clone().unwrap();
        self.call(method, &format!("/session/{id}{path}"), body)
            .await
    }

    async fn run(&self, script: &str) -> Value {
        self.session(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    async fn log(&self, kind: &str) -> Vec<Value> {
        self.session("POST", "/se/log", json!({"type": kind}))
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    async fn open(&self, page: &Path) -> String {
        let url = format!("file://{}", page.display());
        self.session("POST", "/url", json!({"url": url})).await;
        url
    }

    /// Console errors, and requests other than the page itself and `data:` URLs, since the
    /// last call.
    async fn problems(&self, page_url: &str) -> (Vec<String>, Vec<String>) {
        let severe: Vec<String> = self
            .log("browser")
            .await
            .into_iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].to_string())
            .collect();
        let mut requests = Vec::new();
        for e in self.log("performance").await {
            let Some(text) = e["message"].as_str() else {
                continue;
            };
            let m: Value = serde_json::from_str(text).unwrap();
            if m["message"]["method"] == "Network.requestWillBeSent" {
                let url = m["message"]["params"]["request"]["url"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if url != page_url && !url.starts_with("data:") {
                    requests.push(url);
                }
            }
        }
        (severe, requests)
    }
}

const CHART_MARKS: &str = r#"
return Array.from(document.querySelectorAll('figure.chart')).map(function (f) {
  var svg = f.querySelector('svg');
  var n = function (sel) { return svg ? svg.querySelectorAll(sel).length : 0; };
  var box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return {id: f.getAttribute('data-chart'), polyline: n('polyline'), circle: n('circle'),
          rect: n('rect'), polygon: n('polygon'), path: n('path'), text: n('text'),
          width: box.width, height: box.height};
});
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chromium_the_page_loads_offline_draws_and_filters() {
    let Some(browser) = Driver::start().await else {
        return;
    };
    let lake = world().await;
    let written = write_report(lake, &request(None, None, artifacts("report")))
        .await
        .unwrap();
    let page = std::fs::canonicalize(&written.path).unwrap();
    let url = browser.open(&page).await;
    let (severe, requests) = browser.problems(&url).await;
    assert!(severe.is_empty(), "console errors: {severe:?}");
    assert!(requests.is_empty(), "network requests: {requests:?}");

    // Every chart drew its marks, at a visible size.
    let charts = browser.run(CHART_MARKS).await;
    let charts = charts.as_array().unwrap();
    println!("charts: {charts:?}");
    let ids: Vec<&str> = charts.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(
        ids,
        [
            "ltv-curves",
            "spend-vs-value",
            "critical-paths",
            "calibration"
        ]
    );
    let marks = |id: &str, kind: &str| {
        charts
            .iter()
            .find(|c| c["id"] == id)
            .and_then(|c| c[kind].as_u64())
            .unwrap_or(0)
    };
    // Actual points of the curves (the only circles there) and the predicted bands (the
    // only polygons plotters draws).
    assert!(marks("ltv-curves", "circle") >= 8, "{charts:?}");
    assert!(marks("ltv-curves", "polygon") >= 2, "{charts:?}");
    // One bubble per campaign with spend, CPI and a prediction, plus one legend dot per
    // channel among them.
    let expected = browser
        .run(
            "var pts = Array.from(document.querySelectorAll('#campaign-table tbody tr'))\
             .filter(function (r) { return r.cells[10].getAttribute('data-sort') !== '' && \
               r.cells[6].getAttribute('data-sort') !== '' && \
               Number(r.cells[4].getAttribute('data-sort')) > 0; });\
             var ch = {}; pts.forEach(function (r) { ch[r.cells[0].textContent] = 1; });\
             return pts.length + Object.keys(ch).length;",
        )
        .await
        .as_u64()
        .unwrap();
    assert!(expected >= 10, "{expected}");
    assert_eq!(marks("spend-vs-value", "circle"), expected, "{charts:?}");
    // A bar per prefix in the table, besides the background and the legend's box.
    let prefixes = browser
        .run("return document.querySelectorAll('#critical-paths table')[0].tBodies[0].rows.length")
        .await
        .as_u64()
        .unwrap();
    assert!(prefixes >= 2);
    assert!(
        marks("critical-paths", "rect") >= prefixes + 2,
        "{charts:?}"
    );
    // Ten deciles and the legend's dot.
    assert_eq!(marks("calibration", "circle"), 11, "{charts:?}");
    for c in charts {
        assert!(c["width"].as_f64().unwrap() > 300.0, "{c}");
    }

    // Sorting is keyboard-reachable: the headings are buttons.
    let buttons = browser
        .run("return document.querySelectorAll('#campaign-table thead th button').length")
        .await;
    assert_eq!(buttons, json!(13));

    // A channel filter shows fewer campaigns; reset shows the page as written again.
    let rows = "return document.querySelectorAll('#campaign-table tbody tr').length";
    let text = "return document.querySelector('#campaign-table tbody').innerText";
    let before_rows = browser.run(rows).await.as_u64().unwrap();
    let before_text = browser.run(text).await;
    assert_eq!(before_rows as usize, written.campaigns);
    let channel = browser
        .run(
            "var s = document.getElementById('f-channel'); s.value = s.options[1].value; \
             s.dispatchEvent(new Event('change')); return s.value",
        )
        .await;
    let after_rows = browser.run(rows).await.as_u64().unwrap();
    println!("channel {channel}: {before_rows} -> {after_rows} rows");
    assert!(
        after_rows > 0 && after_rows < before_rows,
        "{after_rows} of {before_rows}"
    );
    let channels = browser
        .run(
            "return Array.from(document.querySelectorAll('#campaign-table tbody tr'))\
             .map(function (r) { return r.cells[0].textContent; })",
        )
        .await;
    assert!(
        channels.as_array().unwrap().iter().all(|c| *c == channel),
        "{channels}"
    );
    let shown = browser
        .run("return document.getElementById('campaign-count').textContent")
        .await;
    assert_eq!(shown, json!(format!("{after_rows} campaigns")));
    browser
        .run("document.getElementById('f-reset').click(); return null")
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(browser.run(rows).await.as_u64().unwrap(), before_rows);
    assert_eq!(
        browser.run(text).await,
        before_text,
        "the script's table differs from the page's"
    );
    // The install-date filter: the last day alone has fewer installs than the whole range.
    let installs = "return Array.from(document.querySelectorAll('#campaign-table tbody tr'))\
                    .reduce(function (a, r) { return a + Number(r.cells[5].getAttribute('data-sort')); }, 0)";
    let all = browser.run(installs).await.as_f64().unwrap();
    browser
        .run(
            "var f = document.getElementById('f-from'); f.value = f.max; \
             f.dispatchEvent(new Event('change')); return null",
        )
        .await;
    let last_day = browser.run(installs).await.as_f64().unwrap();
    assert!(
        last_day > 0.0 && last_day < all / 5.0,
        "{last_day} of {all}"
    );
    // Sorting by installs puts the largest first.
    browser
        .run("document.getElementById('f-reset').click(); return null")
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    browser
        .run("document.querySelector('#campaign-table th button[data-col=\"5\"]').click(); return null")
        .await;
    let order = browser
        .run(
            "return Array.from(document.querySelectorAll('#campaign-table tbody tr'))\
             .map(function (r) { return Number(r.cells[5].getAttribute('data-sort')); })",
        )
        .await;
    let order: Vec<f64> = order
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] >= w[1]), "{order:?}");
    let (severe, requests) = browser.problems(&url).await;
    assert!(
        severe.is_empty(),
        "console errors after filtering: {severe:?}"
    );
    assert!(requests.is_empty(), "network requests: {requests:?}");

    // The whole page as a picture, for a person to look at.
    browser
        .run("document.getElementById('f-reset').click(); window.scrollTo(0, 0); return null")
        .await;
    let height = browser
        .run("return document.documentElement.scrollHeight")
        .await
        .as_u64()
        .unwrap()
        .min(16_000);
    browser
        .session(
            "POST",
            "/window/rect",
            json!({"width": 1366, "height": height}),
        )
        .await;
    let png = browser.session("GET", "/screenshot", Value::Null).await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(png.as_str().unwrap())
        .unwrap();
    let shot = artifacts("report").join("report.png");
    std::fs::write(&shot, &png).unwrap();
    println!("page: {}\nscreenshot: {}", page.display(), shot.display());

    // The empty range's page loads cleanly too: no chart, no script error.
    let empty = write_report(
        lake,
        &request(
            "2020-03-01".parse().ok(),
            "2020-03-31".parse().ok(),
            artifacts("report-empty"),
        ),
    )
    .await
    .unwrap();
    let url = browser
        .open(&std::fs::canonicalize(&empty.path).unwrap())
        .await;
    let (severe, requests) = browser.problems(&url).await;
    assert!(
        severe.is_empty(),
        "console errors on the empty page: {severe:?}"
    );
    assert!(requests.is_empty(), "{requests:?}");
    // Only the charts that do not depend on the install dates remain, drawn.
    let charts = browser.run(CHART_MARKS).await;
    let ids: Vec<&str> = charts
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, ["critical-paths", "calibration"], "{charts}");
    browser.session("DELETE", "", Value::Null).await;
}
