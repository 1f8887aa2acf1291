"""Metric functions on activations and logits, computed with TF-GAN's eval functions.

Everything here is pure: numpy or tensors in, Python floats out. Which network made the
activations is the caller's business and goes into the metric's name (`digits_fid` vs `fid`).

  classifier_score(logits)                     TF-GAN's Inception score: one value, no splits.
  inception_score(logits, splits=10)           Salimans et al. protocol: (mean, std) over splits.
  frechet_distance(acts_a, acts_b)             TF-GAN's FID on activations, float64.
  frechet_distance_from_moments(mu, sigma,..)  the same distance from streamed float64 moments.
  kernel_inception_distance(acts_a, acts_b)    TF-GAN's KID block estimator: (mean, std error).
  improved_precision_recall(real, fake, k=3)   Kynkaanniemi et al. 2019 on pool_3 features.

Numerical safety (FID): with fewer samples than feature dimensions, or any singular covariance,
the Frechet distance is still a finite real number (symmetric square roots with eigenvalues
clipped at 0, never a complex `sqrtm`), and a warning is logged because such a value is biased
and only comparable at equal sample counts. Non-finite inputs raise ValueError; a non-finite
result raises FloatingPointError. Nothing here returns NaN or a complex number, except the KID
standard error, which is NaN (as in TF-GAN) when there is only one block to estimate it from.
"""
import logging

import numpy as np
import scipy.linalg
import tensorflow as tf
import tensorflow_gan as tfgan

_log = logging.getLogger(__name__)


def frechet_distance(acts_a, acts_b) -> float:
  """Frechet distance between Gaussians fitted to two activation sets, in float64.

  Uses `tfgan.eval.frechet_classifier_distance_from_activations` (symmetric matrix square root).
  Args:
    acts_a, acts_b: [N, D] activations (N may differ between the two).
  """
  a = np.asarray(acts_a, np.float64)
  b = np.asarray(acts_b, np.float64)
  if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
    raise ValueError(f"activations must be [N, D] with equal D, got {a.shape} and {b.shape}")
  if len(a) < 2 or len(b) < 2:
    raise ValueError("Frechet distance needs at least 2 samples per set")
  _check_finite("activations", a, b)
  _warn_if_undersampled(len(a), len(b), a.shape[1])
  value = tfgan.eval.frechet_classifier_distance_from_activations(
      tf.constant(a), tf.constant(b))
  return _finite_float(value, "Frechet distance")


def frechet_distance_from_moments(mu_a, sigma_a, mu_b, sigma_b) -> float:
  """Frechet distance |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) from moments, float64.

  The formula and the trace identity Tr((S_a S_b)^(1/2)) = Tr((A S_b A)^(1/2)), A = S_a^(1/2),
  are TF-GAN's (`classifier_metrics.trace_sqrt_product`); the symmetric square roots use
  `eigh` with eigenvalues clipped at 0 instead of TF-GAN's SVD: the same value (tests compare
  them) about 4x faster at D = 2048, and real by construction for singular covariances.
  Args:
    mu_a, mu_b: [D] means. sigma_a, sigma_b: [D, D] covariances (unbiased, as TF-GAN's).
  """
  mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
  sigma_a, sigma_b = np.asarray(sigma_a, np.float64), np.asarray(sigma_b, np.float64)
  d = mu_a.shape[0]
  if mu_a.shape != (d,) or mu_b.shape != (d,) or sigma_a.shape != (d, d) or sigma_b.shape != (d, d):
    raise ValueError(f"need means [D] and covariances [D, D], got {mu_a.shape}, {sigma_a.shape}, "
                     f"{mu_b.shape}, {sigma_b.shape}")
  _check_finite("moments", mu_a, sigma_a, mu_b, sigma_b)
  sqrt_a, rank_a = _symmetric_sqrt(sigma_a)
  middle = sqrt_a @ sigma_b @ sqrt_a  # [D, D], symmetric PSD up to round-off
  eigenvalues = scipy.linalg.eigvalsh((middle + middle.T) / 2.0)
  trace_sqrt = float(np.sum(np.sqrt(_drop_round_off(eigenvalues))))
  rank_middle = _numerical_rank(eigenvalues)  # < D whenever sigma_a or sigma_b is singular
  if min(rank_a, rank_middle) < d:
    _log.warning(
        "FID: a covariance is singular (numerical rank %d of %d dimensions: fewer samples than "
        "dimensions, or collapsed features). The value is finite but biased: compare it only "
        "with values computed from the same sample counts.", min(rank_a, rank_middle), d)
  value = (np.sum(np.square(mu_a - mu_b)) + np.trace(sigma_a) + np.trace(sigma_b)
           - 2.0 * trace_sqrt)
  return _finite_float(value, "Frechet distance")


def classifier_score(logits) -> float:
  """Classifier score exp(E_x KL(p(y|x) || p(y))) as TF-GAN computes it: one value, no splits."""
  logits = np.asarray(logits, np.float64)
  if logits.ndim != 2:
    raise ValueError(f"logits must be [N, classes], got {logits.shape}")
  return float(tfgan.eval.classifier_score_from_logits(tf.constant(logits)))


def split_bounds(num_samples: int, splits: int) -> np.ndarray:
  """Split boundaries [splits + 1] of the Salimans et al. code: split i is [i*N//S, (i+1)*N//S)."""
  if splits < 1 or num_samples < splits:
    raise ValueError(f"need 1 <= splits <= num_samples, got splits={splits}, N={num_samples}")
  return np.array([i * num_samples // splits for i in range(splits + 1)], np.int64)


def inception_score(logits, splits: int = 10):
  """Inception score over `splits` contiguous splits (Salimans et al. 2016): (mean, std).

  Each split's score is TF-GAN's `classifier_score_from_logits`; std is the population std
  (ddof=0) over splits, as in the original code. Samples must be in random order.
  Args:
    logits: [N, classes] classifier logits (Inception: 1008 classes).
  """
  logits = np.asarray(logits, np.float64)
  if logits.ndim != 2:
    raise ValueError(f"logits must be [N, classes], got {logits.shape}")
  bounds = split_bounds(len(logits), splits)
  scores = np.array([classifier_score(logits[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])])
  return float(np.mean(scores)), float(np.std(scores))


def kernel_inception_distance(acts_a, acts_b, max_block_size: int = 1024):
  """KID (Binkowski et al. 2018) with TF-GAN's block estimator: (mean, std error), float64.

  `tfgan.eval.kernel_classifier_distance_and_std_from_activations`: cubic polynomial kernel,
  unbiased MMD^2 per block of contiguous samples (so both sets must be in random order); the
  second value is TF-GAN's estimate of the standard error of the mean, NaN with a single block.
  """
  a, b = np.asarray(acts_a), np.asarray(acts_b)  # cast to float64 inside TF-GAN, once
  if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
    raise ValueError(f"activations must be [N, D] with equal D, got {a.shape} and {b.shape}")
  num_blocks = -(-max(len(a), len(b)) // max_block_size)
  if min(len(a), len(b)) < 2 * num_blocks:
    raise ValueError(f"KID needs at least 2 samples per block in each set: {len(a)} and "
                     f"{len(b)} samples for {num_blocks} blocks of at most {max_block_size}")
  _check_finite("activations", a, b)
  mean, std = tfgan.eval.kernel_classifier_distance_and_std_from_activations(
      tf.constant(a), tf.constant(b), max_block_size=max_block_size, dtype=tf.float64)
  return float(mean), float(std)


def improved_precision_recall(real_features, fake_features, k: int = 3, block: int = 512):
  """Improved precision and recall (Kynkaanniemi et al. 2019): (precision, recall).

  Each sample's manifold ball has the radius of its k-th nearest neighbour within its own set
  (the sample itself excluded). Precision = fraction of fake samples inside some real ball;
  recall = fraction of real samples inside some fake ball. Euclidean distances in float64
  (float32 features cast block by block, exactly), in tiles of `block` rows and 4 * `block`
  columns: besides the inputs, memory is one float64 row strip [block, N].
  """
  real, fake = np.asarray(real_features), np.asarray(fake_features)
  if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
    raise ValueError(f"features must be [N, D] with equal D, got {real.shape} and {fake.shape}")
  if min(len(real), len(fake)) <= k:
    raise ValueError(f"precision/recall with k={k} needs more than {k} samples per set")
  _check_finite("features", real, fake)
  real_radii2 = _kth_neighbour_sq_radii(real, k, block)  # [N_real]
  fake_radii2 = _kth_neighbour_sq_radii(fake, k, block)  # [N_fake]
  fake_covered = np.zeros(len(fake), bool)
  real_covered = np.zeros(len(real), bool)
  for lo, d2 in _sq_distance_strips(real, fake, block):  # d2: [b, N_fake]
    fake_covered |= np.any(d2 <= real_radii2[lo:lo + len(d2), None], axis=0)
    real_covered[lo:lo + len(d2)] = np.any(d2 <= fake_radii2[None, :], axis=1)
  return float(np.mean(fake_covered)), float(np.mean(real_covered))


def _kth_neighbour_sq_radii(x, k, block):
  radii = np.empty(len(x))
  for lo, d2 in _sq_distance_strips(x, x, block):  # d2: [b, N]
    rows = np.arange(len(d2))
    d2[rows, lo + rows] = -1.0  # the sample itself sorts first, whatever round-off gave it
    radii[lo:lo + len(d2)] = np.partition(d2, k, axis=1)[:, k]
  return radii


def _sq_distance_strips(a, b, block):
  """Yields (row offset, squared distances [block, N_b] float64) over row strips of `a`."""
  b_norms = np.einsum("ij,ij->i", b, b, dtype=np.float64)  # [N_b]
  strip = np.empty((min(block, len(a)), len(b)))
  for lo in range(0, len(a), block):
    rows = a[lo:lo + block].astype(np.float64)  # [b, D]
    d2 = strip[:len(rows)]
    for col in range(0, len(b), 4 * block):
      cols = b[col:col + 4 * block].astype(np.float64)  # [c, D]
      np.matmul(rows, cols.T, out=d2[:, col:col + len(cols)])
    d2 *= -2.0
    d2 += np.einsum("ij,ij->i", rows, rows)[:, None]
    d2 += b_norms[None, :]
    np.maximum(d2, 0.0, out=d2)
    yield lo, d2


def _symmetric_sqrt(sigma):
  """Returns (sigma^(1/2), numerical rank) of a symmetric PSD matrix via eigh, negatives -> 0."""
  eigenvalues, eigenvectors = scipy.linalg.eigh((sigma + sigma.T) / 2.0)
  root = np.sqrt(_drop_round_off(eigenvalues))
  return (eigenvectors * root[None, :]) @ eigenvectors.T, _numerical_rank(eigenvalues)


def _rank_tolerance(eigenvalues):
  """numpy's matrix_rank tolerance: max|lambda| * D * eps."""
  return np.max(np.abs(eigenvalues)) * len(eigenvalues) * np.finfo(np.float64).eps


def _numerical_rank(eigenvalues):
  return int(np.sum(eigenvalues > _rank_tolerance(eigenvalues)))


def _drop_round_off(eigenvalues):
  """Eigenvalues at or below the rank tolerance are round-off of exact zeros: set them to 0.

  Taking their square roots instead would add ~sqrt(eps * max) per null direction, which over
  the ~2000 null directions of an undersampled 2048-d covariance shifts FID by ~1e-5 relative.
  """
  return np.where(eigenvalues > _rank_tolerance(eigenvalues), eigenvalues, 0.0)


def _warn_if_undersampled(n_a, n_b, dim):
  if min(n_a, n_b) <= dim:
    _log.warning(
        "FID with %d and %d samples of %d-dimensional features: the covariances are singular. "
        "The value is finite but biased: compare it only with values from the same sample counts "
        "(the standard protocol uses 50000 samples).", n_a, n_b, dim)


def _check_finite(what, *arrays):
  for array in arrays:
    if not np.all(np.isfinite(array)):
      raise ValueError(f"{what} contain NaN or Inf; the classifier or the samples are broken")


def _finite_float(value, what):
  value = float(value)
  if not np.isfinite(value):
    raise FloatingPointError(f"{what} is not finite ({value}) despite finite inputs")
  return value
