//! The HTML page: one file, styles, data and script inlined, charts as inline SVG, so it
//! opens from disk with no network at all.

use std::fmt::Write as _;

use chrono::NaiveDate;

use super::ReportError;
use super::campaigns::{MIX_MIN_SHARE, campaign_rows, facts_json, row_html};
use super::charts;
use super::data::{DailyFact, HORIZONS, ReportData};
use super::format::{
    DASH, change, count, esc, json_in_script, money, money_or_dash, pct, pct_or_dash, times,
};

const CSS: &str = include_str!("assets/report.css");
const JS: &str = include_str!("assets/report.js");

/// The sections, in page order: (id, heading).
pub const SECTIONS: [(&str, &str); 7] = [
    ("overview", "Overview"),
    ("campaigns", "Campaigns"),
    ("ltv-curves", "LTV curves"),
    ("spend-vs-value", "Spend vs value"),
    ("critical-paths", "Critical paths"),
    ("model-quality", "Model quality"),
    ("data-quality", "Data quality"),
];

/// Sums of the overview over some campaign-days.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub spend: i64,
    pub installs: i64,
    pub revenue: i64,
    /// pLTV totals at [`HORIZONS`] over the days predicted whole, and the spend of those days.
    pub pltv: [Option<i64>; 3],
    pub pltv_spend: [i64; 3],
}

impl Totals {
    pub fn of(facts: &[DailyFact]) -> Totals {
        let mut t = Totals::default();
        for f in facts {
            t.spend += f.spend;
            t.installs += f.installs;
            t.revenue += f.revenue;
            for h in 0..3 {
                if let Some(p) = f.pltv[h] {
                    t.pltv[h] = Some(t.pltv[h].unwrap_or(0) + p);
                    t.pltv_spend[h] += f.spend;
                }
            }
        }
        t
    }

    pub fn roas(&self, h: usize) -> Option<f64> {
        let p = self.pltv[h]?;
        (self.pltv_spend[h] > 0).then(|| p as f64 / self.pltv_spend[h] as f64)
    }
}

fn day_span(from: NaiveDate, to: NaiveDate) -> String {
    format!("{} – {}", from.format("%Y-%m-%d"), to.format("%Y-%m-%d"))
}

/// `<p class="empty">` for a section with nothing to show.
fn empty(text: &str) -> String {
    format!("<p class=\"empty\">{}</p>", esc(text))
}

fn section(out: &mut String, id: &str, title: &str, body: &str) {
    let _ = write!(
        out,
        "<section id=\"{id}\" aria-labelledby=\"{id}-h\"><h2 id=\"{id}-h\">{}</h2>{body}</section>",
        esc(title)
    );
}

fn figure(id: &str, svg: &str, caption: &str) -> String {
    format!(
        "<figure class=\"chart\" id=\"chart-{id}\" data-chart=\"{id}\">{svg}<figcaption>{}</figcaption></figure>",
        esc(caption)
    )
}

/// A table: header cells, then rows of already escaped cells; the `numeric` columns (by
/// index) right-aligned and unbroken.
fn table(caption: &str, head: &[&str], rows: &[Vec<String>], numeric: &[usize]) -> String {
    let mut s = format!(
        "<div class=\"table-wrap\"><table><caption>{}</caption><thead><tr>",
        esc(caption)
    );
    for (k, h) in head.iter().enumerate() {
        let class = if numeric.contains(&k) {
            " class=\"num\""
        } else {
            ""
        };
        let _ = write!(s, "<th scope=\"col\"{class}>{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>");
    for r in rows {
        s.push_str("<tr>");
        for (k, c) in r.iter().enumerate() {
            let class = if numeric.contains(&k) {
                " class=\"num\""
            } else {
                ""
            };
            let _ = write!(s, "<td{class}>{c}</td>");
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div>");
    s
}

fn change_html(current: f64, previous: Option<f64>) -> String {
    change_colored(current, previous, true)
}

/// The change, green when it is good news: up for revenue, down for a cost.
fn change_colored(current: f64, previous: Option<f64>, up_is_good: bool) -> String {
    match change(current, previous) {
        Some(c) => {
            let arrow = if c >= 0.0 { "▲" } else { "▼" };
            let class = if (c >= 0.0) == up_is_good {
                "good"
            } else {
                "bad"
            };
            format!(
                "<span class=\"change {class}\">{arrow} {} vs previous period</span>",
                pct(c.abs(), 1)
            )
        }
        None => "<span class=\"change\">no previous period to compare</span>".into(),
    }
}

fn card(out: &mut String, id: &str, label: &str, value: &str, change: &str) {
    let _ = write!(
        out,
        "<div class=\"card\" id=\"kpi-{id}\"><dt>{}</dt><dd><span class=\"value\">{}</span>{change}</dd></div>",
        esc(label),
        esc(value)
    );
}

fn overview(data: &ReportData) -> String {
    if data.daily.is_empty() {
        let held = match data.extent {
            Some((a, b)) => format!(" The marts hold install dates {}.", day_span(a, b)),
            None => " The marts are empty: run `ltv run` (or `ltv demo`) first.".into(),
        };
        return empty(&format!(
            "No campaigns in this range ({}).{held}",
            day_span(data.period.from, data.period.to)
        ));
    }
    let cur = &data.currency;
    let now = Totals::of(&data.daily);
    let before = Totals::of(&data.previous_daily);
    let had_before = !data.previous_daily.is_empty();
    let prev = |v: i64| had_before.then_some(v as f64);
    let mut s = String::from("<dl class=\"cards\">");
    card(
        &mut s,
        "spend",
        "Spend",
        &money(now.spend, cur),
        &change_html(now.spend as f64, prev(before.spend)),
    );
    card(
        &mut s,
        "installs",
        "Installs",
        &count(now.installs),
        &change_html(now.installs as f64, prev(before.installs)),
    );
    let cpi = |t: &Totals| (t.installs > 0).then(|| t.spend as f64 / t.installs as f64);
    card(
        &mut s,
        "cpi",
        "Cost per install",
        &money_or_dash(cpi(&now).map(|c| c.round() as i64), cur),
        &match cpi(&now) {
            Some(c) => change_colored(c, cpi(&before).filter(|_| had_before), false),
            None => String::new(),
        },
    );
    card(
        &mut s,
        "revenue",
        "Revenue to date",
        &money(now.revenue, cur),
        &change_html(now.revenue as f64, prev(before.revenue)),
    );
    for (h, days) in HORIZONS.iter().enumerate() {
        let value = money_or_dash(now.pltv[h], cur);
        let ch = match now.pltv[h] {
            Some(p) => change_html(p as f64, before.pltv[h].map(|v| v as f64)),
            None => "<span class=\"change\">no install day predicted whole yet</span>".into(),
        };
        card(
            &mut s,
            &format!("pltv-d{days}"),
            &format!("Predicted D{days} revenue"),
            &value,
            &ch,
        );
        let roas = now.roas(h);
        let ch = match roas {
            Some(r) => change_html(r, before.roas(h)),
            None => String::new(),
        };
        card(
            &mut s,
            &format!("roas-d{days}"),
            &format!("Predicted D{days} ROAS"),
            &pct_or_dash(roas, 0),
            &ch,
        );
    }
    s.push_str("</dl>");
    let predicted_days = |h: usize| {
        let mut d: Vec<NaiveDate> = data
            .daily
            .iter()
            .filter(|f| f.pltv[h].is_some())
            .map(|f| f.dt)
            .collect();
        d.dedup();
        d.len()
    };
    let _ = write!(
        s,
        "<p class=\"note\">Install dates {} ({} days), compared with {} ({} of its days in the marts). \
         Predicted revenue and ROAS add up the install days whose every install has a prediction \
         (D30: {} days, D90: {}, D180: {}); the last days of the range wait for their users' \
         observation window to close. ROAS is predicted revenue over the spend of the same days. \
         {} of the campaign-days have a horizon extrapolated past the history the models could \
         train on (see README, LTV models).</p>",
        day_span(data.period.from, data.period.to),
        data.period.days(),
        day_span(data.previous.from, data.previous.to),
        {
            let mut d: Vec<NaiveDate> = data.previous_daily.iter().map(|f| f.dt).collect();
            d.dedup();
            d.len()
        },
        predicted_days(0),
        predicted_days(1),
        predicted_days(2),
        count(data.daily.iter().filter(|f| f.extrapolated).count() as i64),
    );
    s
}

fn campaigns(data: &ReportData) -> String {
    if data.daily.is_empty() {
        return empty(&format!(
            "No campaigns in this range ({}).",
            day_span(data.period.from, data.period.to)
        ));
    }
    let headline = data.headline();
    let rows = campaign_rows(data);
    let mut channels: Vec<&str> = rows.iter().map(|r| r.channel.as_str()).collect();
    channels.sort_unstable();
    channels.dedup();
    let mut platforms: Vec<String> = Vec::new();
    let mut countries: Vec<String> = Vec::new();
    for m in data.mix.values() {
        platforms.extend(super::campaigns::mix_values(&m.platforms));
        countries.extend(super::campaigns::mix_values(&m.countries));
    }
    platforms.sort_unstable();
    platforms.dedup();
    countries.sort_unstable();
    countries.dedup();
    let options = |values: &[String], all: &str| {
        let mut s = format!("<option value=\"\">{}</option>", esc(all));
        for v in values {
            let _ = write!(s, "<option value=\"{0}\">{0}</option>", esc(v));
        }
        s
    };
    let channels: Vec<String> = channels.into_iter().map(str::to_owned).collect();
    let (from, to) = (data.period.from, data.period.to);
    let mut s = String::new();
    let _ = write!(
        s,
        "<form class=\"filters\" id=\"campaign-filters\" aria-label=\"Campaign filters\">\
         <label>Channel <select id=\"f-channel\" name=\"channel\">{}</select></label>\
         <label>Platform <select id=\"f-platform\" name=\"platform\">{}</select></label>\
         <label>Country <select id=\"f-country\" name=\"country\">{}</select></label>\
         <label>Installed from <input type=\"date\" id=\"f-from\" name=\"from\" value=\"{from}\" min=\"{from}\" max=\"{to}\"></label>\
         <label>to <input type=\"date\" id=\"f-to\" name=\"to\" value=\"{to}\" min=\"{from}\" max=\"{to}\"></label>\
         <button type=\"reset\" id=\"f-reset\">Reset filters</button></form>",
        options(&channels, "All channels"),
        options(&platforms, "All platforms"),
        options(&countries, "All countries"),
    );
    let horizon = headline.map_or("—".to_string(), |h| format!("D{}", HORIZONS[h]));
    let _ = write!(
        s,
        "<p id=\"campaign-count\" aria-live=\"polite\">{} campaigns</p>",
        rows.len()
    );
    let head = [
        "Channel",
        "Campaign",
        "Platform",
        "Country",
        "Spend",
        "Installs",
        "CPI",
        "Fraud share",
        "D1 retention",
        "D7 retention",
        &format!("pLTV {horizon} (90% interval)"),
        &format!("ROAS {horizon}"),
        "Payback",
    ];
    s.push_str(
        "<div class=\"table-wrap\"><table id=\"campaign-table\"><caption>Campaigns of the \
         selected install dates; select a column heading to sort</caption><thead><tr>",
    );
    for (k, h) in head.iter().enumerate() {
        let class = if k >= 4 { " class=\"num\"" } else { "" };
        let sort = if k == 4 {
            " aria-sort=\"descending\""
        } else {
            ""
        };
        let _ = write!(
            s,
            "<th scope=\"col\"{class}{sort}><button type=\"button\" data-col=\"{k}\">{}</button></th>",
            esc(h)
        );
    }
    s.push_str("</tr></thead><tbody>");
    for r in &rows {
        let mix = data.mix.get(&(r.channel.clone(), r.campaign_id.clone()));
        s.push_str(&row_html(r, mix, &data.currency, headline));
    }
    s.push_str("</tbody></table></div>");
    s.push_str(
        "<p id=\"campaign-empty\" class=\"empty\" hidden>No campaigns match these filters.</p>",
    );
    let _ = write!(
        s,
        "<p class=\"note\">Spend, installs (fraud and test excluded), fraud share (fraud / all \
         first installs), retention and pLTV come from mart.campaign_daily, added up over the \
         selected install dates. pLTV is predicted revenue per install over the days whose every \
         install is predicted, with a 90% interval of the mean of the users' predictions \
         (normal approximation, from mart.user_ltv); ROAS is that revenue over the same days' \
         spend. Payback is the first day N (1, 3, 7, 14, 30, …) at which the cohorts observed \
         that long (mart.cohort_ltv) have earned back the CPI, else the first predicted horizon \
         that does; — when neither does. mart.campaign_daily has no platform or country: they \
         are those of the campaign's predicted users in mart.user_ltv over the report's dates, \
         listing each platform or country with at least {} of them; the platform and country \
         filters keep the campaigns listed there, with the whole campaign's figures.</p>",
        pct(MIX_MIN_SHARE, 0)
    );
    s
}

fn ltv_curves(data: &ReportData) -> Result<String, ReportError> {
    Ok(match charts::ltv_curves(data)? {
        Some(svg) => figure(
            "ltv-curves",
            &svg,
            "Cumulative revenue per install by day since install, per channel. Solid: actual, \
             from the cohorts of the selected range observed that long (mart.cohort_ltv). \
             Dashed: the predicted horizons (mart.user_ltv), with the 90% interval of the mean \
             prediction as a band.",
        ),
        None => empty("No cohorts in this range, so there are no LTV curves to draw."),
    })
}

fn spend_vs_value(data: &ReportData) -> Result<String, ReportError> {
    let rows = campaign_rows(data);
    let headline = data.headline();
    Ok(match charts::spend_vs_value(data, &rows, headline)? {
        Some(svg) => figure(
            "spend-vs-value",
            &svg,
            &format!(
                "Each bubble is a campaign with spend and a D{} prediction; its area follows its \
                 spend. Above the dashed line a campaign's installs are predicted to be worth more \
                 than they cost.",
                headline.map_or(90, |h| HORIZONS[h])
            ),
        ),
        None if data.daily.is_empty() => empty("No campaigns in this range."),
        None => empty(
            "No campaign in this range has both spend and a prediction yet (predictions come once \
             an install day's observation window has closed).",
        ),
    })
}

fn critical_paths(data: &ReportData) -> Result<String, ReportError> {
    let p = &data.paths;
    if p.prefixes.is_empty() && p.whole_paths.is_empty() && p.events.is_empty() {
        return Ok(empty(
            "No critical-path analysis in the marts yet (mart.critical_path is empty, or no path \
             had the 100 users a row needs).",
        ));
    }
    let mut s = format!(
        "<p>Overall cohort, as of {}: {} users whose first {} hours the data covers; {} of them \
         reached <strong>{}</strong> (the base rate). Paths are the distinct events before the \
         target in order of first occurrence; a prefix counts every user whose path starts with \
         it. Lift is conversion over the base rate; rows are ranked by the lift their support \
         makes credible.</p>",
        p.as_of.map_or(DASH.to_string(), |d| d.to_string()),
        count(p.cohort_users),
        p.window_hours,
        pct(p.base_rate, 2),
        esc(&p.target)
    );
    if let Some(svg) = charts::path_bars(&p.prefixes, p.base_rate)? {
        s.push_str(&figure(
            "critical-paths",
            &svg,
            "Conversion to the target of the top path prefixes; the dashed line is the base rate.",
        ));
    }
    let path_rows = |rows: &[super::data::PathRow]| -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| {
                vec![
                    esc(&r.path),
                    count(r.support),
                    count(r.conversions),
                    pct(r.conversion_rate, 2),
                    times(r.lift),
                    r.median_hours.map_or(DASH.into(), |h| format!("{h:.0} h")),
                ]
            })
            .collect()
    };
    let head = [
        "Path",
        "Users",
        "Converted",
        "Conversion",
        "Lift",
        "Median time to convert",
    ];
    if !p.prefixes.is_empty() {
        s.push_str(&table(
            "Top path prefixes",
            &head,
            &path_rows(&p.prefixes),
            &[1, 2, 3, 4, 5],
        ));
    }
    if !p.whole_paths.is_empty() {
        s.push_str(&table(
            "Top whole paths",
            &head,
            &path_rows(&p.whole_paths),
            &[1, 2, 3, 4, 5],
        ));
    }
    if p.events.is_empty() {
        s.push_str(&empty("No single event had enough users to rank."));
    } else {
        let rows: Vec<Vec<String>> = p
            .events
            .iter()
            .map(|e| {
                vec![
                    esc(&e.event),
                    count(e.support),
                    pct(e.conversion_rate, 2),
                    pct_or_dash(e.conversion_rate_without, 2),
                    times(e.lift),
                    times(e.lift_vs_without),
                    format!("{:.0} h", e.median_hours),
                ]
            })
            .collect();
        s.push_str(&table(
            "Events with the highest lift (early presence, before the target)",
            &[
                "Event",
                "Users with it",
                "Conversion with",
                "Conversion without",
                "Lift",
                "Lift vs without",
                "Median time to event",
            ],
            &rows,
            &[1, 2, 3, 4, 5, 6],
        ));
    }
    Ok(s)
}

fn model_quality(data: &ReportData) -> Result<String, ReportError> {
    let mut s = String::new();
    if data.backtest.is_empty() {
        s.push_str(&empty(
            "No backtest in the marts yet (mart.model_evaluation is empty): run `ltv backtest`, \
             or wait for the nightly run's weekly one.",
        ));
    } else {
        let f = |v: Option<f64>| v.map_or(DASH.into(), |v| format!("{v:.3}"));
        let rows: Vec<Vec<String>> = data
            .backtest
            .iter()
            .map(|b| {
                vec![
                    format!(
                        "{}{}",
                        esc(&b.model),
                        if b.chosen {
                            " <span class=\"chosen\">chosen</span>"
                        } else {
                            ""
                        }
                    ),
                    format!("D{}", b.horizon_days),
                    format!("{} days", b.window_days),
                    count(b.cutoffs),
                    count(b.scored_users),
                    pct_or_dash(b.campaign_mape, 1),
                    f(b.bias),
                    f(b.gini),
                    pct_or_dash(b.decile_mape, 1),
                    f(b.spearman),
                ]
            })
            .collect();
        s.push_str(&table(
            "Backtest of the latest run, averaged over its cutoffs (mart.model_evaluation)",
            &[
                "Model",
                "Horizon",
                "Window",
                "Cutoffs",
                "Users scored",
                "Campaign error (MAPE)",
                "Bias (pred / actual)",
                "Normalized Gini",
                "Decile error (MAPE)",
                "Spearman",
            ],
            &rows,
            &[3, 4, 5, 6, 7, 8, 9],
        ));
        s.push_str(
            "<p class=\"note\">Each cutoff trains on what was known then and predicts the week \
             of installs whose window had just closed. Campaign error is how far a campaign's \
             predicted total lands from its actual one (lower is better); bias 1 is unbiased; \
             Gini 1 ranks users perfectly. The chosen model predicts the marts.</p>",
        );
    }
    match &data.calibration {
        Some(cal) => {
            if let Some(svg) = charts::calibration(cal, &data.currency)? {
                s.push_str(&figure(
                    "calibration",
                    &svg,
                    &format!(
                        "Calibration of the D{} predictions ({} model, {} users): mean \
                         predicted and mean actual revenue per user in each tenth of the users, \
                         lowest prediction first. {}",
                        cal.horizon,
                        cal.model,
                        count(cal.users as i64),
                        data.calibration_note
                    ),
                ));
            }
        }
        None => s.push_str(&empty(&data.calibration_note)),
    }
    Ok(s)
}

fn what_to_do_unmapped(r: &super::data::UnmappedRow) -> String {
    let span = match (r.first_seen, r.last_seen) {
        (Some(a), Some(b)) => day_span(a, b),
        _ => "the days it appears".into(),
    };
    let good = r.score.is_some_and(|s| s >= 0.5) && r.suggested_id.is_some();
    match (r.side.as_str(), good) {
        ("channel", true) => format!(
            "Spend without installs. If it is the same campaign as the suggestion, add a row to \
             the Sheets tab campaign_overrides (channel {}, channel_campaign_id {}, \
             attribution_campaign_id {}) and rerun `ltv process` over {span}.",
            r.channel,
            r.campaign_id,
            r.suggested_id.as_deref().unwrap_or(DASH)
        ),
        ("channel", false) => format!(
            "Spend without installs and no close name: check the campaign's tracking link. A \
             campaign without app installs (brand, web) can stay listed. Seen {span}."
        ),
        (_, true) => format!(
            "Installs without cost. If it is the same campaign as the suggestion, add a row to \
             campaign_overrides (channel {}, channel_campaign_id {}, attribution_campaign_id {}) \
             and rerun `ltv process` over {span}.",
            r.channel,
            r.suggested_id.as_deref().unwrap_or(DASH),
            r.campaign_id
        ),
        (_, false) => format!(
            "Installs without cost and no close name: a partner no API reports. Add its cost as \
             a manual cost in Sheets, or leave it listed. Seen {span}."
        ),
    }
}

fn data_quality(data: &ReportData) -> String {
    let mut s = String::new();
    if data.quality.is_empty() {
        s.push_str(&empty(&format!(
            "No data-quality counts for source partitions in this range ({}).",
            day_span(data.period.from, data.period.to)
        )));
    } else {
        let rows: Vec<Vec<String>> = data
            .quality
            .iter()
            .map(|q| {
                vec![
                    esc(&q.stage),
                    esc(&q.source),
                    esc(&q.rule),
                    count(q.days),
                    count(q.rows_in),
                    count(q.rows_out),
                    count(q.removed),
                    if q.rows_in > 0 {
                        pct(q.removed as f64 / q.rows_in as f64, 2)
                    } else {
                        DASH.into()
                    },
                    count(q.changed),
                ]
            })
            .collect();
        s.push_str(&table(
            &format!(
                "Rows in and out by rule, source partitions {} (mart.data_quality)",
                day_span(data.period.from, data.period.to)
            ),
            &[
                "Stage",
                "Source",
                "Rule",
                "Days",
                "Rows in",
                "Rows out",
                "Removed",
                "Removed share",
                "Changed or flagged",
            ],
            &rows,
            &[3, 4, 5, 6, 7, 8],
        ));
        let rows: Vec<Vec<String>> = data
            .quality_days
            .iter()
            .map(|q| {
                vec![
                    q.dt.to_string(),
                    esc(&q.stage),
                    esc(&q.source),
                    count(q.rows_in),
                    count(q.rows_out),
                    count(q.removed),
                    count(q.changed),
                ]
            })
            .collect();
        let _ = write!(
            s,
            "<details><summary>Per source and day ({} partitions)</summary>{}</details>",
            rows.len(),
            table(
                "Each source partition through its rules: rows before the first, after the last",
                &[
                    "Day",
                    "Stage",
                    "Source",
                    "Rows in",
                    "Rows out",
                    "Removed",
                    "Changed or flagged"
                ],
                &rows,
                &[3, 4, 5, 6],
            )
        );
    }
    s.push_str("<h3>Unmapped campaigns</h3>");
    if data.unmapped.is_empty() {
        s.push_str(&empty(
            "No unmapped campaigns: every campaign with spend has installs and the reverse.",
        ));
    } else {
        let cur = &data.currency;
        let rows: Vec<Vec<String>> = data
            .unmapped
            .iter()
            .map(|r| {
                vec![
                    esc(&r.side),
                    esc(&r.channel),
                    format!(
                        "{}<span class=\"id\">{}</span>",
                        esc(r.campaign_name.as_deref().unwrap_or("")),
                        esc(&r.campaign_id)
                    ),
                    money(r.spend, cur),
                    count(r.installs),
                    match (&r.suggested_name, &r.suggested_id) {
                        (Some(n), Some(i)) => {
                            format!("{}<span class=\"id\">{}</span>", esc(n), esc(i))
                        }
                        (None, Some(i)) => esc(i),
                        _ => DASH.into(),
                    },
                    pct_or_dash(r.score, 0),
                    esc(&what_to_do_unmapped(r)),
                ]
            })
            .collect();
        s.push_str(&table(
            &format!(
                "Campaigns seen on one side only, as of {} (clean.unmapped_campaigns)",
                data.unmapped_as_of
                    .map_or(DASH.to_string(), |d| d.to_string())
            ),
            &[
                "Side",
                "Channel",
                "Campaign",
                "Spend",
                "Installs",
                "Suggested mapping",
                "Name match",
                "What to do",
            ],
            &rows,
            &[3, 4, 6],
        ));
    }
    s.push_str("<h3>New events</h3>");
    if data.new_events.is_empty() {
        s.push_str(&empty("No new event names in the last run's range."));
    } else {
        let rows: Vec<Vec<String>> = data
            .new_events
            .iter()
            .map(|e| {
                let todo = match (&e.suggested, e.distance) {
                    (Some(sug), Some(d)) if d <= 2 => format!(
                        "Probably {sug} renamed or misspelt in a new app release: fix the \
                         tracking plan, or treat both names alike in the analysis config."
                    ),
                    _ => "No similar name seen before (on a first run every event is new): add \
                          it to the tracking plan if it is meant."
                        .to_string(),
                };
                vec![
                    esc(&e.event),
                    e.first_seen.map_or(DASH.into(), |d| d.to_string()),
                    count(e.events),
                    esc(e.suggested.as_deref().unwrap_or(DASH)),
                    e.distance.map_or(DASH.into(), |d| d.to_string()),
                    esc(&todo),
                ]
            })
            .collect();
        s.push_str(&table(
            &format!(
                "Event names first seen in the last run, as of {} (clean.new_events)",
                data.new_events_as_of
                    .map_or(DASH.to_string(), |d| d.to_string())
            ),
            &[
                "Event",
                "First seen",
                "Events",
                "Closest known name",
                "Edit distance",
                "What to do",
            ],
            &rows,
            &[1, 2, 4],
        ));
    }
    s
}

/// The whole page.
pub fn render(data: &ReportData, generated: &str, lake: &str) -> Result<String, ReportError> {
    let mut body = String::new();
    let bodies = [
        overview(data),
        campaigns(data),
        ltv_curves(data)?,
        spend_vs_value(data)?,
        critical_paths(data)?,
        model_quality(data)?,
        data_quality(data),
    ];
    for ((id, title), html) in SECTIONS.iter().zip(bodies.iter()) {
        section(&mut body, id, title, html);
    }
    let mut nav = String::new();
    for (id, title) in SECTIONS {
        let _ = write!(nav, "<li><a href=\"#{id}\">{}</a></li>", esc(title));
    }
    let title = format!(
        "ltv report: installs {}",
        day_span(data.period.from, data.period.to)
    );
    Ok(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{CSS}</style></head><body>\
         <a class=\"skip\" href=\"#main\">Skip to the report</a>\
         <header><h1>What each campaign's users will be worth</h1>\
         <p class=\"meta\">Install dates {} · money in {} · generated {} from the marts of {}</p>\
         <nav aria-label=\"Sections\"><ul>{nav}</ul></nav></header>\
         <main id=\"main\">{body}</main>\
         <script type=\"application/json\" id=\"report-data\">{}</script>\
         <script>{JS}</script></body></html>\n",
        day_span(data.period.from, data.period.to),
        esc(&data.currency),
        esc(generated),
        esc(lake),
        json_in_script(&facts_json(data)),
        title = esc(&title),
    ))
}
