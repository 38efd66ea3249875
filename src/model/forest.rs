//! The hurdle's value trees as flat node arrays, for predicting.
//!
//! smartcore's `XGRegressor::predict` walks its trees one at a time over every row, and for
//! each tree copies the row out of the matrix into a fresh vector before walking the tree's
//! boxed nodes: for a night's 15,000 users that is a million row copies per horizon, where
//! the walk itself is three comparisons. This module reads the same trees into one array of
//! nodes and walks them on the rows as they are, with the very same arithmetic (the base
//! score plus the learning rate times each tree's value, tree by tree), so its predictions
//! are bit for bit smartcore's (tested).
//!
//! The trees are read through their serde form: smartcore keeps the fields private, and that
//! form is already what a saved model artifact holds (`_state/models/`), so it is part of
//! ltv's stored format either way. A model that does not read as trees is an error naming
//! what is missing.

use serde::Deserialize;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::xgboost::xgb_regressor::XGRegressor;

use super::ModelError;

/// A node's `left` when it is a leaf.
const LEAF: u32 = u32::MAX;

/// Boosted regression trees ready to predict.
#[derive(Debug, Clone)]
pub struct Forest {
    base_score: f64,
    learning_rate: f64,
    /// Index in `nodes` of each tree's root, in boosting order.
    roots: Vec<u32>,
    nodes: Vec<Node>,
    /// Features a row must hold: one past the largest a split reads.
    width: usize,
}

/// A split (`left` and `right` index `nodes`) or a leaf (`left == LEAF`, `value` its output).
#[derive(Debug, Clone, Copy)]
struct Node {
    feature: usize,
    threshold: f64,
    value: f64,
    left: u32,
    right: u32,
}

/// smartcore's `XGRegressor` as serde writes it; fields not named here are ignored.
#[derive(Deserialize)]
struct Boosted {
    regressors: Option<Vec<TreeNode>>,
    parameters: Option<Settings>,
}

#[derive(Deserialize)]
struct Settings {
    learning_rate: f64,
    base_score: f64,
}

/// One of smartcore's tree nodes: a leaf has no children.
#[derive(Deserialize)]
struct TreeNode {
    left: Option<Box<TreeNode>>,
    right: Option<Box<TreeNode>>,
    value: f64,
    threshold: f64,
    split_feature_idx: usize,
}

type Trees = XGRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>;

fn unreadable(error: impl std::fmt::Display) -> ModelError {
    ModelError::Fit {
        what: "value trees",
        error: format!("cannot read the fitted trees: {error}"),
    }
}

impl Forest {
    /// The fitted `trees`, flattened.
    pub fn of(trees: &Trees) -> Result<Forest, ModelError> {
        let form = serde_json::to_value(trees).map_err(unreadable)?;
        let boosted: Boosted = serde_json::from_value(form).map_err(unreadable)?;
        let (Some(trees), Some(settings)) = (boosted.regressors, boosted.parameters) else {
            return Err(unreadable("the model was never fitted"));
        };
        let mut forest = Forest {
            base_score: settings.base_score,
            learning_rate: settings.learning_rate,
            roots: Vec::with_capacity(trees.len()),
            nodes: Vec::new(),
            width: 0,
        };
        for tree in &trees {
            let root = forest.add(tree)?;
            forest.roots.push(root);
        }
        Ok(forest)
    }

    /// Adds `tree`'s nodes, children after their parent, and returns its root's index.
    fn add(&mut self, tree: &TreeNode) -> Result<u32, ModelError> {
        let at = u32::try_from(self.nodes.len()).map_err(unreadable)?;
        self.nodes.push(Node {
            feature: tree.split_feature_idx,
            threshold: tree.threshold,
            value: tree.value,
            left: LEAF,
            right: LEAF,
        });
        match (&tree.left, &tree.right) {
            (None, _) => {}
            (Some(left), Some(right)) => {
                self.width = self.width.max(tree.split_feature_idx + 1);
                let left = self.add(left)?;
                let right = self.add(right)?;
                let node = &mut self.nodes[at as usize];
                node.left = left;
                node.right = right;
            }
            (Some(_), None) => return Err(unreadable("a split has no right branch")),
        }
        Ok(at)
    }

    /// The trees' prediction for each row of `x`: what smartcore's `predict` gives for the
    /// same rows as a matrix.
    pub fn predict(&self, x: &[Vec<f64>]) -> Result<Vec<f64>, ModelError> {
        x.iter()
            .enumerate()
            .map(|(i, row)| {
                if row.len() < self.width {
                    return Err(ModelError::Fit {
                        what: "value trees",
                        error: format!(
                            "row {i} has {} features, the trees split on {}",
                            row.len(),
                            self.width
                        ),
                    });
                }
                let mut prediction = self.base_score;
                for &root in &self.roots {
                    prediction += self.learning_rate * self.leaf_value(root, row);
                }
                Ok(prediction)
            })
            .collect()
    }

    /// The value of the leaf `row` reaches from `root`. Like smartcore, a value not above
    /// the threshold goes left (so a NaN goes right). `row` is as wide as the splits need.
    fn leaf_value(&self, root: u32, row: &[f64]) -> f64 {
        let mut node = &self.nodes[root as usize];
        while node.left != LEAF {
            let next = if row[node.feature] <= node.threshold {
                node.left
            } else {
                node.right
            };
            node = &self.nodes[next as usize];
        }
        node.value
    }
}
