"""Streaming accumulators against whole-array numpy / TF-GAN computations."""
import numpy as np
import pytest
import scipy.special
import tensorflow as tf
import tensorflow_gan as tfgan

from eval import metrics
from eval import streaming


def _uneven_batches(array, sizes=(1, 7, 64, 3, 100)):
  start, i = 0, 0
  while start < len(array):
    size = sizes[i % len(sizes)]
    yield array[start:start + size]
    start, i = start + size, i + 1


def test_moments_match_numpy_with_large_offset():
  rng = np.random.RandomState(0)
  x = rng.normal(size=(1000, 12)) * rng.uniform(0.1, 3, size=12) + 1e4  # catastrophic if naive
  acc = streaming.MomentAccumulator(12)
  for batch in _uneven_batches(x.astype(np.float32)):
    acc.update(batch)
  x32 = x.astype(np.float32).astype(np.float64)
  assert acc.count == 1000
  np.testing.assert_allclose(acc.mean, x32.mean(0), rtol=1e-12)
  np.testing.assert_allclose(acc.covariance, np.cov(x32, rowvar=False), rtol=1e-8, atol=1e-10)


def test_split_scores_match_tfgan_and_numpy():
  logits = np.random.RandomState(1).normal(0, 2.5, size=(997, 40)).astype(np.float32)
  acc = streaming.SplitScoreAccumulator(997, 10, 40)
  for batch in _uneven_batches(logits):  # batches straddle split boundaries
    acc.update(batch)
  tfgan_value = float(tfgan.eval.classifier_score_from_logits(tf.constant(logits, tf.float64)))
  assert acc.overall_score() == pytest.approx(tfgan_value, rel=1e-6)
  p = scipy.special.softmax(logits.astype(np.float64), axis=1)
  expected = []
  for i in range(10):
    part = p[i * 997 // 10:(i + 1) * 997 // 10]
    kl = np.sum(part * (np.log(part) - np.log(part.mean(0, keepdims=True))), axis=1)
    expected.append(np.exp(kl.mean()))
  np.testing.assert_allclose(acc.split_scores(), expected, rtol=1e-6)
  mean, std = metrics.inception_score(logits, splits=10)
  assert np.mean(acc.split_scores()) == pytest.approx(mean, rel=1e-9)
  assert np.std(acc.split_scores()) == pytest.approx(std, rel=1e-9)


def test_split_scores_refuse_incomplete_or_extra_samples():
  acc = streaming.SplitScoreAccumulator(20, 2, 5)
  acc.update(np.zeros([15, 5]))
  with pytest.raises(ValueError, match="15 of the announced 20"):
    acc.overall_score()
  with pytest.raises(ValueError, match="more than the announced"):
    acc.update(np.zeros([6, 5]))


def test_reservoir_keeps_everything_below_capacity_in_order():
  x = np.arange(60, dtype=np.float32).reshape(30, 2)
  reservoir = streaming.FeatureReservoir(capacity=50, dim=2, seed=0, expected_total=30)
  for batch in _uneven_batches(x):
    reservoir.update(batch)
  np.testing.assert_array_equal(reservoir.features, x)
  assert reservoir.nbytes == 30 * 2 * 4


def test_reservoir_is_bounded_and_uniform():
  capacity, total, trials = 50, 500, 400
  hits = np.zeros(total)
  for seed in range(trials):
    reservoir = streaming.FeatureReservoir(capacity, 1, seed=seed, expected_total=total)
    for batch in _uneven_batches(np.arange(total, dtype=np.float32)[:, None]):
      reservoir.update(batch)
    kept = reservoir.features[:, 0].astype(int)
    assert len(kept) == capacity and len(set(kept)) == capacity
    assert reservoir.nbytes == capacity * 4  # fixed whatever the stream length
    hits[kept] += 1
  rate = hits / trials  # each index should be kept with probability capacity / total = 0.1
  for part in np.split(rate, 10):  # early, middle and late stream positions alike
    assert part.mean() == pytest.approx(0.1, abs=0.012)


def test_reservoir_grows_if_more_rows_than_announced():
  reservoir = streaming.FeatureReservoir(capacity=10, dim=1, seed=0, expected_total=3)
  reservoir.update(np.arange(8, dtype=np.float32)[:, None])
  np.testing.assert_array_equal(reservoir.features[:, 0], np.arange(8))
