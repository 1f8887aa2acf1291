"""On-disk cache of real-data statistics, keyed by a hash of everything that affects them.

Real images go through Inception once per key, not once per checkpoint: `load_or_compute`
returns the cached `RealStats` when `<cache_dir>/real_stats_<key>.npz` exists and its stored key
parts equal the requested ones, else computes, writes (atomically) and returns them. The key is
the sha256 of the canonical JSON of the key parts; callers put in it every input that changes
the numbers: dataset, split, resolution, preprocessing, classifier hash and resize method,
sample count, feature subset size and seed (see `eval.evaluate`).
"""
import hashlib
import io
import json
import logging
import os
from typing import Callable, NamedTuple, Optional, Tuple

import numpy as np

from data import atomic_io

_log = logging.getLogger(__name__)
FORMAT_VERSION = 1  # bump when the meaning or layout of the stored arrays changes


class RealStats(NamedTuple):
  """What the metrics need from the real data; nothing grows with the dataset beyond `features`.

  num_samples: how many real images were used.
  mean: [D] float64 pool_3 mean. covariance: [D, D] float64, unbiased.
  features: [min(N, subset), D] float32 pool_3 rows kept for KID and precision/recall.
  """
  num_samples: int
  mean: np.ndarray
  covariance: np.ndarray
  features: np.ndarray


def cache_key(key_parts: dict) -> str:
  """Hex sha256 of the canonical JSON of `key_parts` (plus the format version)."""
  return hashlib.sha256(_canonical_json(key_parts).encode("utf8")).hexdigest()


def cache_path(cache_dir: str, key_parts: dict) -> str:
  return os.path.join(cache_dir, f"real_stats_{cache_key(key_parts)[:32]}.npz")


def load_or_compute(cache_dir: Optional[str], key_parts: dict,
                    compute: Callable[[], RealStats]) -> Tuple[RealStats, bool]:
  """Returns (stats, came_from_cache). With cache_dir None, always computes and stores nothing."""
  if cache_dir is None:
    return compute(), False
  path = cache_path(cache_dir, key_parts)
  stats = _read(path, key_parts)
  if stats is not None:
    return stats, True
  stats = compute()
  buffer = io.BytesIO()
  np.savez(buffer, key_json=np.array(_canonical_json(key_parts)),
           num_samples=np.array(stats.num_samples, np.int64), mean=stats.mean,
           covariance=stats.covariance, features=stats.features)
  atomic_io.atomic_write_bytes(path, buffer.getvalue())
  _log.info("Wrote real-data statistics of %d samples to %s", stats.num_samples, path)
  return stats, False


def _read(path, key_parts):
  if not os.path.exists(path):
    return None
  try:
    with np.load(path, allow_pickle=False) as data:
      if str(data["key_json"]) != _canonical_json(key_parts):
        _log.warning("Ignoring %s: its key parts differ from the requested ones", path)
        return None
      return RealStats(int(data["num_samples"]), data["mean"], data["covariance"],
                       data["features"])
  except (OSError, ValueError, KeyError) as e:
    _log.warning("Ignoring unreadable real-statistics cache %s: %s", path, e)
    return None


def _canonical_json(key_parts):
  return json.dumps({"format_version": FORMAT_VERSION, **key_parts}, sort_keys=True,
                    separators=(",", ":"), default=str)
