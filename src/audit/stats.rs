//! The statistics of the audit, with the conventions of SFR 2018:11:
//!
//! - two proportions: a two-sided z-test with the pooled standard error (the report's
//!   "Diff. (p-värde)") and a 95 % Wald interval of the difference with the unpooled one;
//! - a linear probability model (OLS) with heteroskedasticity-robust HC1 standard
//!   errors (the report's "robusta standardfel"), t-based p-values and intervals on
//!   n − k degrees of freedom, as Stata's `regress, robust` gives them;
//! - which columns of a design are linearly independent, in a chosen priority, so a
//!   singular design is reported rather than fitted.
//!
//! Matrix algebra is `nalgebra`'s (matrix products, Cholesky); distributions are
//! `statrs`'s. Nothing here returns NaN: what cannot be computed is `None` or an error.

use nalgebra::{Cholesky, DMatrix, DVector};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// The confidence level of every interval.
pub const CONFIDENCE: f64 = 0.95;

/// A column whose part not explained by the columns before it is smaller than this
/// (relative to its length) counts as a linear combination of them.
const COLLINEARITY_TOLERANCE: f64 = 1e-5;

/// The standard normal quantile of the two-sided 95 % interval (1.96).
pub fn normal_quantile() -> f64 {
    Normal::standard().inverse_cdf(1.0 - (1.0 - CONFIDENCE) / 2.0)
}

/// Two-sided p-value of a standard normal statistic.
pub fn normal_p(z: f64) -> f64 {
    (2.0 * Normal::standard().sf(z.abs())).min(1.0)
}

/// Two shares and their difference `a − b` (as fractions, not percent).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProportionDiff {
    pub share_a: f64,
    pub share_b: f64,
    pub diff: f64,
    /// 95 % Wald interval of `diff`, unpooled standard error.
    pub ci_low: f64,
    pub ci_high: f64,
    /// Two-sided z-test, pooled standard error; `None` when the outcome is the same for
    /// everyone in both groups (the test is undefined).
    pub p_value: Option<f64>,
}

/// Compares `x_a` of `n_a` with `x_b` of `n_b`. `None` when a group is empty.
pub fn two_proportions(x_a: usize, n_a: usize, x_b: usize, n_b: usize) -> Option<ProportionDiff> {
    if n_a == 0 || n_b == 0 || x_a > n_a || x_b > n_b {
        return None;
    }
    let (na, nb) = (n_a as f64, n_b as f64);
    let share_a = x_a as f64 / na;
    let share_b = x_b as f64 / nb;
    let diff = share_a - share_b;
    let pooled = (x_a + x_b) as f64 / (na + nb);
    let se_pooled = (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    let p_value = (se_pooled > 0.0).then(|| normal_p(diff / se_pooled));
    let se = (share_a * (1.0 - share_a) / na + share_b * (1.0 - share_b) / nb).sqrt();
    let half = normal_quantile() * se;
    Some(ProportionDiff {
        share_a,
        share_b,
        diff,
        ci_low: diff - half,
        ci_high: diff + half,
        p_value,
    })
}

/// Why a model could not be fitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OlsError {
    #[error("för få observationer för modellens antal parametrar")]
    TooFewObservations,
    #[error("designmatrisen är singulär")]
    Singular,
}

/// An OLS fit with HC1 robust standard errors.
#[derive(Clone, Debug)]
pub struct OlsFit {
    pub coefficients: DVector<f64>,
    pub robust_se: DVector<f64>,
    pub observations: usize,
    /// n − k.
    pub df_resid: usize,
    /// `None` when the outcome does not vary.
    pub r_squared: Option<f64>,
}

/// A design matrix `x` with the Gram matrix of its columns scaled to unit length, made
/// once and shared by choosing the columns ([`Design::independent_columns`]) and the fit
/// ([`Design::ols_hc1`]).
pub struct Design {
    x: DMatrix<f64>,
    /// The Gram matrix of the unit-length columns (a zero or non-finite column unscaled).
    gram: DMatrix<f64>,
    /// The columns' lengths.
    lengths: Vec<f64>,
}

impl Design {
    pub fn new(x: DMatrix<f64>) -> Self {
        let (gram, lengths) = unit_gram(&x);
        Self { x, gram, lengths }
    }

    pub fn columns(&self) -> usize {
        self.x.ncols()
    }

    /// The design of the columns `kept` only, its Gram matrix taken from this one's.
    pub fn select_columns(&self, kept: &[usize]) -> Self {
        Self {
            x: self.x.select_columns(kept),
            gram: self.gram.select_rows(kept).select_columns(kept),
            lengths: kept.iter().map(|&j| self.lengths[j]).collect(),
        }
    }

    /// The columns to keep, taken greedily in index order: a column is kept unless it is
    /// (numerically) a linear combination of the columns kept before it, or zero. Put the
    /// columns that matter most first (the intercept) and the one under study last, so a
    /// collinear control gives way before the estimate does.
    pub fn independent_columns(&self) -> Vec<usize> {
        // With G the Gram matrix of the unit-length columns, the squared residual of column
        // j on a set K is 1 − g_Kjᵀ G_KK⁻¹ g_Kj.
        let mut kept: Vec<usize> = Vec::new();
        for (j, length) in self.lengths.iter().enumerate() {
            if !usable(*length) {
                continue;
            }
            let residual = if kept.is_empty() {
                1.0
            } else {
                let g_kk = self.gram.select_rows(&kept).select_columns(&kept);
                let g_kj =
                    DVector::from_iterator(kept.len(), kept.iter().map(|&i| self.gram[(i, j)]));
                match Cholesky::new(g_kk) {
                    Some(cholesky) => 1.0 - g_kj.dot(&cholesky.solve(&g_kj)),
                    None => 0.0,
                }
            };
            if residual > COLLINEARITY_TOLERANCE * COLLINEARITY_TOLERANCE {
                kept.push(j);
            }
        }
        kept
    }

    /// Fits `y = Xβ + e` by least squares and estimates `Var(β)` by HC1:
    /// `(X'X)⁻¹ X' diag(e²) X (X'X)⁻¹ · n/(n−k)`.
    ///
    /// With the columns scaled to unit length (`X = U S⁻¹`, `S` the reciprocal lengths), the
    /// fit solves the normal equations of `U` by Cholesky of its Gram matrix `G = U'U`:
    /// `β = S G⁻¹ S X'y`, refined once on its own residuals (the corrected semi-normal
    /// equations, as accurate as a QR fit for a design as well conditioned as the audit's),
    /// and `Var(β) = S G⁻¹ (S X' diag(e²) X S) G⁻¹ S · n/(n−k)`. The two products over
    /// the observations, `X'X` and `X' diag(e²) X`, are summed a block of rows at a time
    /// ([`gram_of_rows`]), so the fit makes no copy of `x`; `X'X` comes with the design.
    /// `x` must have full column rank (see [`Design::independent_columns`]) and include the
    /// intercept column if the model has one; R² is centred, as with an intercept.
    pub fn ols_hc1(&self, y: &DVector<f64>) -> Result<OlsFit, OlsError> {
        let x = &self.x;
        let (n, k) = x.shape();
        if y.len() != n || k == 0 || n <= k {
            return Err(OlsError::TooFewObservations);
        }
        if !self.lengths.iter().all(|l| usable(*l)) {
            return Err(OlsError::Singular);
        }
        let s = DVector::from_iterator(k, self.lengths.iter().map(|l| 1.0 / l));
        let cholesky = Cholesky::new(self.gram.clone()).ok_or(OlsError::Singular)?;
        // A pivot is the length of the part of a unit-length column that the columns before
        // it do not explain; this close to zero it would be rounding noise.
        if cholesky
            .l_dirty()
            .diagonal()
            .iter()
            .any(|d| *d <= SINGULAR_PIVOT)
        {
            return Err(OlsError::Singular);
        }
        let solve = |v: DVector<f64>| s.component_mul(&cholesky.solve(&s.component_mul(&v)));
        let mut coefficients = solve(x.tr_mul(y));
        coefficients += solve(x.tr_mul(&(y - x * &coefficients)));
        let residuals = y - x * &coefficients;
        let mut meat = gram_of_rows(x, Some(&residuals));
        scale_both_sides(&mut meat, s.as_slice());
        let inverse = cholesky.inverse();
        let covariance = &inverse * meat * &inverse * (n as f64 / (n - k) as f64);
        let robust_se =
            DVector::from_iterator(k, (0..k).map(|j| covariance[(j, j)].max(0.0).sqrt() * s[j]));
        let mean = y.mean();
        let total: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
        let r_squared = (total > 0.0).then(|| 1.0 - residuals.norm_squared() / total);
        if coefficients
            .iter()
            .chain(robust_se.iter())
            .any(|v| !v.is_finite())
        {
            return Err(OlsError::Singular);
        }
        Ok(OlsFit {
            coefficients,
            robust_se,
            observations: n,
            df_resid: n - k,
            r_squared,
        })
    }
}

/// A pivot of the unit-length columns' Cholesky factor at or below this is singular
/// (the Gram matrix knows a pivot to about the square root of the machine epsilon).
const SINGULAR_PIVOT: f64 = 1e-7;

/// The Gram matrix of `x`'s columns scaled to unit length, and the columns' lengths. A
/// column of length zero (or not finite) is left unscaled.
fn unit_gram(x: &DMatrix<f64>) -> (DMatrix<f64>, Vec<f64>) {
    let lengths: Vec<f64> = x.column_iter().map(|c| c.norm()).collect();
    let scale: Vec<f64> = lengths
        .iter()
        .map(|l| if usable(*l) { 1.0 / l } else { 1.0 })
        .collect();
    let mut gram = gram_of_rows(x, None);
    scale_both_sides(&mut gram, &scale);
    (gram, lengths)
}

/// Whether a column of this length can be scaled to unit length: not zero, not NaN or
/// infinite.
fn usable(length: f64) -> bool {
    length.is_finite() && length > 0.0
}

/// `m ← diag(s) m diag(s)`.
fn scale_both_sides(m: &mut DMatrix<f64>, s: &[f64]) {
    for (j, mut column) in m.column_iter_mut().enumerate() {
        for (i, value) in column.iter_mut().enumerate() {
            *value *= s[i] * s[j];
        }
    }
}

/// Rows of `x` per block in [`gram_of_rows`]: a block and its transpose stay in a
/// core's cache.
const BLOCK_ROWS: usize = 1024;

/// `Σᵢ wᵢ² xᵢ xᵢ'` over the rows `xᵢ` of `x` (`X' diag(w²) X`; `X'X` without weights),
/// a block of rows at a time through two buffers of [`BLOCK_ROWS`] rows, so no copy or
/// transpose of the whole of `x` is made.
fn gram_of_rows(x: &DMatrix<f64>, weights: Option<&DVector<f64>>) -> DMatrix<f64> {
    let (n, k) = x.shape();
    let mut sum = DMatrix::zeros(k, k);
    let mut block = DMatrix::zeros(0, k);
    let mut block_transposed = DMatrix::zeros(k, 0);
    let mut start = 0;
    while start < n {
        let rows = BLOCK_ROWS.min(n - start);
        if block.nrows() != rows {
            block = DMatrix::zeros(rows, k);
            block_transposed = DMatrix::zeros(k, rows);
        }
        block.copy_from(&x.rows(start, rows));
        if let Some(weights) = weights {
            let weights = weights.rows(start, rows);
            for mut column in block.column_iter_mut() {
                column.component_mul_assign(&weights);
            }
        }
        block.transpose_to(&mut block_transposed);
        sum.gemm(1.0, &block_transposed, &block, 1.0);
        start += rows;
    }
    sum
}

/// A coefficient's t-test and 95 % interval on `df` degrees of freedom.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Inference {
    pub p_value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// `None` when the standard error is zero (a perfect fit, where rounding leaves an
/// error of about 1e-16 rather than exactly zero) or `df` is zero.
pub fn t_inference(coefficient: f64, se: f64, df: usize) -> Option<Inference> {
    let rounding_noise = 1e-12 * coefficient.abs().max(1.0);
    if !se.is_finite() || se <= rounding_noise || df == 0 {
        return None;
    }
    let t = StudentsT::new(0.0, 1.0, df as f64).ok()?;
    let p_value = (2.0 * t.sf((coefficient / se).abs())).min(1.0);
    let half = t.inverse_cdf(1.0 - (1.0 - CONFIDENCE) / 2.0) * se;
    Some(Inference {
        p_value,
        ci_low: coefficient - half,
        ci_high: coefficient + half,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance * b.abs().max(1e-300)
    }

    /// 45 of 100 against 30 of 100, by hand: pooled p = 0.375,
    /// SE₀ = √(0.375·0.625·(1/100 + 1/100)) = 0.0684653, z = 0.15/0.0684653 = 2.19089,
    /// two-sided p = 2·(1 − Φ(2.19089)) = 0.0284597; unpooled SE = √(0.45·0.55/100 +
    /// 0.3·0.7/100) = 0.0670820, interval 0.15 ± 1.959964·0.0670820.
    #[test]
    fn two_proportion_z_test_textbook_example() {
        let result = two_proportions(45, 100, 30, 100).expect("both groups have cases");
        assert!(close(result.diff, 0.15, 1e-12));
        assert!(close(
            result.p_value.expect("defined"),
            0.028_459_736_9,
            1e-8
        ));
        assert!(close(result.ci_low, 0.017_430_493_3, 1e-8));
        assert!(close(result.ci_high, 0.282_569_506_7, 1e-8));
    }

    #[test]
    fn z_test_is_undefined_without_variation_and_without_cases() {
        let same = two_proportions(0, 10, 0, 12).expect("groups have cases");
        assert_eq!(same.p_value, None);
        assert_eq!((same.ci_low, same.ci_high), (0.0, 0.0));
        assert!(two_proportions(3, 10, 0, 0).is_none());
    }

    #[test]
    fn tiny_p_values_do_not_cancel_to_zero() {
        let result = two_proportions(900, 1000, 100, 1000).expect("cases");
        let p = result.p_value.expect("defined");
        assert!(p > 0.0 && p < 1e-100, "{p}");
    }

    /// With an intercept and one binary regressor, the slope is the difference of the
    /// group means and its HC0 variance is the unpooled p(1−p)/n sum; HC1 scales it by
    /// n/(n−2).
    #[test]
    fn ols_with_one_dummy_reproduces_the_difference_of_means() {
        let flag = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let y = [1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        let x = DMatrix::from_fn(10, 2, |i, j| if j == 0 { 1.0 } else { flag[i] });
        let fit = Design::new(x)
            .ols_hc1(&DVector::from_row_slice(&y))
            .expect("fits");
        let (p1, p0) = (0.75, 2.0 / 6.0);
        assert!(close(fit.coefficients[1], p1 - p0, 1e-12));
        let hc0 = p1 * (1.0 - p1) / 4.0 + p0 * (1.0 - p0) / 6.0;
        assert!(close(fit.robust_se[1], (hc0 * 10.0 / 8.0).sqrt(), 1e-12));
        assert_eq!(fit.df_resid, 8);
    }

    /// NIST's certified values for Longley's data (StRD, "Longley"), a design chosen for
    /// how badly it is conditioned: the fit must give the coefficients to 8 digits.
    #[test]
    fn longley_gives_nists_certified_coefficients() {
        #[rustfmt::skip]
        let data: [[f64; 7]; 16] = [
            [60323.0, 83.0, 234289.0, 2356.0, 1590.0, 107608.0, 1947.0],
            [61122.0, 88.5, 259426.0, 2325.0, 1456.0, 108632.0, 1948.0],
            [60171.0, 88.2, 258054.0, 3682.0, 1616.0, 109773.0, 1949.0],
            [61187.0, 89.5, 284599.0, 3351.0, 1650.0, 110929.0, 1950.0],
            [63221.0, 96.2, 328975.0, 2099.0, 3099.0, 112075.0, 1951.0],
            [63639.0, 98.1, 346999.0, 1932.0, 3594.0, 113270.0, 1952.0],
            [64989.0, 99.0, 365385.0, 1870.0, 3547.0, 115094.0, 1953.0],
            [63761.0, 100.0, 363112.0, 3578.0, 3350.0, 116219.0, 1954.0],
            [66019.0, 101.2, 397469.0, 2904.0, 3048.0, 117388.0, 1955.0],
            [67857.0, 104.6, 419180.0, 2822.0, 2857.0, 118734.0, 1956.0],
            [68169.0, 108.4, 442769.0, 2936.0, 2798.0, 120445.0, 1957.0],
            [66513.0, 110.8, 444546.0, 4681.0, 2637.0, 121950.0, 1958.0],
            [68655.0, 112.6, 482704.0, 3813.0, 2552.0, 123366.0, 1959.0],
            [69564.0, 114.2, 502601.0, 3931.0, 2514.0, 125368.0, 1960.0],
            [69331.0, 115.7, 518173.0, 4806.0, 2572.0, 127852.0, 1961.0],
            [70551.0, 116.9, 554894.0, 4007.0, 2827.0, 130081.0, 1962.0],
        ];
        let x = DMatrix::from_fn(16, 7, |i, j| if j == 0 { 1.0 } else { data[i][j] });
        let y = DVector::from_fn(16, |i, _| data[i][0]);
        let fit = Design::new(x)
            .ols_hc1(&y)
            .expect("Longley's design has full rank");
        let certified = [
            -3_482_258.634_595_82,
            15.061_872_271_373_3,
            -0.035_819_179_292_591_0,
            -2.020_229_803_816_83,
            -1.033_226_867_173_59,
            -0.051_104_105_653_580_7,
            1_829.151_464_613_55,
        ];
        for (ours, nist) in fit.coefficients.iter().zip(certified) {
            assert!(close(*ours, nist, 1e-8), "{ours} against {nist}");
        }
        // NIST's R² (its standard errors are the classical ones, not HC1).
        let r_squared = fit.r_squared.expect("the outcome varies");
        assert!(
            close(r_squared, 0.995_479_004_577_296, 1e-10),
            "{r_squared}"
        );
    }

    /// On a design like the audit's (an intercept, dummies, an age in years, an income
    /// in units of 100,000 and the flag last), the fit agrees with a Householder QR fit,
    /// and its HC1 standard errors with the same sandwich formed from the QR fit's
    /// residuals, to 10 digits.
    #[test]
    fn agrees_with_a_householder_qr_fit_on_a_design_like_the_audits() {
        let n = 20_000;
        let draw = |i: usize, salt: usize| {
            ((i * 2_654_435_761 + salt * 40_503) % 1_000_003) as f64 / 1_000_003.0
        };
        let x = DMatrix::from_fn(n, 7, |i, j| match j {
            0 => 1.0,
            1 => f64::from(draw(i, 1) < 0.55),
            2 => f64::from(draw(i, 2) < 0.3),
            3 => 20.0 + (draw(i, 3) * 45.0).floor(),
            4 => 1.5 + draw(i, 4) * 4.0,
            5 => f64::from(draw(i, 5) < 0.2),
            _ => f64::from(draw(i, 6) < 0.4 + 0.2 * draw(i, 2)),
        });
        let y = DVector::from_fn(n, |i, _| {
            f64::from(draw(i, 7) < 0.2 + 0.1 * x[(i, 6)] + 0.004 * (x[(i, 3)] - 40.0))
        });
        let fit = Design::new(x.clone()).ols_hc1(&y).expect("full rank");
        let qr = x.clone().qr();
        let mut q_y = y.clone();
        qr.q_tr_mul(&mut q_y);
        let reference = qr
            .r()
            .solve_upper_triangular(&q_y.rows(0, 7).into_owned())
            .expect("full rank");
        for (ours, theirs) in fit.coefficients.iter().zip(reference.iter()) {
            assert!(close(*ours, *theirs, 1e-10), "{ours} against {theirs}");
        }
        let residuals = &y - &x * &reference;
        let mut weighted = x.clone();
        for mut column in weighted.column_iter_mut() {
            column.component_mul_assign(&residuals);
        }
        let bread = (x.transpose() * &x).try_inverse().expect("full rank");
        let covariance =
            &bread * (weighted.transpose() * &weighted) * &bread * (n as f64 / (n - 7) as f64);
        for (j, ours) in fit.robust_se.iter().enumerate() {
            let theirs = covariance[(j, j)].sqrt();
            assert!(close(*ours, theirs, 1e-10), "{ours} against {theirs}");
        }
    }

    #[test]
    fn t_test_against_tables() {
        // t = 2 on 10 degrees of freedom: two-sided p = 0.0733880; t₀.₉₇₅(10) = 2.228139.
        let inference = t_inference(2.0, 1.0, 10).expect("defined");
        assert!(close(inference.p_value, 0.073_388_034_8, 1e-8));
        assert!(close(inference.ci_high, 2.0 + 2.228_138_852, 1e-9));
        assert!(t_inference(1.0, 0.0, 10).is_none());
    }

    #[test]
    fn collinear_and_constant_columns_are_left_out() {
        // intercept, a, b = 1 − a (collinear with intercept and a), zero column, c.
        let a = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0];
        let c = [3.0, 5.0, 2.0, 8.0, 1.0, 4.0];
        let x = DMatrix::from_fn(6, 5, |i, j| match j {
            0 => 1.0,
            1 => a[i],
            2 => 1.0 - a[i],
            3 => 0.0,
            _ => c[i],
        });
        assert_eq!(Design::new(x).independent_columns(), vec![0, 1, 4]);
    }

    #[test]
    fn a_singular_design_is_an_error_not_nan() {
        let x = DMatrix::from_fn(5, 2, |_, _| 1.0);
        let y = DVector::from_row_slice(&[1.0, 0.0, 1.0, 0.0, 1.0]);
        assert_eq!(Design::new(x).ols_hc1(&y).unwrap_err(), OlsError::Singular);
        let few = DMatrix::from_fn(2, 2, |i, j| if j == 0 { 1.0 } else { i as f64 });
        assert_eq!(
            Design::new(few)
                .ols_hc1(&DVector::from_row_slice(&[1.0, 0.0]))
                .unwrap_err(),
            OlsError::TooFewObservations
        );
    }

    #[test]
    fn a_perfect_fit_has_no_r_squared_when_y_is_constant() {
        let x = DMatrix::from_fn(6, 2, |i, j| if j == 0 { 1.0 } else { (i % 2) as f64 });
        let fit = Design::new(x)
            .ols_hc1(&DVector::from_element(6, 1.0))
            .expect("fits");
        assert_eq!(fit.r_squared, None);
        assert!(t_inference(fit.coefficients[1], fit.robust_se[1], fit.df_resid).is_none());
    }
}
