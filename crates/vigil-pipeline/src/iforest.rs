//! The [`AnomalyModel`] trait and a hand-written Isolation Forest (Liu, Ting, Zhou 2008).
//!
//! Each tree is grown on a random subsample of ψ training vectors by splitting on a random
//! feature at a random threshold between that feature's minimum and maximum, down to depth
//! ⌈log2 ψ⌉. Anomalies are few and different, so random splits isolate them in fewer steps:
//! the score `2^(−E[h(x)] / c(ψ))` is near 1 for points isolated quickly, about 0.5 or less
//! for ordinary points. All randomness comes from a seed, so a model is a pure function of
//! (parameters, seed, training data).
//!
//! Attribution: a split that sends `x` from a node of `n` training points to a child of `m`
//! narrows the candidates by `log2(n / m)` bits; each feature is credited with the bits of
//! the splits on it along `x`'s paths, so the features that did the isolating stand out.

use serde::{Deserialize, Serialize};

use crate::util::SplitMix64;

/// A model that scores feature vectors for anomaly. Streaming or batch models plug into
/// the pipeline's per-agent detector through this trait.
pub trait AnomalyModel {
    /// Trains on `data` (every row of one length), replacing what was learned before.
    /// Deterministic given `seed` and `data`.
    fn fit(&mut self, data: &[Vec<f32>], seed: u64) -> Result<(), ModelError>;
    /// Whether [`fit`](Self::fit) has succeeded.
    fn is_fitted(&self) -> bool;
    /// Anomaly score of `x` in `[0, 1]` (higher is more anomalous); `None` when not fitted
    /// or `x` has the wrong length.
    fn score(&self, x: &[f32]) -> Option<f64>;
    /// Share of the anomaly attributable to each feature (sums to 1 when defined); an empty
    /// vector when the model cannot explain.
    fn explain(&self, x: &[f32]) -> Vec<f64>;
}

/// Why training failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// Too few rows.
    #[error("anomaly model needs at least {need} training vectors, got {got}; wait for more data")]
    NotEnoughData {
        /// Rows given.
        got: usize,
        /// Rows needed.
        need: usize,
    },
    /// A row has another length than the first.
    #[error("training vector {row} has {got} features, expected {expected}; every vector must list the same features")]
    Dimension {
        /// Index of the row.
        row: usize,
        /// Its length.
        got: usize,
        /// The first row's length.
        expected: usize,
    },
    /// A value is NaN or infinite.
    #[error("training vector {row} holds a non-finite value; drop or clip it before training")]
    NonFinite {
        /// Index of the row.
        row: usize,
    },
}

/// One node of a tree, stored in a flat vector; children by index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Node {
    /// Training points that reached this node.
    size: u32,
    /// Split feature, or `u16::MAX` for a leaf.
    feature: u16,
    threshold: f32,
    left: u32,
    right: u32,
}

const LEAF: u16 = u16::MAX;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Tree {
    nodes: Vec<Node>,
}

/// An Isolation Forest. Serializable; deterministic given its seed and training data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsolationForest {
    trees_wanted: usize,
    sample_size: usize,
    dim: usize,
    trees: Vec<Tree>,
    /// c(ψ): average path length of an unsuccessful BST search over ψ points.
    norm: f64,
}

/// Average path length of an unsuccessful search in a binary search tree of `n` points:
/// the expected depth correction for a leaf still holding `n` points.
pub fn c_factor(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + 0.577_215_664_901_532_9) - 2.0 * (n - 1.0) / n
        }
    }
}

impl IsolationForest {
    /// An unfitted forest of `trees` trees, each grown from `sample_size` points.
    pub fn new(trees: usize, sample_size: usize) -> Self {
        Self { trees_wanted: trees.max(1), sample_size: sample_size.max(2), dim: 0, trees: Vec::new(), norm: 1.0 }
    }

    /// Number of features the forest was fitted on.
    pub fn dim(&self) -> usize {
        self.dim
    }

    fn grow(&self, data: &[Vec<f32>], idx: &mut [usize], rng: &mut SplitMix64) -> Tree {
        let max_depth = (idx.len().max(2) as f64).log2().ceil() as usize;
        let mut nodes = Vec::with_capacity(2 * idx.len());
        // (node index, start, end, depth): an explicit stack instead of recursion.
        nodes.push(Node { size: idx.len() as u32, feature: LEAF, threshold: 0.0, left: 0, right: 0 });
        let mut stack = vec![(0usize, 0usize, idx.len(), 0usize)];
        while let Some((node, start, end, depth)) = stack.pop() {
            let part = &mut idx[start..end];
            if part.len() <= 1 || depth >= max_depth {
                continue;
            }
            // Pick a random feature that is not constant on this node; try each once.
            let first = rng.below(self.dim);
            let mut chosen = None;
            for k in 0..self.dim {
                let f = (first + k) % self.dim;
                let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
                for &i in part.iter() {
                    let v = data[i][f];
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
                if hi > lo {
                    chosen = Some((f, lo, hi));
                    break;
                }
            }
            let Some((f, lo, hi)) = chosen else { continue };
            let mut threshold = lo + (hi - lo) * rng.next_f64() as f32;
            if threshold <= lo {
                threshold = lo + (hi - lo) / 2.0;
            }
            // Partition: values < threshold go left.
            let mut split = 0;
            for j in 0..part.len() {
                if data[part[j]][f] < threshold {
                    part.swap(j, split);
                    split += 1;
                }
            }
            let left = nodes.len();
            nodes.push(Node { size: split as u32, feature: LEAF, threshold: 0.0, left: 0, right: 0 });
            nodes.push(Node { size: (part.len() - split) as u32, feature: LEAF, threshold: 0.0, left: 0, right: 0 });
            nodes[node].feature = f as u16;
            nodes[node].threshold = threshold;
            nodes[node].left = left as u32;
            nodes[node].right = left as u32 + 1;
            stack.push((left, start, start + split, depth + 1));
            stack.push((left + 1, start + split, end, depth + 1));
        }
        Tree { nodes }
    }

    /// Path length of `x` in `tree`, and (optionally) bits of isolation per feature.
    fn path(tree: &Tree, x: &[f32], mut credit: Option<&mut [f64]>) -> f64 {
        let mut i = 0usize;
        let mut depth = 0.0;
        loop {
            let Some(n) = tree.nodes.get(i) else { return depth };
            if n.feature == LEAF {
                return depth + c_factor(n.size as usize);
            }
            let f = n.feature as usize;
            let next = if x.get(f).copied().unwrap_or(0.0) < n.threshold { n.left } else { n.right } as usize;
            if let (Some(c), Some(child)) = (credit.as_deref_mut(), tree.nodes.get(next)) {
                let bits = (f64::from(n.size.max(1)) / f64::from(child.size.max(1))).log2();
                if let Some(slot) = c.get_mut(f) {
                    *slot += bits;
                }
            }
            depth += 1.0;
            i = next;
        }
    }
}

impl AnomalyModel for IsolationForest {
    fn fit(&mut self, data: &[Vec<f32>], seed: u64) -> Result<(), ModelError> {
        let need = 2;
        if data.len() < need {
            return Err(ModelError::NotEnoughData { got: data.len(), need });
        }
        let dim = data[0].len();
        for (row, v) in data.iter().enumerate() {
            if v.len() != dim || dim == 0 || dim > usize::from(LEAF) {
                return Err(ModelError::Dimension { row, got: v.len(), expected: dim });
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err(ModelError::NonFinite { row });
            }
        }
        self.dim = dim;
        let psi = self.sample_size.min(data.len());
        self.norm = c_factor(psi).max(f64::MIN_POSITIVE);
        let mut rng = SplitMix64::new(seed);
        let mut all: Vec<usize> = (0..data.len()).collect();
        self.trees.clear();
        for _ in 0..self.trees_wanted {
            // Partial Fisher–Yates: the first ψ slots become a uniform sample without
            // replacement.
            for j in 0..psi {
                let k = j + rng.below(all.len() - j);
                all.swap(j, k);
            }
            let mut idx = all[..psi].to_vec();
            let tree = self.grow(data, &mut idx, &mut rng);
            self.trees.push(tree);
        }
        Ok(())
    }

    fn is_fitted(&self) -> bool {
        !self.trees.is_empty()
    }

    fn score(&self, x: &[f32]) -> Option<f64> {
        if self.trees.is_empty() || x.len() != self.dim {
            return None;
        }
        let total: f64 = self.trees.iter().map(|t| Self::path(t, x, None)).sum();
        let mean = total / self.trees.len() as f64;
        Some(2f64.powf(-mean / self.norm))
    }

    fn explain(&self, x: &[f32]) -> Vec<f64> {
        if self.trees.is_empty() || x.len() != self.dim {
            return Vec::new();
        }
        let mut credit = vec![0.0; self.dim];
        for t in &self.trees {
            Self::path(t, x, Some(&mut credit));
        }
        let sum: f64 = credit.iter().sum();
        if sum > 0.0 {
            for c in &mut credit {
                *c /= sum;
            }
        }
        credit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaussian(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut r = SplitMix64::new(seed);
        (0..n).map(|_| (0..dim).map(|_| r.normal() as f32).collect()).collect()
    }

    #[test]
    fn outliers_score_higher_than_inliers() {
        let data = gaussian(1000, 4, 1);
        let mut f = IsolationForest::new(100, 256);
        f.fit(&data, 7).unwrap();
        let inlier = f.score(&[0.0, 0.1, -0.2, 0.0]).unwrap();
        let outlier = f.score(&[0.0, 6.0, 0.0, 0.0]).unwrap();
        let joint = f.score(&[2.5, 2.5, 2.5, 2.5]).unwrap();
        // A point beyond the training range on one of four features isolates about as fast
        // as the most extreme training point (isolation saturates); a joint deviation on
        // every feature isolates much faster.
        assert!(inlier < 0.45, "{inlier}");
        assert!(outlier > inlier + 0.1, "{outlier} vs {inlier}");
        assert!(joint > outlier + 0.1, "{joint} vs {outlier}");
    }

    #[test]
    fn deterministic_given_seed_and_serializable() {
        let data = gaussian(300, 3, 2);
        let mut a = IsolationForest::new(20, 64);
        let mut b = IsolationForest::new(20, 64);
        a.fit(&data, 9).unwrap();
        b.fit(&data, 9).unwrap();
        assert_eq!(a, b);
        let json = serde_json::to_string(&a).unwrap();
        let c: IsolationForest = serde_json::from_str(&json).unwrap();
        let x = [1.0, 2.0, 3.0];
        assert_eq!(a.score(&x), c.score(&x));
        let mut d = IsolationForest::new(20, 64);
        d.fit(&data, 10).unwrap();
        assert_ne!(a, d);
    }

    #[test]
    fn attribution_points_at_the_deviating_feature() {
        let data = gaussian(1000, 5, 3);
        let mut f = IsolationForest::new(100, 256);
        f.fit(&data, 1).unwrap();
        let e = f.explain(&[0.0, 0.0, 0.0, 8.0, 0.0]);
        let best = e.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        assert_eq!(best, 3, "{e:?}");
        assert!((e.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn bad_input_is_refused_not_panicked() {
        let mut f = IsolationForest::new(10, 16);
        assert!(matches!(f.fit(&[], 1), Err(ModelError::NotEnoughData { .. })));
        assert!(matches!(f.fit(&[vec![1.0], vec![1.0, 2.0]], 1), Err(ModelError::Dimension { row: 1, .. })));
        assert!(matches!(f.fit(&[vec![1.0], vec![f32::NAN]], 1), Err(ModelError::NonFinite { row: 1 })));
        assert_eq!(f.score(&[1.0]), None);
        // Constant data fits (every node is a leaf) and scores every point alike.
        f.fit(&vec![vec![1.0, 1.0]; 20], 1).unwrap();
        assert_eq!(f.score(&[1.0, 1.0]), f.score(&[9.0, 9.0]));
        assert_eq!(f.score(&[1.0]), None);
    }

    #[test]
    fn c_factor_matches_known_values() {
        assert_eq!(c_factor(1), 0.0);
        assert_eq!(c_factor(2), 1.0);
        assert!((c_factor(256) - 10.24).abs() < 0.01, "{}", c_factor(256));
    }
}
