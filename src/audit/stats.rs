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
//! Matrix algebra is `nalgebra`'s (QR, triangular solves, Cholesky); distributions are
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

/// Fits `y = Xβ + e` by QR and estimates `Var(β)` by HC1:
/// `(X'X)⁻¹ X' diag(e²) X (X'X)⁻¹ · n/(n−k)`. With `X = QR` that is
/// `R⁻¹ (Q' diag(e²) Q) R⁻ᵀ · n/(n−k)`, which never forms `X'X`.
/// `x` must have full column rank (see [`independent_columns`]) and include the
/// intercept column if the model has one; R² is centred, as with an intercept.
pub fn ols_hc1(x: &DMatrix<f64>, y: &DVector<f64>) -> Result<OlsFit, OlsError> {
    let (n, k) = x.shape();
    if y.len() != n || k == 0 || n <= k {
        return Err(OlsError::TooFewObservations);
    }
    let qr = x.clone().qr();
    let r = qr.r();
    let q = qr.q();
    let scale = r.diagonal().amax();
    if scale.is_nan() || scale <= 0.0 || r.diagonal().iter().any(|d| d.abs() <= scale * 1e-12) {
        return Err(OlsError::Singular);
    }
    let coefficients = r
        .solve_upper_triangular(&transposed_times(&q, y))
        .ok_or(OlsError::Singular)?;
    let residuals = y - x * &coefficients;
    // Row i of Q times e_i, done a column at a time (the same products, in the order
    // the matrix is stored).
    let mut weighted = q;
    for mut column in weighted.column_iter_mut() {
        column.component_mul_assign(&residuals);
    }
    let meat = weighted.transpose() * &weighted;
    let r_inverse = r
        .solve_upper_triangular(&DMatrix::identity(k, k))
        .ok_or(OlsError::Singular)?;
    let covariance = &r_inverse * meat * r_inverse.transpose() * (n as f64 / (n - k) as f64);
    let robust_se = covariance.diagonal().map(|v| v.max(0.0).sqrt());
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

/// `mᵀ v` without writing `mᵀ`, the size of `m`, first. Each entry is summed term by
/// term from the first row, exactly as `m.transpose() * v` sums it, so the result is the
/// same to the last bit.
fn transposed_times(m: &DMatrix<f64>, v: &DVector<f64>) -> DVector<f64> {
    DVector::from_iterator(
        m.ncols(),
        m.column_iter().map(|column| {
            let mut terms = column.iter().zip(v.iter()).map(|(a, b)| a * b);
            let first = terms.next().unwrap_or(0.0);
            terms.fold(first, |sum, term| term + sum)
        }),
    )
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

/// The columns of `x` to keep, taken greedily in index order: a column is kept unless
/// it is (numerically) a linear combination of the columns kept before it, or zero.
/// Put the columns that matter most first (the intercept) and the one under study last,
/// so a collinear control gives way before the estimate does.
pub fn independent_columns(x: &DMatrix<f64>) -> Vec<usize> {
    let norms: Vec<f64> = x.column_iter().map(|c| c.norm()).collect();
    let mut unit = x.clone();
    for (mut column, norm) in unit.column_iter_mut().zip(&norms) {
        if *norm > 0.0 {
            column /= *norm;
        }
    }
    // Gram matrix of the unit-length columns: the squared residual of column j on a set
    // K is 1 − g_Kjᵀ G_KK⁻¹ g_Kj.
    let gram = unit.transpose() * &unit;
    let mut kept: Vec<usize> = Vec::new();
    for j in 0..x.ncols() {
        if !norms[j].is_finite() || norms[j] <= 0.0 {
            continue;
        }
        let residual = if kept.is_empty() {
            1.0
        } else {
            let g_kk = gram.select_rows(&kept).select_columns(&kept);
            let g_kj = DVector::from_iterator(kept.len(), kept.iter().map(|&i| gram[(i, j)]));
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

    /// The product the fit uses in place of `m.transpose() * v` gives the same bits, on
    /// sums long and uneven enough that any other order of the terms rounds differently.
    #[test]
    fn the_transposed_product_sums_exactly_as_the_transpose_does() {
        let rows = 10_000;
        let m = DMatrix::from_fn(rows, 7, |i, j| {
            let x = ((i * 7919 + j * 104_729) % 1_000_003) as f64;
            (x / 3.0).sin() * 10f64.powi((i % 9) as i32 - 4)
        });
        let v = DVector::from_fn(rows, |i, _| ((i * 31) % 97) as f64 / 7.0 - 6.0);
        let ours = transposed_times(&m, &v);
        let theirs = m.transpose() * &v;
        for (a, b) in ours.iter().zip(theirs.iter()) {
            assert_eq!(a.to_bits(), b.to_bits(), "{a} against {b}");
        }
        // The order matters: summed in pairs, the first entry rounds differently.
        let column = m.column(0);
        let paired: f64 = column
            .iter()
            .zip(v.iter())
            .map(|(a, b)| a * b)
            .collect::<Vec<_>>()
            .chunks(2)
            .map(|pair| pair.iter().sum::<f64>())
            .sum();
        assert_ne!(paired.to_bits(), ours[0].to_bits());
    }

    /// With an intercept and one binary regressor, the slope is the difference of the
    /// group means and its HC0 variance is the unpooled p(1−p)/n sum; HC1 scales it by
    /// n/(n−2).
    #[test]
    fn ols_with_one_dummy_reproduces_the_difference_of_means() {
        let flag = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let y = [1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        let x = DMatrix::from_fn(10, 2, |i, j| if j == 0 { 1.0 } else { flag[i] });
        let fit = ols_hc1(&x, &DVector::from_row_slice(&y)).expect("fits");
        let (p1, p0) = (0.75, 2.0 / 6.0);
        assert!(close(fit.coefficients[1], p1 - p0, 1e-12));
        let hc0 = p1 * (1.0 - p1) / 4.0 + p0 * (1.0 - p0) / 6.0;
        assert!(close(fit.robust_se[1], (hc0 * 10.0 / 8.0).sqrt(), 1e-12));
        assert_eq!(fit.df_resid, 8);
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
        assert_eq!(independent_columns(&x), vec![0, 1, 4]);
    }

    #[test]
    fn a_singular_design_is_an_error_not_nan() {
        let x = DMatrix::from_fn(5, 2, |_, _| 1.0);
        let y = DVector::from_row_slice(&[1.0, 0.0, 1.0, 0.0, 1.0]);
        assert_eq!(ols_hc1(&x, &y).unwrap_err(), OlsError::Singular);
        let few = DMatrix::from_fn(2, 2, |i, j| if j == 0 { 1.0 } else { i as f64 });
        assert_eq!(
            ols_hc1(&few, &DVector::from_row_slice(&[1.0, 0.0])).unwrap_err(),
            OlsError::TooFewObservations
        );
    }

    #[test]
    fn a_perfect_fit_has_no_r_squared_when_y_is_constant() {
        let x = DMatrix::from_fn(6, 2, |i, j| if j == 0 { 1.0 } else { (i % 2) as f64 });
        let fit = ols_hc1(&x, &DVector::from_element(6, 1.0)).expect("fits");
        assert_eq!(fit.r_squared, None);
        assert!(t_inference(fit.coefficients[1], fit.robust_se[1], fit.df_resid).is_none());
    }
}
