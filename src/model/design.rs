//! The design matrix: per-user features as the numbers a model reads.
//!
//! Numeric features are standardised with the training set's mean and spread (the logistic
//! regression's penalty treats every coefficient alike only then; trees do not care);
//! missing values become the training mean. Categorical features (platform, country,
//! channel, campaign) are one-hot encoded over the levels seen in training, the rarest
//! folded into one "other" column, so that a campaign first seen at prediction time reads
//! as "other" rather than failing. The encoding is part of every model artifact.

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::ModelError;

/// How one numeric column is scaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericColumn {
    pub name: String,
    pub mean: f64,
    pub std: f64,
}

/// The levels of one categorical column that get their own indicator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalColumn {
    pub name: String,
    pub levels: Vec<String>,
}

/// A fitted encoding from a feature frame to a row-major matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Design {
    pub numeric: Vec<NumericColumn>,
    pub categorical: Vec<CategoricalColumn>,
}

/// Levels with fewer training rows than this share the "other" indicator.
pub const MIN_LEVEL_ROWS: usize = 30;

impl Design {
    /// Learns the scaling and the levels from the training frame.
    pub fn fit(
        train: &DataFrame,
        numeric: &[&str],
        categorical: &[&str],
    ) -> Result<Design, ModelError> {
        let numeric = numeric
            .iter()
            .map(|name| {
                let values = floats(train, name)?;
                let present: Vec<f64> = values.iter().flatten().copied().collect();
                let n = present.len().max(1) as f64;
                let mean = present.iter().sum::<f64>() / n;
                let var = present.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
                // A constant column keeps a unit spread: it then encodes as zero everywhere.
                let std = if var > 1e-12 { var.sqrt() } else { 1.0 };
                Ok(NumericColumn {
                    name: name.to_string(),
                    mean,
                    std,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        let categorical = categorical
            .iter()
            .map(|name| {
                let counts = train
                    .column(name)
                    .and_then(|c| {
                        c.as_materialized_series()
                            .value_counts(true, true, "n".into(), false)
                    })
                    .map_err(|e| ModelError::column(name, e))?;
                let levels = strings(&counts, name)?;
                let n = counts
                    .column("n")
                    .and_then(|c| c.cast(&DataType::UInt64))
                    .map_err(|e| ModelError::column(name, e))?;
                let n = n.u64().map_err(|e| ModelError::column(name, e))?;
                let mut kept: Vec<String> = levels
                    .into_iter()
                    .zip(n.iter())
                    .filter_map(|(level, count)| {
                        (count.unwrap_or(0) as usize >= MIN_LEVEL_ROWS).then_some(level?)
                    })
                    .collect();
                kept.sort();
                Ok(CategoricalColumn {
                    name: name.to_string(),
                    levels: kept,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        Ok(Design {
            numeric,
            categorical,
        })
    }

    /// Column names of the matrix, in order.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.numeric.iter().map(|c| c.name.clone()).collect();
        for c in &self.categorical {
            names.extend(c.levels.iter().map(|l| format!("{}={l}", c.name)));
            names.push(format!("{}=other", c.name));
        }
        names
    }

    pub fn width(&self) -> usize {
        self.numeric.len()
            + self
                .categorical
                .iter()
                .map(|c| c.levels.len() + 1)
                .sum::<usize>()
    }

    /// The frame's rows as encoded feature vectors.
    pub fn rows(&self, df: &DataFrame) -> Result<Vec<Vec<f64>>, ModelError> {
        let n = df.height();
        let mut rows = vec![Vec::with_capacity(self.width()); n];
        for c in &self.numeric {
            let values = floats(df, &c.name)?;
            for (row, v) in rows.iter_mut().zip(values) {
                row.push((v.unwrap_or(c.mean) - c.mean) / c.std);
            }
        }
        for c in &self.categorical {
            let values = strings(df, &c.name)?;
            for (row, v) in rows.iter_mut().zip(values) {
                let hit = v.and_then(|v| c.levels.binary_search(&v).ok());
                row.extend((0..c.levels.len()).map(|i| f64::from(u8::from(hit == Some(i)))));
                row.push(f64::from(u8::from(hit.is_none())));
            }
        }
        Ok(rows)
    }
}

/// A column as f64 (integers, booleans and floats alike); nulls and NaN as `None`.
pub fn floats(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>, ModelError> {
    let c = df
        .column(name)
        .and_then(|c| c.cast(&DataType::Float64))
        .map_err(|e| ModelError::column(name, e))?;
    let ca = c.f64().map_err(|e| ModelError::column(name, e))?;
    Ok(ca.iter().map(|v| v.filter(|x| x.is_finite())).collect())
}

/// A column as strings; nulls as `None`.
pub fn strings(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>, ModelError> {
    let c = df
        .column(name)
        .and_then(|c| c.cast(&DataType::String))
        .map_err(|e| ModelError::column(name, e))?;
    let ca = c.str().map_err(|e| ModelError::column(name, e))?;
    Ok(ca.iter().map(|v| v.map(str::to_string)).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn frame(n: usize) -> DataFrame {
        let revenue: Vec<Option<f64>> = (0..n)
            .map(|i| if i == 0 { None } else { Some(i as f64) })
            .collect();
        let channel: Vec<&str> = (0..n)
            .map(|i| if i % 2 == 0 { "meta" } else { "google" })
            .collect();
        df!("revenue" => revenue, "channel" => channel).unwrap()
    }

    #[test]
    fn numbers_are_standardised_and_levels_one_hot_with_an_other_column() {
        let train = frame(100);
        let d = Design::fit(&train, &["revenue"], &["channel"]).unwrap();
        assert_eq!(
            d.names(),
            ["revenue", "channel=google", "channel=meta", "channel=other"]
        );
        let mean = (1..100).sum::<usize>() as f64 / 99.0;
        assert!((d.numeric[0].mean - mean).abs() < 1e-9);

        let test = df!(
            "revenue" => [Some(mean), None, Some(mean + d.numeric[0].std)],
            "channel" => [Some("meta"), Some("tiktok"), None::<&str>],
        )
        .unwrap();
        let rows = d.rows(&test).unwrap();
        assert_eq!(rows[0], [0.0, 0.0, 1.0, 0.0]);
        // Missing numbers read as the mean; an unseen level and a null read as "other".
        assert_eq!(rows[1], [0.0, 0.0, 0.0, 1.0]);
        assert!((rows[2][0] - 1.0).abs() < 1e-9);
        assert_eq!(&rows[2][1..], [0.0, 0.0, 1.0]);
    }

    #[test]
    fn rare_levels_fold_into_other() {
        let mut channel = vec!["meta"; 40];
        channel.extend(["naver"; 5]);
        let train = df!("channel" => channel).unwrap();
        let d = Design::fit(&train, &[], &["channel"]).unwrap();
        assert_eq!(d.categorical[0].levels, ["meta"]);
    }

    #[test]
    fn a_missing_column_names_itself() {
        let err = Design::fit(&frame(3), &["sessions"], &[]).unwrap_err();
        assert!(err.to_string().contains("sessions"), "{err}");
    }
}
