"""Real-statistics cache: keyed reuse, invalidation, atomic files, corrupt files recomputed."""
import os

import numpy as np

from eval import real_stats_cache


def _stats(seed):
  rng = np.random.RandomState(seed)
  return real_stats_cache.RealStats(
      5, rng.normal(size=3), np.eye(3) * seed, rng.normal(size=(4, 3)).astype(np.float32))


class _Compute:
  def __init__(self, seed=1):
    self.calls, self.seed = 0, seed

  def __call__(self):
    self.calls += 1
    return _stats(self.seed)


def test_second_call_reads_the_cache(tmp_path):
  key = {"dataset": "toy", "split": "test", "num_real_samples_requested": 5}
  compute = _Compute()
  first, cached = real_stats_cache.load_or_compute(str(tmp_path), key, compute)
  assert not cached and compute.calls == 1
  second, cached = real_stats_cache.load_or_compute(str(tmp_path), dict(key), compute)
  assert cached and compute.calls == 1
  for a, b in zip(first, second):
    np.testing.assert_array_equal(a, b)
  assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []


def test_any_key_change_recomputes(tmp_path):
  key = {"dataset": "toy", "split": "test", "classifier_hash": "sha256:aa"}
  compute = _Compute()
  real_stats_cache.load_or_compute(str(tmp_path), key, compute)
  for changed in ({"split": "train"}, {"classifier_hash": "sha256:ab"}, {"extra": 1}):
    real_stats_cache.load_or_compute(str(tmp_path), {**key, **changed}, compute)
  assert compute.calls == 4
  assert len(os.listdir(tmp_path)) == 4


def test_corrupt_or_foreign_file_is_recomputed(tmp_path):
  key = {"dataset": "toy", "split": "test"}
  path = real_stats_cache.cache_path(str(tmp_path), key)
  os.makedirs(tmp_path, exist_ok=True)
  with open(path, "wb") as f:
    f.write(b"not an npz")
  compute = _Compute()
  _, cached = real_stats_cache.load_or_compute(str(tmp_path), key, compute)
  assert not cached and compute.calls == 1
  _, cached = real_stats_cache.load_or_compute(str(tmp_path), key, compute)
  assert cached and compute.calls == 1


def test_no_cache_dir_always_computes():
  compute = _Compute()
  for _ in range(2):
    _, cached = real_stats_cache.load_or_compute(None, {"dataset": "toy"}, compute)
    assert not cached
  assert compute.calls == 2
