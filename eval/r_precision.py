"""R-precision of text-to-image samples (Xu et al. 2018, sec. 5) under named protocols, streamed.

Each generated image queries its candidate captions: the caption it was generated from plus 99
mismatching ones. With global DAMSM features, the candidates are ranked by the cosine of the image
vector with each sentence vector; with R = 1 the query scores 1 when its true caption ranks first.
The published numbers come from incompatible protocols, so each is a name (recorded with the score):

  paper   AttnGAN as published: the 99 mismatching captions are drawn at random, without
          replacement, from captions of OTHER images (pass image ids as keys). Mean over all
          queries; std over consecutive groups of 100 queries (the paper's +/- 4.43 at 67.82% is
          the binomial spread of a mean over 100 queries, sqrt(p (1 - p) / 100) = 4.7%).
  dmgan   DM-GAN's code, the de-facto reference: negatives from other CLASSES on CUB (pass class
          ids as keys) or other images on COCO (pass image ids), drawn with replacement as its
          rejection loop does; the per-query results are shuffled and cut into 10 folds; mean and
          std (ddof 0) over the fold means. DM-GAN averages R[i*3000 : (i+1)*3000 - 1], 2,999 of
          each fold's 3,000 (an off-by-one): here every query counts, in folds of N//10 or N//10+1.

Ties: a query scores 1 / (1 + t) when t negatives tie with the true caption and none beats it
(the expectation of a random tie-break). Real features essentially never tie; a collapsed encoder
(all cosines equal) then scores chance, 1/100, instead of DM-GAN's argmax-first 1.0.

Streaming: `RPrecisionAccumulator.update` takes batches of (image features, true caption features,
keys); negatives come from a fixed pool of candidate caption features (all test captions, about
30k x 256 float32 = 30 MB for CUB) or per query from the caller. Memory beyond the pool is 4 bytes
per query. Draws use one seeded stream consumed query by query, so results depend on the seed and
the query order, never on how the queries are batched.
"""
import collections
import dataclasses

import numpy as np

from eval import metrics

_EPS = 1e-8


@dataclasses.dataclass(frozen=True)
class RPrecisionProtocol:
  """How candidates are drawn and how the spread is reported."""
  name: str
  keys: str  # what the caller's keys must identify for negatives to be "mismatching"
  num_negatives: int = 99  # candidates = 1 + num_negatives, R = 1
  with_replacement: bool = False
  group_size: int = 0  # > 0: std over consecutive groups of this many queries
  folds: int = 0  # > 0: std over this many folds of shuffled queries


PROTOCOLS = {
    "paper": RPrecisionProtocol(name="paper", keys="image ids", group_size=100),
    "dmgan": RPrecisionProtocol(name="dmgan", keys="class ids (CUB) or image ids (COCO)",
                                with_replacement=True, folds=10),
}

RPrecisionResult = collections.namedtuple("RPrecisionResult", ["mean", "std", "protocol", "values"])
RPrecisionResult.__doc__ = """mean, std: floats in [0, 1]; protocol: a JSON-able dict describing
how they were computed (record it with the score); values: the per-group or per-fold precisions."""


def get_protocol(protocol) -> RPrecisionProtocol:
  if isinstance(protocol, RPrecisionProtocol):
    return protocol
  if protocol not in PROTOCOLS:
    raise ValueError(f"unknown R-precision protocol {protocol!r}; known: {sorted(PROTOCOLS)}")
  return PROTOCOLS[protocol]


def _normalise(x):
  x = np.asarray(x, np.float32)
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), _EPS)


class RPrecisionAccumulator:
  """Streams queries; holds the normalised candidate pool and one float per query.

  Args:
    protocol: "paper", "dmgan" or an RPrecisionProtocol.
    pool_features: [P, D] candidate caption (sentence) features; None if every update passes
      its own negatives.
    pool_keys: [P] int keys of the pool captions (image ids or class ids, see the protocol).
    seed: seeds the negative draws and the fold shuffle.
  """

  def __init__(self, protocol="paper", pool_features=None, pool_keys=None, seed=0):
    self.protocol = get_protocol(protocol)
    self.seed = int(seed)
    self._pool = None
    if pool_features is not None:
      self._pool = _normalise(pool_features)  # [P, D]
      self._pool_keys = np.asarray(pool_keys).reshape(-1)  # [P]
      if self._pool.ndim != 2 or len(self._pool_keys) != len(self._pool):
        raise ValueError(f"pool_features must be [P, D] with P pool_keys, got "
                         f"{self._pool.shape} and {self._pool_keys.shape}")
    self._rng = np.random.default_rng([self.seed, 0])
    self._credits = []  # float32 arrays, one per update
    self.count = 0

  def update(self, image_features, caption_features, keys=None, negative_features=None):
    """Scores one batch of queries.

    Args:
      image_features: [B, D] global image features of the generated images.
      caption_features: [B, D] sentence features of the captions they were generated from.
      keys: [B] ints: a pool caption with the same key is never a negative (needed with a pool).
      negative_features: optional [B, num_negatives, D] mismatching captions chosen by the caller;
        the pool is not used then.
    """
    image = _normalise(image_features)  # [B, D]
    caption = _normalise(caption_features)  # [B, D]
    if image.ndim != 2 or image.shape != caption.shape:
      raise ValueError(f"need image and caption features [B, D], got {image.shape}, "
                       f"{caption.shape}")
    if negative_features is None:
      if self._pool is None:
        raise ValueError("no candidate pool: pass pool_features or negative_features")
      if keys is None:
        raise ValueError("keys are needed to draw mismatching captions from the pool")
      keys = np.asarray(keys).reshape(-1)
      if len(keys) != len(image):
        raise ValueError(f"need one key per query, got {len(keys)} for {len(image)}")
      negatives = self._pool[np.stack([self._draw(k) for k in keys])] if len(keys) else (
          np.zeros((0, self.protocol.num_negatives, image.shape[1]), np.float32))
    else:
      negatives = _normalise(negative_features)
      if negatives.shape != (len(image), self.protocol.num_negatives, image.shape[1]):
        raise ValueError(f"negative_features must be [B, {self.protocol.num_negatives}, D], got "
                         f"{negatives.shape}")
    true_score = np.sum(image * caption, axis=-1)  # [B]
    negative_scores = np.einsum("bd,bkd->bk", image, negatives)  # [B, K]
    beaten = np.any(negative_scores > true_score[:, None], axis=1)
    ties = np.sum(negative_scores == true_score[:, None], axis=1)
    self._credits.append(np.where(beaten, 0.0, 1.0 / (1.0 + ties)).astype(np.float32))
    self.count += len(image)

  def _draw(self, key):
    """Indices of num_negatives pool captions whose key differs from `key` (rejection sampling)."""
    k = self.protocol.num_negatives
    chosen = np.empty(0, np.int64)
    for _ in range(1000):
      candidates = self._rng.integers(0, len(self._pool), size=2 * k)
      candidates = candidates[self._pool_keys[candidates] != key]
      chosen = np.concatenate([chosen, candidates])
      if not self.protocol.with_replacement:
        _, first = np.unique(chosen, return_index=True)
        chosen = chosen[np.sort(first)]  # distinct, in draw order
      if len(chosen) >= k:
        return chosen[:k]
    eligible = int(np.sum(self._pool_keys != key))
    raise ValueError(f"could not draw {k} mismatching captions for key {key!r}: the pool has "
                     f"{eligible} captions with another key")

  def result(self) -> RPrecisionResult:
    if self.count == 0:
      raise ValueError("R-precision of no queries")
    credits = np.concatenate(self._credits).astype(np.float64)  # [N]
    p = self.protocol
    if p.folds:
      order = np.random.default_rng([self.seed, 1]).permutation(len(credits))
      bounds = metrics.split_bounds(len(credits), min(p.folds, len(credits)))
      spread = f"std (ddof 0) over {len(bounds) - 1} folds of shuffled queries"
      values = np.array([credits[order[a:b]].mean() for a, b in zip(bounds[:-1], bounds[1:])])
      mean = float(values.mean())
    else:
      bounds = metrics.split_bounds(len(credits), max(1, len(credits) // p.group_size))
      spread = f"std (ddof 0) over {len(bounds) - 1} groups of ~{p.group_size} queries"
      values = np.array([credits[a:b].mean() for a, b in zip(bounds[:-1], bounds[1:])])
      mean = float(credits.mean())
    description = {
        "name": p.name,
        "candidates": 1 + p.num_negatives,
        "r": 1,
        "negatives": f"mismatching captions with another key ({p.keys})",
        "negatives_with_replacement": p.with_replacement,
        "similarity": "cosine of global image and sentence features",
        "ties": "1 / (1 + tied negatives)",
        "spread": spread,
        "num_queries": int(self.count),
        "pool_size": None if self._pool is None else int(len(self._pool)),
        "seed": self.seed,
    }
    return RPrecisionResult(mean, float(values.std()), description, values)

  @property
  def nbytes(self) -> int:
    """Bytes held: the pool and the per-query credits."""
    pool = 0 if self._pool is None else self._pool.nbytes + self._pool_keys.nbytes
    return pool + sum(c.nbytes for c in self._credits)


def r_precision(image_features, caption_features, keys, pool_features, pool_keys,
                protocol="paper", seed=0, batch_size=1000) -> RPrecisionResult:
  """R-precision of in-memory features: the accumulator fed in batches of `batch_size`."""
  acc = RPrecisionAccumulator(protocol, pool_features, pool_keys, seed)
  keys = np.asarray(keys)
  for start in range(0, len(image_features), batch_size):
    end = start + batch_size
    acc.update(image_features[start:end], caption_features[start:end], keys[start:end])
  return acc.result()
