//! Meta on the local server: the Graph API's insights edge for the world's ad accounts,
//! sync (`GET /{version}/act_<id>/insights`, cursor paging) and async (`POST` creates a
//! report run, `GET /{version}/<run>` reports its progress, `GET /{version}/<run>/insights`
//! pages its rows), behind an access token (`access_token` parameter or a Bearer header).
//!
//! Every answer carries Meta's usage headers. With [`MetaOptions::usage_per_call_pct`] set,
//! usage is the calls of the last [`MetaOptions::usage_window`] times that percentage, and a
//! call made at 100% is blocked (error 80000, `estimated_time_to_regain_access`), so a client
//! that ignores the headers gets blocked and one that slows down does not.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use base64::Engine as _;
use chrono::NaiveDate;
use serde_json::{Value, json};

use super::{Fault, ServerState, credentials, world_error};
use crate::config::MetaLevel;
use crate::sim::serve::meta::{insight_rows, totals, world_accounts, world_ad_days};

/// How the simulated Meta behaves besides the shared faults.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaOptions {
    /// Usage each call adds, in percent; 0 reports a steady low usage and never blocks.
    pub usage_per_call_pct: f64,
    /// How long a call counts towards usage.
    pub usage_window: Duration,
    /// `estimated_time_to_regain_access` (minutes) named when blocking or throttling.
    pub regain_minutes: u32,
    /// The first this-many report runs never finish (stuck at 10%).
    pub stuck_runs: u32,
    /// The this-many runs after the stuck ones end as `Job Failed` on their first poll.
    pub failed_runs: u32,
}

impl Default for MetaOptions {
    fn default() -> Self {
        MetaOptions {
            usage_per_call_pct: 0.0,
            usage_window: Duration::from_secs(1),
            regain_minutes: 1,
            stuck_runs: 0,
            failed_runs: 0,
        }
    }
}

/// Report runs and recent calls of one server.
#[derive(Debug, Default)]
struct MetaSim {
    runs: Mutex<HashMap<String, Run>>,
    created: AtomicU64,
    calls: Mutex<VecDeque<Instant>>,
}

#[derive(Debug, Clone)]
struct Run {
    query: InsightsQuery,
    account: String,
    polls: u32,
    stuck: bool,
    failed: bool,
}

impl Run {
    /// (status, percent) after `polls` polls: a healthy run completes on its second poll.
    fn progress(&self) -> (&'static str, u32) {
        if self.stuck {
            return ("Job Running", 10);
        }
        if self.failed && self.polls > 0 {
            return ("Job Failed", 0);
        }
        match self.polls {
            0 => ("Job Not Started", 0),
            1 => ("Job Running", 50),
            _ => ("Job Completed", 100),
        }
    }
}

pub(super) fn routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/{version}/{node}", get(run_status))
        .route("/{version}/{node}/insights", get(insights).post(create_run))
        .layer(Extension(Arc::new(MetaSim::default())))
}

/// The insights parameters (query string of a GET, form of a POST).
#[derive(Debug, Clone, Default, serde::Deserialize)]
struct InsightsQuery {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    fields: Option<String>,
    #[serde(default)]
    time_range: Option<String>,
    #[serde(default)]
    time_increment: Option<String>,
    #[serde(default)]
    action_attribution_windows: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    after: Option<String>,
}

fn graph_error(
    status: StatusCode,
    code: i64,
    subcode: Option<i64>,
    kind: &str,
    message: &str,
    transient: bool,
) -> Response {
    let mut e = json!({
        "message": message,
        "type": kind,
        "code": code,
        "fbtrace_id": "AsimFbTrace0000000000",
    });
    if let Some(s) = subcode {
        e["error_subcode"] = json!(s);
    }
    if transient {
        e["is_transient"] = json!(true);
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        json!({ "error": e }).to_string(),
    )
        .into_response()
}

fn bad_param(message: &str) -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        100,
        None,
        "OAuthException",
        &format!("(#100) {message}"),
        false,
    )
}

/// Checks the token: the `access_token` parameter, or `Authorization: Bearer|OAuth <token>`.
fn authorise(headers: &HeaderMap, param: Option<&str>) -> Result<(), Response> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("OAuth "))
        });
    match param.or(from_header) {
        None => Err(graph_error(
            StatusCode::BAD_REQUEST,
            104,
            None,
            "OAuthException",
            "An access token is required to request this resource.",
            false,
        )),
        Some(t) if t == credentials::META_ACCESS_TOKEN => Ok(()),
        Some(_) => Err(graph_error(
            StatusCode::BAD_REQUEST,
            190,
            None,
            "OAuthException",
            "Invalid OAuth access token - Cannot parse access token",
            false,
        )),
    }
}

/// Meta's usage headers for a usage percentage and regain time.
fn usage_headers(pct: f64, regain_minutes: u32) -> HeaderMap {
    let pct = pct.min(100.0);
    let mut h = HeaderMap::new();
    let insights = json!({"app_id_util_pct": pct, "acc_id_util_pct": pct, "ads_api_access_tier": "standard_access"});
    let buc = json!({"1000000000001": [{
        "type": "ads_insights",
        "call_count": pct,
        "total_cputime": (pct / 4.0).round(),
        "total_time": pct,
        "estimated_time_to_regain_access": regain_minutes,
        "ads_api_access_tier": "standard_access",
    }]});
    for (name, v) in [
        ("x-fb-ads-insights-throttle", insights),
        ("x-business-use-case-usage", buc),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v.to_string()) {
            h.insert(name, v);
        }
    }
    h
}

fn with_headers(mut r: Response, h: HeaderMap) -> Response {
    r.headers_mut().extend(h);
    r
}

fn rate_limited(opts: &MetaOptions, regain: u32) -> Response {
    with_headers(
        graph_error(
            StatusCode::BAD_REQUEST,
            80_000,
            Some(2_446_079),
            "OAuthException",
            "(#80000) There have been too many calls from this ad-account. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting#ads-insights.",
            true,
        ),
        usage_headers(100.0 + opts.usage_per_call_pct, regain),
    )
}

/// Counts a call towards usage: `Err` with a block when usage is spent, else the headers.
async fn meter(state: &ServerState, sim: &MetaSim) -> Result<HeaderMap, Response> {
    let opts = &state.options.meta;
    if opts.usage_per_call_pct <= 0.0 {
        return Ok(usage_headers(4.0, 0));
    }
    let used = {
        let mut calls = sim.calls.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        while calls
            .front()
            .is_some_and(|t| now.duration_since(*t) > opts.usage_window)
        {
            calls.pop_front();
        }
        let before = calls.len() as f64 * opts.usage_per_call_pct;
        if before >= 100.0 {
            None
        } else {
            calls.push_back(now);
            Some(before + opts.usage_per_call_pct)
        }
    };
    match used {
        Some(pct) => Ok(usage_headers(pct, 0)),
        None => {
            // Counted so tests can see that a client was blocked.
            state.admit("meta/blocked").await;
            Err(rate_limited(opts, opts.regain_minutes))
        }
    }
}

/// Answers for the faults that come before any body.
fn early_fault(fault: Fault, opts: &MetaOptions) -> Option<Response> {
    match fault {
        Fault::Throttle => Some(rate_limited(opts, opts.regain_minutes)),
        // Blocked far longer than any run waits.
        Fault::QuotaSpent => Some(rate_limited(opts, 60)),
        Fault::ServerError => Some(graph_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            2,
            None,
            "OAuthException",
            "An unexpected error has occurred. Please retry your request later.",
            true,
        )),
        _ => None,
    }
}

fn ok_json(body: String, fault: Fault, h: HeaderMap) -> Response {
    let body = match fault {
        Fault::Truncate => {
            let mut b = body.into_bytes();
            b.truncate(b.len() / 2);
            return with_headers(
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
                    b,
                )
                    .into_response(),
                h,
            );
        }
        // A complete body with an impossible value: not retryable, named by the parser.
        Fault::Malform => body
            .replacen("\"spend\":\"", "\"spend\":\"1,", 1)
            .replacen(
                "\"async_percent_completion\":",
                "\"async_percent_completion\":\"n/a\",\"x\":",
                1,
            )
            .replacen("\"report_run_id\":\"", "\"report_run_id\":null,\"y\":\"", 1),
        _ => body,
    };
    with_headers(
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
            body,
        )
            .into_response(),
        h,
    )
}

fn level_of(q: &InsightsQuery) -> Result<MetaLevel, Response> {
    match q.level.as_deref().unwrap_or("account") {
        "account" => Ok(MetaLevel::Account),
        "campaign" => Ok(MetaLevel::Campaign),
        "adset" => Ok(MetaLevel::Adset),
        "ad" => Ok(MetaLevel::Ad),
        other => Err(bad_param(&format!(
            "level must be one of the following values: ad, adset, campaign, account (got {other})"
        ))),
    }
}

/// `time_range={"since":"YYYY-MM-DD","until":"YYYY-MM-DD"}`.
fn range_of(q: &InsightsQuery) -> Result<(NaiveDate, NaiveDate), Response> {
    let bad = || bad_param("time_range must be {'since':YYYY-MM-DD,'until':YYYY-MM-DD}");
    let v: Value =
        serde_json::from_str(q.time_range.as_deref().ok_or_else(bad)?).map_err(|_| bad())?;
    let d = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
    };
    match (d("since"), d("until")) {
        (Some(s), Some(u)) if s <= u => Ok((s, u)),
        _ => Err(bad()),
    }
}

fn check_query(q: &InsightsQuery) -> Result<(), Response> {
    if q.time_increment.as_deref() != Some("1") {
        // The world is daily; other increments are not simulated.
        return Err(bad_param("the local server serves time_increment=1 only"));
    }
    level_of(q)?;
    range_of(q)?;
    Ok(())
}

fn cursor(i: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("offset:{i}"))
}

fn offset_of(after: Option<&str>) -> Result<usize, Response> {
    let Some(a) = after else { return Ok(0) };
    let bad = || bad_param("Invalid cursor");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(a)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let i: usize = text
        .strip_prefix("offset:")
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)?;
    Ok(i + 1)
}

/// Renders the page of `q` for an account's world, with cursors and `next` as Meta does.
async fn page(
    state: &ServerState,
    account: &str,
    q: &InsightsQuery,
    host: &str,
    path: &str,
) -> Result<String, Response> {
    let level = level_of(q)?;
    let (since, until) = range_of(q)?;
    let windows_text = q
        .action_attribution_windows
        .clone()
        .unwrap_or_else(|| "[\"7d_click\",\"1d_view\"]".into());
    let windows: Vec<String> = serde_json::from_str(&windows_text)
        .map_err(|_| bad_param("action_attribution_windows must be a JSON array"))?;
    let windows: Vec<&str> = windows.iter().map(String::as_str).collect();
    let fields_text = q
        .fields
        .clone()
        .unwrap_or_else(|| "impressions,spend".into());
    let fields: Vec<&str> = fields_text.split(',').map(str::trim).collect();
    let days = world_ad_days(&state.lake, account, since, until)
        .await
        .map_err(world_error)?;
    let rows = insight_rows(level, &totals(level, &days), &windows, &fields);
    let limit = q.limit.unwrap_or(25).clamp(1, 5000);
    let start = offset_of(q.after.as_deref())?.min(rows.len());
    let end = (start + limit).min(rows.len());
    let mut doc = json!({ "data": rows[start..end] });
    if end > start {
        let mut paging = json!({"cursors": {"before": cursor(start), "after": cursor(end - 1)}});
        if end < rows.len() {
            let token = q.access_token.as_deref().unwrap_or_default();
            paging["next"] = json!(format!(
                "http://{host}{path}?access_token={token}&level={}&limit={limit}&after={}",
                level.name(),
                cursor(end - 1)
            ));
        }
        doc["paging"] = paging;
    }
    Ok(doc.to_string())
}

fn host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string()
}

/// `GET /{version}/act_<id>/insights` (sync) or `GET /{version}/<run>/insights` (results).
async fn insights(
    State(state): State<Arc<ServerState>>,
    Extension(sim): Extension<Arc<MetaSim>>,
    Path((version, node)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<InsightsQuery>,
) -> Response {
    if let Err(r) = authorise(&headers, q.access_token.as_deref()) {
        return r;
    }
    let usage = match meter(&state, &sim).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    let fault = state.admit("meta/insights").await;
    if let Some(r) = early_fault(fault, &state.options.meta) {
        return r;
    }
    let path = format!("/meta/{version}/{node}/insights");
    let (account, query) = if node.starts_with("act_") {
        if let Err(r) = check_query(&q) {
            return r;
        }
        (node.clone(), q.clone())
    } else {
        let runs = sim.runs.lock().unwrap_or_else(|p| p.into_inner());
        let Some(run) = runs.get(&node) else {
            return unknown_object(&node);
        };
        if run.progress().0 != "Job Completed" {
            return bad_param("The report is not ready yet; poll its async_status first");
        }
        let mut query = run.query.clone();
        query.limit = q.limit;
        query.after = q.after.clone();
        query.access_token = q.access_token.clone();
        (run.account.clone(), query)
    };
    match known_account(&state, &account).await {
        Ok(true) => {}
        Ok(false) => return unknown_object(&account),
        Err(r) => return r,
    }
    match page(&state, &account, &query, &host(&headers), &path).await {
        Ok(body) => ok_json(body, fault, usage),
        Err(r) => r,
    }
}

fn unknown_object(id: &str) -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        100,
        Some(33),
        "GraphMethodException",
        &format!(
            "Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
        ),
        false,
    )
}

async fn known_account(state: &ServerState, account: &str) -> Result<bool, Response> {
    let accounts = world_accounts(&state.lake).await.map_err(world_error)?;
    Ok(accounts.iter().any(|a| a == account))
}

/// `POST /{version}/act_<id>/insights`: starts a report run.
async fn create_run(
    State(state): State<Arc<ServerState>>,
    Extension(sim): Extension<Arc<MetaSim>>,
    Path((_version, node)): Path<(String, String)>,
    headers: HeaderMap,
    Form(q): Form<InsightsQuery>,
) -> Response {
    if let Err(r) = authorise(&headers, q.access_token.as_deref()) {
        return r;
    }
    let usage = match meter(&state, &sim).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    let fault = state.admit("meta/runs").await;
    if let Some(r) = early_fault(fault, &state.options.meta) {
        return r;
    }
    match known_account(&state, &node).await {
        Ok(true) => {}
        Ok(false) => return unknown_object(&node),
        Err(r) => return r,
    }
    if let Err(r) = check_query(&q) {
        return r;
    }
    let n = sim.created.fetch_add(1, Ordering::Relaxed);
    let id = format!("{}", 6_211_389_000_000_u64 + n);
    let run = Run {
        query: q,
        account: node,
        polls: 0,
        stuck: n < u64::from(state.options.meta.stuck_runs),
        failed: n >= u64::from(state.options.meta.stuck_runs)
            && n < u64::from(state.options.meta.stuck_runs + state.options.meta.failed_runs),
    };
    sim.runs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.clone(), run);
    ok_json(json!({ "report_run_id": id }).to_string(), fault, usage)
}

#[derive(Debug, serde::Deserialize)]
struct TokenQuery {
    #[serde(default)]
    access_token: Option<String>,
}

/// `GET /{version}/<run>`: the run's status; each poll moves a healthy run on.
async fn run_status(
    State(state): State<Arc<ServerState>>,
    Extension(sim): Extension<Arc<MetaSim>>,
    Path((_version, node)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    if let Err(r) = authorise(&headers, q.access_token.as_deref()) {
        return r;
    }
    let usage = match meter(&state, &sim).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    let fault = state.admit("meta/status").await;
    if let Some(r) = early_fault(fault, &state.options.meta) {
        return r;
    }
    let body = {
        let mut runs = sim.runs.lock().unwrap_or_else(|p| p.into_inner());
        let Some(run) = runs.get_mut(&node) else {
            return unknown_object(&node);
        };
        run.polls += 1;
        let (status, pct) = run.progress();
        let (since, until) = range_of(&run.query).unwrap_or_default();
        let completed_at = if status == "Job Completed" {
            1_767_398_460
        } else {
            0
        };
        json!({
            "id": node,
            "account_id": run.account.trim_start_matches("act_"),
            "time_ref": 1_767_398_400,
            "time_completed": completed_at,
            "async_status": status,
            "async_percent_completion": pct,
            "date_start": since.to_string(),
            "date_stop": until.to_string(),
        })
        .to_string()
    };
    ok_json(body, fault, usage)
}
