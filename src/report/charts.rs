//! The page's charts, drawn by plotters into SVG strings that the page inlines.
//!
//! Each function returns `Ok(None)` when it has nothing to draw, so the page says so in
//! words instead of showing empty axes. Money is drawn in currency units (micros / 10^6).

use std::collections::BTreeMap;

use plotters::coord::CoordTranslate;
use plotters::coord::ranged1d::SegmentValue;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::ReportError;
use super::campaigns::{CampaignRow, Z90};
use super::data::{Calibration, HORIZONS, PathRow, ReportData, UserStat};
use super::format::{esc, money, pct};

/// Okabe–Ito: distinguishable with the common colour-vision deficiencies.
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(120, 120, 120),
];

const INK: RGBColor = RGBColor(40, 40, 40);
const SIZE: (u32, u32) = (980, 420);

/// The colour of each channel, stable across the page's charts.
pub fn channel_colors(data: &ReportData) -> BTreeMap<String, RGBColor> {
    let mut channels: Vec<&str> = data.daily.iter().map(|d| d.channel.as_str()).collect();
    channels.sort_unstable();
    channels.dedup();
    channels
        .into_iter()
        .enumerate()
        .map(|(k, c)| (c.to_string(), PALETTE[k % PALETTE.len()]))
        .collect()
}

fn chart_error(chart: &'static str) -> impl Fn(String) -> ReportError {
    move |message| ReportError::Chart { chart, message }
}

/// Names the SVG for assistive technology; the figure's caption says the rest.
fn label_svg(svg: String, label: &str) -> String {
    svg.replacen(
        "<svg ",
        &format!("<svg role=\"img\" aria-label=\"{}\" ", esc(label)),
        1,
    )
}

fn units(micros: f64) -> f64 {
    micros / 1_000_000.0
}

/// Axis labels of money in currency units.
fn money_label(currency: &str) -> impl Fn(&f64) -> String + '_ {
    move |v: &f64| money((v * 1_000_000.0).round() as i64, currency)
}

/// Cumulative LTV per install by day since install, one line per channel: actual from
/// `mart.cohort_ltv` (cohorts observed that long), then the predicted horizons dashed, with
/// the 90% interval of the mean prediction as a band.
pub fn ltv_curves(data: &ReportData) -> Result<Option<String>, ReportError> {
    let colors = channel_colors(data);
    let mut actual: BTreeMap<&str, BTreeMap<u32, (i64, i64)>> = BTreeMap::new();
    for c in &data.cohorts {
        let e = actual
            .entry(c.channel.as_str())
            .or_default()
            .entry(c.day_n)
            .or_default();
        e.0 += c.revenue;
        e.1 += c.users;
    }
    let mut predicted: BTreeMap<&str, [UserStat; 3]> = BTreeMap::new();
    for d in &data.daily {
        let e = predicted.entry(d.channel.as_str()).or_default();
        for (total, day) in e.iter_mut().zip(&d.users) {
            if day.n > 0 {
                total.n += day.n;
                total.sum += day.sum;
                total.sumsq += day.sumsq;
            }
        }
    }
    struct Curve {
        channel: String,
        actual: Vec<(f64, f64)>,
        /// (day, mean, low, high) beyond the last actual day.
        predicted: Vec<(f64, f64, f64, f64)>,
    }
    let mut curves = Vec::new();
    for channel in colors.keys() {
        let points: Vec<(f64, f64)> = actual
            .get(channel.as_str())
            .map(|m| {
                m.iter()
                    .filter(|(_, (_, users))| *users > 0)
                    .map(|(d, (rev, users))| (f64::from(*d), units(*rev as f64 / *users as f64)))
                    .collect()
            })
            .unwrap_or_default();
        let last_day = points.last().map_or(0.0, |p| p.0);
        let mut future = Vec::new();
        if let Some(stats) = predicted.get(channel.as_str()) {
            for (h, s) in stats.iter().enumerate() {
                let day = f64::from(HORIZONS[h]);
                if s.n < 2 || day <= last_day {
                    continue;
                }
                let n = s.n as f64;
                let mean = s.sum / n;
                let var = ((s.sumsq - s.sum * s.sum / n) / (n - 1.0)).max(0.0);
                let se = (var / n).sqrt();
                future.push((
                    day,
                    units(mean),
                    units((mean - Z90 * se).max(0.0)),
                    units(mean + Z90 * se),
                ));
            }
        }
        if !points.is_empty() || !future.is_empty() {
            curves.push(Curve {
                channel: channel.clone(),
                actual: points,
                predicted: future,
            });
        }
    }
    if curves.is_empty() {
        return Ok(None);
    }
    let x_max = curves
        .iter()
        .flat_map(|c| {
            c.actual
                .iter()
                .map(|p| p.0)
                .chain(c.predicted.iter().map(|p| p.0))
        })
        .fold(1.0f64, f64::max);
    let y_max = curves
        .iter()
        .flat_map(|c| {
            c.actual
                .iter()
                .map(|p| p.1)
                .chain(c.predicted.iter().map(|p| p.3))
        })
        .fold(0.0f64, f64::max)
        .max(0.01)
        * 1.1;
    let err = chart_error("LTV curves");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..x_max * 1.02, 0.0..y_max)
            .map_err(|e| err(e.to_string()))?;
        draw_axes(
            &mut chart,
            ("days since install", &|v: &f64| format!("{v:.0}")),
            (
                "cumulative revenue per install",
                &money_label(&data.currency),
            ),
        )
        .map_err(&err)?;
        for c in &curves {
            let color = colors.get(&c.channel).copied().unwrap_or(INK);
            let start = c.actual.last().copied().unwrap_or((0.0, 0.0));
            if !c.predicted.is_empty() {
                let mut band: Vec<(f64, f64)> = vec![start];
                band.extend(c.predicted.iter().map(|p| (p.0, p.3)));
                band.extend(c.predicted.iter().rev().map(|p| (p.0, p.2)));
                chart
                    .draw_series(std::iter::once(Polygon::new(band, color.mix(0.12))))
                    .map_err(|e| err(e.to_string()))?;
                let mut line = vec![start];
                line.extend(c.predicted.iter().map(|p| (p.0, p.1)));
                chart
                    .draw_series(DashedLineSeries::new(line, 7, 5, color.stroke_width(2)))
                    .map_err(|e| err(e.to_string()))?;
            }
            let series = chart
                .draw_series(LineSeries::new(c.actual.clone(), color.stroke_width(3)))
                .map_err(|e| err(e.to_string()))?;
            series.label(c.channel.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
            });
            chart
                .draw_series(c.actual.iter().map(|p| Circle::new(*p, 3, color.filled())))
                .map_err(|e| err(e.to_string()))?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft, 13).map_err(&err)?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(Some(label_svg(
        svg,
        "Cumulative revenue per install by day since install, per channel",
    )))
}

/// CPI against pLTV per campaign, bubble area by spend, with the break-even line y = x:
/// campaigns above it are predicted to earn back what their installs cost.
pub fn spend_vs_value(
    data: &ReportData,
    rows: &[CampaignRow],
    headline: Option<usize>,
) -> Result<Option<String>, ReportError> {
    let Some(h) = headline else { return Ok(None) };
    let colors = channel_colors(data);
    let points: Vec<(f64, f64, f64, RGBColor)> = rows
        .iter()
        .filter(|r| r.spend > 0)
        .filter_map(|r| {
            Some((
                units(r.cpi?),
                units(r.pltv[h]?),
                r.spend as f64,
                colors.get(&r.channel).copied().unwrap_or(INK),
            ))
        })
        .collect();
    if points.is_empty() {
        return Ok(None);
    }
    let max_spend = points.iter().map(|p| p.2).fold(1.0f64, f64::max);
    let top = points
        .iter()
        .map(|p| p.0.max(p.1))
        .fold(0.0f64, f64::max)
        .max(0.01)
        * 1.15;
    let err = chart_error("spend vs value");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..top, 0.0..top)
            .map_err(|e| err(e.to_string()))?;
        let money = money_label(&data.currency);
        let value = format!("predicted D{} value per install", HORIZONS[h]);
        draw_axes(&mut chart, ("cost per install", &money), (&value, &money)).map_err(&err)?;
        draw_diagonal(&mut chart, top, "break-even: value = cost").map_err(&err)?;
        chart
            .draw_series(points.iter().map(|(x, y, spend, color)| {
                let radius = 4.0 + 18.0 * (spend / max_spend).sqrt();
                Circle::new((*x, *y), radius.round() as i32, color.mix(0.55).filled())
            }))
            .map_err(|e| err(e.to_string()))?;
        for (channel, color) in &colors {
            if points.iter().any(|p| p.3 == *color) {
                let color = *color;
                chart
                    .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
                    .map_err(|e| err(e.to_string()))?
                    .label(channel.clone())
                    .legend(move |(x, y)| Circle::new((x + 9, y), 5, color.filled()));
            }
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft, 13).map_err(&err)?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(Some(label_svg(
        svg,
        "Cost per install against predicted value per install, one bubble per campaign",
    )))
}

/// Conversion rate of the top path prefixes as bars, with the cohort's base rate dashed.
pub fn path_bars(rows: &[PathRow], base_rate: f64) -> Result<Option<String>, ReportError> {
    if rows.is_empty() {
        return Ok(None);
    }
    let n = rows.len() as i32;
    let x_max = rows
        .iter()
        .map(|r| r.conversion_rate)
        .fold(base_rate, f64::max)
        .max(0.001)
        * 1.35;
    let names: Vec<String> = rows
        .iter()
        .map(|r| {
            if r.path.chars().count() > 48 {
                let tail: String = r
                    .path
                    .chars()
                    .rev()
                    .take(46)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                format!("…{tail}")
            } else {
                r.path.clone()
            }
        })
        .collect();
    let err = chart_error("critical paths");
    let height = (60 + 34 * rows.len()) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0, height.max(160))).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(330)
            .build_cartesian_2d(0.0..x_max, (0..n).into_segmented())
            .map_err(|e| err(e.to_string()))?;
        let label = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                // Best path on top: row 0 is drawn in the highest segment.
                let k = (n - 1 - *i) as usize;
                names.get(k).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(rows.len())
            .y_label_formatter(&label)
            .x_label_formatter(&|v: &f64| pct(*v, 1))
            .x_desc("conversion to the target within the horizon")
            .label_style(("sans-serif", 12).into_font().color(&INK))
            .x_max_light_lines(0)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(rows.iter().enumerate().map(|(k, r)| {
                let i = n - 1 - k as i32;
                let mut bar = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(i)),
                        (r.conversion_rate, SegmentValue::Exact(i + 1)),
                    ],
                    PALETTE[0].mix(0.8).filled(),
                );
                bar.set_margin(5, 5, 0, 0);
                bar
            }))
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(rows.iter().enumerate().map(|(k, r)| {
                let i = n - 1 - k as i32;
                let lift = r.lift.map_or(String::new(), |l| format!(", lift {l:.2}×"));
                Text::new(
                    format!("{}{lift}", pct(r.conversion_rate, 1)),
                    (r.conversion_rate + x_max * 0.01, SegmentValue::CenterOf(i)),
                    ("sans-serif", 12).into_font().color(&INK),
                )
            }))
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(DashedLineSeries::new(
                vec![
                    (base_rate, SegmentValue::Exact(0)),
                    (base_rate, SegmentValue::Last),
                ],
                6,
                4,
                PALETTE[1].stroke_width(2),
            ))
            .map_err(|e| err(e.to_string()))?
            .label(format!("base rate {}", pct(base_rate, 2)))
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], PALETTE[1].stroke_width(2))
            });
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight, 12).map_err(&err)?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(Some(label_svg(
        svg,
        "Conversion rate of the top early-event paths, against the base rate",
    )))
}

/// Mean predicted against mean actual revenue per user by decile of the prediction, with
/// the line of perfect calibration.
pub fn calibration(cal: &Calibration, currency: &str) -> Result<Option<String>, ReportError> {
    if cal.deciles.is_empty() {
        return Ok(None);
    }
    let points: Vec<(f64, f64)> = cal
        .deciles
        .iter()
        .map(|(p, a, _)| (units(*p), units(*a)))
        .collect();
    let top = points
        .iter()
        .map(|p| p.0.max(p.1))
        .fold(0.0f64, f64::max)
        .max(0.01)
        * 1.1;
    let err = chart_error("calibration");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..top, 0.0..top)
            .map_err(|e| err(e.to_string()))?;
        let money = money_label(currency);
        let predicted = format!("mean predicted D{} revenue per user", cal.horizon);
        draw_axes(
            &mut chart,
            (&predicted, &money),
            ("mean actual revenue per user", &money),
        )
        .map_err(&err)?;
        draw_diagonal(&mut chart, top, "perfect calibration").map_err(&err)?;
        chart
            .draw_series(LineSeries::new(points.clone(), PALETTE[0].stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label("deciles of the prediction")
            .legend(|(x, y)| Circle::new((x + 9, y), 4, PALETTE[0].filled()));
        chart
            .draw_series(
                points
                    .iter()
                    .map(|p| Circle::new(*p, 5, PALETTE[0].filled())),
            )
            .map_err(|e| err(e.to_string()))?;
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft, 13).map_err(&err)?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(Some(label_svg(
        svg,
        "Predicted against actual revenue per user by decile of the prediction",
    )))
}

/// A chart with numbers on both axes.
type Plane<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// An axis's description and tick label format.
type Axis<'f> = (&'f str, &'f dyn Fn(&f64) -> String);

/// Axes with their descriptions and tick labels, in the page's one style (no grid lines).
fn draw_axes<'a, DB: DrawingBackend + 'a>(
    chart: &mut Plane<'a, DB>,
    (x_desc, x_label): Axis<'_>,
    (y_desc, y_label): Axis<'_>,
) -> Result<(), String> {
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(x_label)
        .y_label_formatter(y_label)
        .label_style(("sans-serif", 13).into_font().color(&INK))
        .max_light_lines(0)
        .draw()
        .map_err(|e| e.to_string())
}

/// The dashed y = x line of a square chart, up to `top`, with its legend entry: where a
/// point on it means value equals cost, or prediction equals outcome.
fn draw_diagonal<'a, DB: DrawingBackend + 'a>(
    chart: &mut Plane<'a, DB>,
    top: f64,
    label: &str,
) -> Result<(), String> {
    chart
        .draw_series(DashedLineSeries::new(
            vec![(0.0, 0.0), (top, top)],
            8,
            5,
            INK.stroke_width(1),
        ))
        .map_err(|e| e.to_string())?
        .label(label)
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], INK));
    Ok(())
}

/// The series legend of a chart, in the page's one style.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
    font_size: i32,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(200, 200, 200))
        .label_font(("sans-serif", font_size))
        .draw()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn calibration_draws_a_point_per_decile() {
        let cal = Calibration {
            horizon: 30,
            model: "hurdle".into(),
            users: 1000,
            deciles: (1..=10)
                .map(|d| (f64::from(d) * 1e6, f64::from(d) * 1.1e6, 100))
                .collect(),
        };
        let svg = calibration(&cal, "USD").unwrap().unwrap();
        assert!(svg.starts_with("<svg role=\"img\""), "{}", &svg[..80]);
        // Ten decile markers plus the legend's.
        assert!(svg.matches("<circle").count() >= 10, "{svg}");
        let empty = Calibration {
            deciles: vec![],
            ..cal
        };
        assert!(calibration(&empty, "USD").unwrap().is_none());
    }

    #[test]
    fn path_bars_draw_one_bar_per_path() {
        let row = |p: &str, r: f64| PathRow {
            kind: "prefix".into(),
            path: p.into(),
            support: 200,
            conversions: 10,
            conversion_rate: r,
            lift: Some(r / 0.02),
            median_hours: Some(30.0),
        };
        let rows = vec![row("a > b", 0.05), row("a", 0.03)];
        let svg = path_bars(&rows, 0.02).unwrap().unwrap();
        // The background, two bars, the legend box.
        assert!(svg.matches("<rect").count() >= 3, "{svg}");
        assert!(svg.contains("a &gt; b") || svg.contains("a > b"), "{svg}");
        assert!(path_bars(&[], 0.02).unwrap().is_none());
    }
}
