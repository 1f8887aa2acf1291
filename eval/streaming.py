"""Streaming accumulators: metrics over 50k samples without holding images or activations.

Memory each one keeps, independent of the number of samples streamed through it:
  MomentAccumulator     float64 mean [D] and centred sum of outer products [D, D] (FID).
                        D = 2048: 32 MB.
  SplitScoreAccumulator per split, float64 sum of p(y|x) [C] and of sum_y p log p (Inception
                        score, TF-GAN's single value and the Salimans et al. splits).
                        10 splits x 1008 classes: 80 kB.
  FeatureReservoir      a uniform random subset of at most `capacity` feature rows (KID,
                        precision/recall), float32. 10000 x 2048: 80 MB.
"""
import numpy as np
import scipy.special

from eval import metrics


class MomentAccumulator:
  """Running float64 mean and covariance (Chan et al. pairwise merge of batch moments)."""

  def __init__(self, dim: int):
    self.count = 0
    self._mean = np.zeros(dim, np.float64)
    self._m2 = np.zeros((dim, dim), np.float64)  # sum of centred outer products

  def update(self, batch) -> None:
    x = np.asarray(batch, np.float64)  # [B, D]
    if x.ndim != 2 or x.shape[1] != self._mean.shape[0]:
      raise ValueError(f"expected [B, {self._mean.shape[0]}] features, got {x.shape}")
    n_b = x.shape[0]
    if n_b == 0:
      return
    mean_b = x.mean(axis=0)
    centred = x - mean_b
    delta = mean_b - self._mean
    total = self.count + n_b
    self._m2 += centred.T @ centred + np.outer(delta, delta) * (self.count * n_b / total)
    self._mean += delta * (n_b / total)
    self.count = total

  @property
  def mean(self) -> np.ndarray:
    return self._mean.copy()

  @property
  def covariance(self) -> np.ndarray:
    """Unbiased (N - 1) covariance [D, D], as TF-GAN's FID uses."""
    if self.count < 2:
      raise ValueError(f"covariance needs at least 2 samples, got {self.count}")
    return self._m2 / (self.count - 1)


class SplitScoreAccumulator:
  """Inception score of a known number of samples, overall and per contiguous split.

  log IS = E_x[sum_y p log p] - sum_y q log q with q = E_x[p]: the same quantity as
  exp(E_x KL(p || q)) that TF-GAN computes (its streaming variant uses these sums too). Split i
  holds samples [i*N//S, (i+1)*N//S) in arrival order, as `metrics.inception_score`.
  """

  def __init__(self, num_samples: int, splits: int, num_classes: int):
    self._bounds = metrics.split_bounds(num_samples, splits)
    self._sum_p = np.zeros((splits, num_classes), np.float64)
    self._sum_plogp = np.zeros(splits, np.float64)
    self.count = 0

  def update(self, logits) -> None:
    logits = np.asarray(logits, np.float64)  # [B, C]
    if logits.ndim != 2 or logits.shape[1] != self._sum_p.shape[1]:
      raise ValueError(f"expected [B, {self._sum_p.shape[1]}] logits, got {logits.shape}")
    if self.count + len(logits) > self._bounds[-1]:
      raise ValueError(f"more than the announced {self._bounds[-1]} samples")
    log_p = scipy.special.log_softmax(logits, axis=1)
    p = np.exp(log_p)
    plogp = np.sum(p * log_p, axis=1)  # [B]
    index = self.count + np.arange(len(logits))
    split = np.searchsorted(self._bounds, index, side="right") - 1  # [B]
    np.add.at(self._sum_p, split, p)
    np.add.at(self._sum_plogp, split, plogp)
    self.count += len(logits)

  def overall_score(self) -> float:
    """TF-GAN's Inception score (`classifier_score_from_logits`) of all samples: one value."""
    self._check_complete()
    return _score(self._sum_p.sum(0), self._sum_plogp.sum(), self.count)

  def split_scores(self) -> np.ndarray:
    """Scores of the splits [S]; report mean and std (ddof=0)."""
    self._check_complete()
    sizes = np.diff(self._bounds)
    return np.array([_score(sp, spl, n) for sp, spl, n in zip(self._sum_p, self._sum_plogp, sizes)])

  def _check_complete(self):
    if self.count != self._bounds[-1]:
      raise ValueError(f"saw {self.count} of the announced {self._bounds[-1]} samples")


def _score(sum_p, sum_plogp, n):
  q = sum_p / n
  q_log_q = np.sum(np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0))
  return float(np.exp(sum_plogp / n - q_log_q))


class FeatureReservoir:
  """A uniform random subset of at most `capacity` rows of a stream (reservoir sampling, Alg. R).

  While fewer than `capacity` rows have arrived, it holds all of them in arrival order; after
  that, row i replaces a random slot with probability capacity / (i + 1). The buffer is
  allocated once at min(capacity, expected_total) rows, so memory is fixed from the start.
  """

  def __init__(self, capacity: int, dim: int, seed: int, expected_total: int = None):
    if capacity < 1:
      raise ValueError(f"capacity must be positive, got {capacity}")
    rows = capacity if expected_total is None else min(capacity, expected_total)
    self._buffer = np.empty((rows, dim), np.float32)
    self._capacity = capacity
    self._rng = np.random.default_rng(seed)
    self.count = 0

  def update(self, batch) -> None:
    batch = np.asarray(batch, np.float32)  # [B, D]
    if batch.ndim != 2 or batch.shape[1] != self._buffer.shape[1]:
      raise ValueError(f"expected [B, {self._buffer.shape[1]}] features, got {batch.shape}")
    for row in batch:
      if self.count < self._capacity:
        if self.count == len(self._buffer):  # more rows than expected_total announced
          self._buffer = np.concatenate([self._buffer, np.empty_like(self._buffer)])[
              :self._capacity]
        self._buffer[self.count] = row
      else:
        slot = self._rng.integers(0, self.count + 1)
        if slot < self._capacity:
          self._buffer[slot] = row
      self.count += 1

  @property
  def features(self) -> np.ndarray:
    """The kept rows [min(count, capacity), D] (a view; copy before modifying)."""
    return self._buffer[:min(self.count, self._capacity)]

  @property
  def nbytes(self) -> int:
    return self._buffer.nbytes
