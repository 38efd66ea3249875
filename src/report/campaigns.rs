//! The campaign table: campaign-day facts added up per campaign, with payback from the
//! cohort curves, and the same facts as JSON for the page's filters.
//!
//! The page's script (`assets/report.js`, `aggregate`) repeats [`aggregate`] over the
//! facts a filter keeps, in the same order and with the same floating-point steps, so a
//! table re-rendered in the browser reads exactly like the one written here.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::data::{CohortPoint, DailyFact, HORIZONS, Mix, ReportData};
use super::format::{DASH, count, esc, money, money_or_dash, pct_or_dash};

/// z of a two-sided 90% normal interval.
pub const Z90: f64 = 1.644_853_626_951_472_2;

/// Share of a campaign's users a platform or country needs to be listed for it (and match
/// its filter): below that it is noise of the attribution, not where the campaign runs.
pub const MIX_MIN_SHARE: f64 = 0.05;

/// One campaign over the facts given.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignRow {
    pub channel: String,
    pub campaign_id: String,
    pub name: Option<String>,
    pub spend: i64,
    pub installs: i64,
    pub fraud: i64,
    /// Spend / installs; none without installs or without spend.
    pub cpi: Option<f64>,
    pub fraud_share: Option<f64>,
    pub retention: [Option<f64>; 2],
    /// pLTV per install at each of [`HORIZONS`], micros, over the days predicted whole.
    pub pltv: [Option<f64>; 3],
    /// 90% interval of the headline horizon's mean prediction per user.
    pub interval: Option<(f64, f64)>,
    /// Predicted ROAS at each horizon: pLTV total / spend of the same days.
    pub roas: [Option<f64>; 3],
    /// "D14", "D90 (predicted)" or a dash.
    pub payback: String,
    /// The day the payback was reached, for sorting (a dash sorts last).
    pub payback_day: Option<u32>,
}

/// Adds up `facts` (already filtered to one campaign, in day order) and its cohort points.
pub fn aggregate(
    facts: &[&DailyFact],
    cohorts: &[&CohortPoint],
    headline: Option<usize>,
) -> Option<CampaignRow> {
    let first = facts.first()?;
    let mut row = CampaignRow {
        channel: first.channel.clone(),
        campaign_id: first.campaign_id.clone(),
        name: facts.iter().rev().find_map(|f| f.campaign_name.clone()),
        spend: 0,
        installs: 0,
        fraud: 0,
        cpi: None,
        fraud_share: None,
        retention: [None, None],
        pltv: [None; 3],
        interval: None,
        roas: [None; 3],
        payback: DASH.into(),
        payback_day: None,
    };
    let mut ret_num = [0.0f64; 2];
    let mut ret_den = [0i64; 2];
    let mut p_sum = [0i64; 3];
    let mut p_installs = [0i64; 3];
    let mut p_spend = [0i64; 3];
    let mut p_days = [0usize; 3];
    let (mut n, mut s, mut q) = (0i64, 0.0f64, 0.0f64);
    for f in facts {
        row.spend += f.spend;
        row.installs += f.installs;
        row.fraud += f.fraud;
        for k in 0..2 {
            if let Some(r) = f.retention[k] {
                ret_num[k] += r * f.installs as f64;
                ret_den[k] += f.installs;
            }
        }
        for h in 0..3 {
            if let Some(p) = f.pltv[h] {
                p_sum[h] += p;
                p_installs[h] += f.installs;
                p_spend[h] += f.spend;
                p_days[h] += 1;
                if Some(h) == headline {
                    n += f.users[h].n;
                    s += f.users[h].sum;
                    q += f.users[h].sumsq;
                }
            }
        }
    }
    // Organic installs cost nothing: a CPI of zero would only crowd the scatter's corner.
    if row.installs > 0 && row.spend > 0 {
        row.cpi = Some(row.spend as f64 / row.installs as f64);
    }
    if row.installs + row.fraud > 0 {
        row.fraud_share = Some(row.fraud as f64 / (row.installs + row.fraud) as f64);
    }
    for k in 0..2 {
        if ret_den[k] > 0 {
            row.retention[k] = Some(ret_num[k] / ret_den[k] as f64);
        }
    }
    for h in 0..3 {
        if p_days[h] > 0 && p_installs[h] > 0 {
            row.pltv[h] = Some(p_sum[h] as f64 / p_installs[h] as f64);
        }
        if p_days[h] > 0 && p_spend[h] > 0 {
            row.roas[h] = Some(p_sum[h] as f64 / p_spend[h] as f64);
        }
    }
    if n >= 2 {
        let mean = s / n as f64;
        let var = ((q - s * s / n as f64) / (n - 1) as f64).max(0.0);
        let se = (var / n as f64).sqrt();
        row.interval = Some(((mean - Z90 * se).max(0.0), mean + Z90 * se));
    }
    if let Some(cpi) = row.cpi {
        // Actual: the first checkpoint whose cohorts, observed that long, have earned the CPI.
        let mut by_day: BTreeMap<u32, (i64, i64)> = BTreeMap::new();
        for c in cohorts {
            let e = by_day.entry(c.day_n).or_default();
            e.0 += c.revenue;
            e.1 += c.users;
        }
        let actual = by_day
            .iter()
            .find(|(_, (rev, users))| *users > 0 && *rev as f64 / *users as f64 >= cpi)
            .map(|(d, _)| *d);
        if let Some(d) = actual {
            row.payback = format!("D{d}");
            row.payback_day = Some(d);
        } else if let Some(h) = (0..3).find(|&h| row.pltv[h].is_some_and(|p| p >= cpi)) {
            row.payback = format!("D{} (predicted)", HORIZONS[h]);
            row.payback_day = Some(HORIZONS[h]);
        }
    }
    Some(row)
}

/// Every campaign of the period, biggest spend first.
pub fn campaign_rows(data: &ReportData) -> Vec<CampaignRow> {
    let headline = data.headline();
    let mut facts: BTreeMap<(&str, &str), Vec<&DailyFact>> = BTreeMap::new();
    for f in &data.daily {
        facts
            .entry((f.channel.as_str(), f.campaign_id.as_str()))
            .or_default()
            .push(f);
    }
    let mut cohorts: BTreeMap<(&str, &str), Vec<&CohortPoint>> = BTreeMap::new();
    for c in &data.cohorts {
        cohorts
            .entry((c.channel.as_str(), c.campaign_id.as_str()))
            .or_default()
            .push(c);
    }
    let mut rows: Vec<CampaignRow> = facts
        .iter()
        .filter_map(|(key, f)| {
            aggregate(f, cohorts.get(key).map_or(&[][..], Vec::as_slice), headline)
        })
        .collect();
    rows.sort_by(|a, b| b.spend.cmp(&a.spend).then(a.channel.cmp(&b.channel)));
    rows
}

/// The values of a mix with at least [`MIX_MIN_SHARE`] of the users, most users first.
pub fn mix_values(values: &BTreeMap<String, i64>) -> Vec<String> {
    let total: i64 = values.values().sum();
    let mut v: Vec<(&String, &i64)> = values
        .iter()
        .filter(|(_, n)| total > 0 && **n as f64 / total as f64 >= MIX_MIN_SHARE)
        .collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.into_iter().map(|(k, _)| k.clone()).collect()
}

/// "ios, android"; at most three values, then "+N".
pub fn mix_text(values: &[String]) -> String {
    if values.is_empty() {
        return DASH.into();
    }
    let mut s = values
        .iter()
        .take(3)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if values.len() > 3 {
        s.push_str(&format!(" +{}", values.len() - 3));
    }
    s
}

/// One cell: its sort key, its text, and a smaller second line (the campaign id under the
/// name, the interval under the pLTV).
pub struct Cell {
    pub key: String,
    pub text: String,
    pub sub: Option<String>,
}

fn cell(key: String, text: String) -> Cell {
    Cell {
        key,
        text,
        sub: None,
    }
}

/// The cells of a campaign's row, in column order; the script builds the same cells.
pub fn cells(
    row: &CampaignRow,
    mix: Option<&Mix>,
    currency: &str,
    headline: Option<usize>,
) -> Vec<Cell> {
    let num = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v}"));
    let platforms = mix.map(|m| mix_values(&m.platforms)).unwrap_or_default();
    let countries = mix.map(|m| mix_values(&m.countries)).unwrap_or_default();
    let pltv = headline.and_then(|h| row.pltv[h]);
    let interval = match (pltv, row.interval) {
        (Some(_), Some((lo, hi))) => Some(format!(
            "{}–{}",
            money(lo.round() as i64, currency),
            money(hi.round() as i64, currency)
        )),
        _ => None,
    };
    let roas = headline.and_then(|h| row.roas[h]);
    let name = row.name.clone().unwrap_or_else(|| row.campaign_id.clone());
    vec![
        cell(row.channel.clone(), row.channel.clone()),
        Cell {
            key: name.clone(),
            text: name,
            sub: Some(row.campaign_id.clone()),
        },
        cell(mix_text(&platforms), mix_text(&platforms)),
        cell(mix_text(&countries), mix_text(&countries)),
        cell(format!("{}", row.spend), money(row.spend, currency)),
        cell(format!("{}", row.installs), count(row.installs)),
        cell(
            num(row.cpi),
            money_or_dash(row.cpi.map(|c| c.round() as i64), currency),
        ),
        cell(num(row.fraud_share), pct_or_dash(row.fraud_share, 1)),
        cell(num(row.retention[0]), pct_or_dash(row.retention[0], 1)),
        cell(num(row.retention[1]), pct_or_dash(row.retention[1], 1)),
        Cell {
            key: num(pltv),
            text: money_or_dash(pltv.map(|p| p.round() as i64), currency),
            sub: interval,
        },
        cell(num(roas), pct_or_dash(roas, 0)),
        cell(
            row.payback_day.map_or_else(String::new, |d| d.to_string()),
            row.payback.clone(),
        ),
    ]
}

/// `<tr>` of one campaign.
pub fn row_html(
    row: &CampaignRow,
    mix: Option<&Mix>,
    currency: &str,
    headline: Option<usize>,
) -> String {
    let mut s = String::from("<tr>");
    for (k, c) in cells(row, mix, currency, headline).into_iter().enumerate() {
        let class = if k >= 4 { " class=\"num\"" } else { "" };
        s.push_str(&format!(
            "<td{class} data-sort=\"{}\"><span class=\"name\">{}</span>",
            esc(&c.key),
            esc(&c.text)
        ));
        if let Some(sub) = &c.sub {
            s.push_str(&format!("<span class=\"id\">{}</span>", esc(sub)));
        }
        s.push_str("</td>");
    }
    s.push_str("</tr>");
    s
}

/// Everything the script needs to re-aggregate the table under any filter.
pub fn facts_json(data: &ReportData) -> Value {
    let mut index: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut campaigns = Vec::new();
    for f in &data.daily {
        let key = (f.channel.as_str(), f.campaign_id.as_str());
        if index.contains_key(&key) {
            continue;
        }
        index.insert(key, campaigns.len());
        let mix = data.mix.get(&(f.channel.clone(), f.campaign_id.clone()));
        let platforms = mix.map(|m| mix_values(&m.platforms)).unwrap_or_default();
        let countries = mix.map(|m| mix_values(&m.countries)).unwrap_or_default();
        let name = data
            .daily
            .iter()
            .rev()
            .filter(|d| d.channel == f.channel && d.campaign_id == f.campaign_id)
            .find_map(|d| d.campaign_name.clone());
        campaigns.push(json!({
            "channel": f.channel,
            "campaign_id": f.campaign_id,
            "name": name,
            "platforms": platforms,
            "countries": countries,
            "platform_text": mix_text(&platforms),
            "country_text": mix_text(&countries),
        }));
    }
    let day = |d: chrono::NaiveDate| d.to_string();
    let headline = data.headline();
    let facts: Vec<Value> = data
        .daily
        .iter()
        .map(|f| {
            let u = headline.map(|h| f.users[h]).unwrap_or_default();
            json!([
                index[&(f.channel.as_str(), f.campaign_id.as_str())],
                day(f.dt),
                f.spend,
                f.installs,
                f.fraud,
                f.retention[0],
                f.retention[1],
                f.pltv[0],
                f.pltv[1],
                f.pltv[2],
                u.n,
                u.sum,
                u.sumsq,
            ])
        })
        .collect();
    let cohorts: Vec<Value> = data
        .cohorts
        .iter()
        .filter_map(|c| {
            let i = index.get(&(c.channel.as_str(), c.campaign_id.as_str()))?;
            Some(json!([i, day(c.dt), c.day_n, c.users, c.revenue]))
        })
        .collect();
    json!({
        "currency": data.currency,
        "headline": headline,
        "horizons": HORIZONS,
        "z90": Z90,
        "campaigns": campaigns,
        "facts": facts,
        "cohorts": cohorts,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::report::data::UserStat;

    fn fact(day: u32, spend: i64, installs: i64, pltv90: Option<i64>) -> DailyFact {
        DailyFact {
            dt: NaiveDate::from_ymd_opt(2026, 1, day).unwrap(),
            channel: "meta".into(),
            campaign_id: "c1".into(),
            campaign_name: Some("Spring".into()),
            spend,
            installs,
            fraud: 1,
            revenue: 0,
            retention: [Some(0.5), None],
            pltv: [None, pltv90, None],
            extrapolated: false,
            users: [
                UserStat::default(),
                UserStat {
                    n: installs,
                    sum: pltv90.unwrap_or(0) as f64,
                    sumsq: (pltv90.unwrap_or(0) as f64).powi(2) / installs as f64 * 1.5,
                },
                UserStat::default(),
            ],
        }
    }

    fn point(day_n: u32, users: i64, revenue: i64) -> CohortPoint {
        CohortPoint {
            dt: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            channel: "meta".into(),
            campaign_id: "c1".into(),
            day_n,
            users,
            revenue,
        }
    }

    #[test]
    fn a_campaign_adds_up_over_its_days() {
        let a = fact(1, 10_000_000, 10, Some(20_000_000));
        let b = fact(2, 30_000_000, 10, None);
        let row = aggregate(&[&a, &b], &[], Some(1)).unwrap();
        assert_eq!((row.spend, row.installs, row.fraud), (40_000_000, 20, 2));
        assert_eq!(row.cpi, Some(2_000_000.0));
        assert_eq!(row.fraud_share, Some(2.0 / 22.0));
        assert_eq!(row.retention, [Some(0.5), None]);
        // pLTV and ROAS over the predicted day only: 20 / 10 installs, 20 / 10 spend.
        assert_eq!(row.pltv[1], Some(2_000_000.0));
        assert_eq!(row.roas[1], Some(2.0));
        let (lo, hi) = row.interval.unwrap();
        assert!(lo < 2_000_000.0 && hi > 2_000_000.0, "{lo} {hi}");
        // No cohort reached CPI, but the D90 prediction does (2.0 >= 2.0).
        assert_eq!(row.payback, "D90 (predicted)");
    }

    #[test]
    fn payback_is_the_first_checkpoint_that_earns_the_cpi() {
        let a = fact(1, 10_000_000, 10, None);
        let p = [
            point(1, 10, 1_000_000),
            point(7, 10, 9_000_000),
            point(14, 10, 12_000_000),
        ];
        let refs: Vec<&CohortPoint> = p.iter().collect();
        let row = aggregate(&[&a], &refs, None).unwrap();
        assert_eq!(row.payback, "D14");
        assert_eq!(row.payback_day, Some(14));
        let cheap = fact(1, 0, 10, None);
        assert_eq!(aggregate(&[&cheap], &refs, None).unwrap().payback, DASH);
    }

    #[test]
    fn mix_lists_the_values_that_matter() {
        let m: BTreeMap<String, i64> = [("KR", 90), ("JP", 8), ("US", 2)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(mix_values(&m), vec!["KR".to_string(), "JP".to_string()]);
        assert_eq!(mix_text(&mix_values(&m)), "KR, JP");
        assert_eq!(mix_text(&[]), DASH);
    }
}
