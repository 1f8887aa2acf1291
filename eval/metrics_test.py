"""Each metric against an independent numpy/scipy implementation on fixed activations."""
import logging

import numpy as np
import pytest
import scipy.linalg
import scipy.spatial.distance
import scipy.special

from eval import metrics


def _acts(seed, n, d, shift=0.0):
  rng = np.random.RandomState(seed)
  mixing = rng.normal(size=(d, d)) / np.sqrt(d)
  return rng.normal(size=(n, d)) @ mixing + shift


def _fid_scipy(a, b):
  """pytorch-fid / Heusel et al. formula with scipy's general sqrtm (well-conditioned only)."""
  mu_a, mu_b = a.mean(0), b.mean(0)
  s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  covmean = scipy.linalg.sqrtm(s_a @ s_b).real
  return np.sum((mu_a - mu_b) ** 2) + np.trace(s_a + s_b - 2 * covmean)


def _fid_eig(a, b):
  """Singular-safe reference: Tr((S_a S_b)^1/2) = sum sqrt(eig(S_a S_b)), eigenvalues >= 0."""
  s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  eig = np.linalg.eigvals(s_a @ s_b).real
  trace_sqrt = np.sum(np.sqrt(np.clip(eig, 0, None)))
  return np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(s_a) + np.trace(s_b) - 2 * trace_sqrt


def test_frechet_distance_matches_scipy_sqrtm():
  a, b = _acts(0, 400, 16), _acts(1, 300, 16, shift=0.3)
  expected = _fid_scipy(a, b)
  assert expected > 1.0
  assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_from_moments_matches_tfgan_and_scipy():
  a, b = _acts(2, 500, 24), _acts(3, 450, 24, shift=-0.2)
  value = metrics.frechet_distance_from_moments(
      a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
  assert value == pytest.approx(_fid_scipy(a, b), rel=1e-6)
  assert value == pytest.approx(metrics.frechet_distance(a, b), rel=1e-9)


def test_frechet_distance_of_a_set_with_itself_is_zero():
  a = _acts(4, 200, 8)
  assert abs(metrics.frechet_distance_from_moments(
      a.mean(0), np.cov(a, rowvar=False), a.mean(0), np.cov(a, rowvar=False))) < 1e-9


def _fid_low_rank(a, b):
  """Exact reference for N < D: Tr((S_a S_b)^1/2) is the nuclear norm of X_a X_b^T / sqrt(..)."""
  xa, xb = a - a.mean(0), b - b.mean(0)  # centred [N_a, D], [N_b, D]
  trace_sqrt = np.sum(np.linalg.svd(xa @ xb.T, compute_uv=False)) / np.sqrt(
      (len(a) - 1) * (len(b) - 1))
  return (np.sum((a.mean(0) - b.mean(0)) ** 2) + np.sum(xa ** 2) / (len(a) - 1)
          + np.sum(xb ** 2) / (len(b) - 1) - 2 * trace_sqrt)


@pytest.mark.parametrize("use_moments", [False, True])
def test_frechet_distance_with_fewer_samples_than_dimensions_is_finite_and_warns(
    use_moments, caplog):
  a, b = _acts(5, 20, 64), _acts(6, 30, 64, shift=0.5)  # covariances of rank 19 and 29
  with caplog.at_level(logging.WARNING, logger="eval.metrics"):
    if use_moments:
      value = metrics.frechet_distance_from_moments(
          a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    else:
      value = metrics.frechet_distance(a, b)
  assert isinstance(value, float) and np.isfinite(value)
  assert value == pytest.approx(_fid_low_rank(a, b), rel=1e-6)
  assert any("singular" in r.message for r in caplog.records)


def test_frechet_distance_with_collapsed_feature_is_finite():
  a, b = _acts(7, 300, 8), _acts(8, 300, 8)
  a[:, 3] = 1.5  # a dead unit: zero variance, singular covariance even with N >> D
  b[:, 3] = 0.0
  value = metrics.frechet_distance_from_moments(
      a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
  assert value == pytest.approx(_fid_eig(a, b), rel=1e-6)


def test_frechet_distance_rejects_non_finite_activations():
  a = _acts(9, 50, 4)
  a[3, 2] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    metrics.frechet_distance(a, _acts(10, 50, 4))


def _is_numpy(logits):
  """Salimans et al.: exp(mean_x KL(p(y|x) || p(y))) with softmax probabilities."""
  p = scipy.special.softmax(logits.astype(np.float64), axis=1)
  q = p.mean(0, keepdims=True)
  return np.exp(np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1)))


def test_classifier_score_matches_numpy():
  logits = np.random.RandomState(11).normal(0, 3, size=(500, 20))
  assert metrics.classifier_score(logits) == pytest.approx(_is_numpy(logits), rel=1e-6)


def test_inception_score_splits_match_numpy():
  logits = np.random.RandomState(12).normal(0, 2, size=(1003, 30))
  scores = [_is_numpy(logits[i * 1003 // 10:(i + 1) * 1003 // 10]) for i in range(10)]
  mean, std = metrics.inception_score(logits, splits=10)
  assert mean == pytest.approx(np.mean(scores), rel=1e-6)
  assert std == pytest.approx(np.std(scores), rel=1e-6)
  assert std > 0


def _kid_numpy(a, b, block):
  """TF-GAN's block estimator re-derived: unbiased MMD^2 with k(x,y) = (x.y/d + 1)^3."""
  n_blocks = int(np.ceil(max(len(a), len(b)) / block))
  bounds = lambda n: np.cumsum([0] + [n // n_blocks + (i >= n_blocks - n % n_blocks)
                                      for i in range(n_blocks)])
  ba, bb = bounds(len(a)), bounds(len(b))
  d = a.shape[1]
  estimates = []
  for i in range(n_blocks):
    x, y = a[ba[i]:ba[i + 1]], b[bb[i]:bb[i + 1]]
    kxx, kyy, kxy = [(u @ v.T / d + 1) ** 3 for u, v in ((x, x), (y, y), (x, y))]
    m, n = len(x), len(y)
    estimates.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                     + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean())
  estimates = np.array(estimates)
  return estimates.mean(), np.sqrt(estimates.var(ddof=1) / n_blocks)


def test_kernel_inception_distance_matches_numpy_blocks():
  a, b = _acts(13, 2500, 8), _acts(14, 2300, 8, shift=0.2)  # 3 blocks of unequal sizes
  mean, std = metrics.kernel_inception_distance(a, b, max_block_size=1024)
  expected_mean, expected_std = _kid_numpy(a, b, 1024)
  assert expected_mean > 0
  assert mean == pytest.approx(expected_mean, rel=1e-6)
  assert std == pytest.approx(expected_std, rel=1e-6)


def test_kernel_inception_distance_single_block_has_nan_std():
  mean, std = metrics.kernel_inception_distance(_acts(15, 100, 4), _acts(16, 90, 4))
  assert np.isfinite(mean) and np.isnan(std)


def _pr_scipy(real, fake, k):
  d_rr = scipy.spatial.distance.cdist(real, real)
  d_ff = scipy.spatial.distance.cdist(fake, fake)
  d_rf = scipy.spatial.distance.cdist(real, fake)
  r_real = np.sort(d_rr, axis=1)[:, k]  # column 0 is the sample itself
  r_fake = np.sort(d_ff, axis=1)[:, k]
  precision = np.mean(np.any(d_rf <= r_real[:, None], axis=0))
  recall = np.mean(np.any(d_rf <= r_fake[None, :], axis=1))
  return precision, recall


def test_improved_precision_recall_matches_scipy_brute_force():
  real, fake = _acts(17, 300, 6), _acts(18, 250, 6, shift=0.8) * 0.7
  expected = _pr_scipy(real, fake, 3)
  assert 0.05 < expected[0] < 0.95 and 0.05 < expected[1] < 0.95  # not a trivial case
  got = metrics.improved_precision_recall(real, fake, k=3, block=32)  # several tiles each way
  assert got == pytest.approx(expected, abs=1e-12)


def test_improved_precision_recall_of_float32_features_is_exact():
  real, fake = _acts(20, 200, 5).astype(np.float32), _acts(21, 180, 5, shift=0.5).astype(np.float32)
  expected = _pr_scipy(real.astype(np.float64), fake.astype(np.float64), 3)
  assert metrics.improved_precision_recall(real, fake, block=64) == pytest.approx(expected, abs=1e-12)


def test_improved_precision_recall_extremes():
  real = _acts(19, 100, 4)
  assert metrics.improved_precision_recall(real, real.copy()) == (1.0, 1.0)
  assert metrics.improved_precision_recall(real, real + 1e3) == (0.0, 0.0)
