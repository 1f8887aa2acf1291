"""Truly sparse YLG attention: only allowed query-key pairs, O(N sqrt N) memory and FLOPs.

Every YLG step mask is a union of a few *structured candidate sets* in the 1-D pattern order
(ESA or raster) of the key grid, with block size s (the stride) and nb = n / s blocks:

  ("block", offsets)  queries of block b see key blocks b + o   (floor: (0,); window: (-1, 0, 1))
  ("residue",)        a query at position t sees the nb keys at positions = t mod s  (stride)
  ("column", c)       every query sees the nb keys at positions = c mod s  (repetitive, Fixed)
  ("self",)           a query at position t sees the key at t  (repetitive)

Queries are sorted by pattern position (stable, so the f = Nq / n queries that share a position,
e.g. the 4 tiles of SAGAN's 32x32 queries over 16x16 keys, sit together) and keys permuted into
pattern order; then each set is a batched matmul over contiguous blocks, never an [Nq, Nk] tensor.
An exact static mask over the candidates [n, K] (from the 1-D step mask, duplicates across sets
removed) excludes the rest with -inf. `build_sparse_plan` checks that the candidates cover each
step mask exactly, so the result equals dense masked attention up to float rounding.

Speed (issue #27): heads whose steps use the same kinds of sets are one batch (YLG's four floor
heads, RTL and LTR, are one group; a column set may take a different column per head); heads,
queries and keys reach that order through one gather per tensor whose gradient is the inverse
gather (tf.gather's own is a segment sum); the mask is added (+0 / -inf) rather than selected;
the same-block set needs no pad or concat and the self key no repeat. With heads_last the
inputs and output are [B, N, heads, d], as a 1x1 convolution gives them: no head transposes.
"""
import collections
import dataclasses

import numpy as np
import tensorflow as tf

from tfgan_attention import patterns

# Candidate sets that cover each 1-D step (see the module docstring).
STEP_CANDIDATES = {
    "left_floor": (("block", (0,)),),
    "right_floor": (("block", (0,)),),
    "left_repetitive": (("column", -1), ("self",)),
    "right_repetitive": (("column", 0), ("self",)),
    "fixed_columns": (("column", -1),),
    "strided_window": (("block", (-1, 0)),),
    "strided_window_full": (("block", (-1, 0, 1)),),
    "strided_stride": (("residue",),),
    "strided_stride_full": (("residue",),),
}

# Compact per-head attention: weights [B, heads, Nq, K] (exactly 0 at padding) for the keys
# key_index [heads, Nq, K] (raster key index, -1 = padding); queries in raster order.
CompactAttention = collections.namedtuple("CompactAttention", ["weights", "key_index"])


@dataclasses.dataclass(frozen=True)
class HeadGroup:
  """Heads whose steps use the same kinds of candidate sets, computed as one batch."""
  heads: tuple  # head indices in the layer
  candidates: tuple  # candidate sets; a column set has one column per head: ("column", (c, ...))
  valid: np.ndarray  # bool [h, Nq, K], canonical query order
  key_index: np.ndarray  # int32 [h, Nq, K], raster key index, -1 where not valid
  sizes: tuple  # K of each candidate set


@dataclasses.dataclass(frozen=True)
class SparsePlan:
  """Static index plan of a YLG layer for one (query grid, key grid)."""
  num_keys: int  # n
  stride: int  # s, divides n
  copies: int  # f = Nq / n, queries per pattern position
  key_order: np.ndarray  # int32 [n], raster key index at pattern position t
  query_sort: np.ndarray  # int32 [Nq], raster query index at canonical index i = t * f + c
  query_unsort: np.ndarray  # int32 [Nq], inverse of query_sort
  groups: tuple  # HeadGroup per distinct kind of candidate sets
  head_order: np.ndarray  # int32 [heads], head index at each position of the group concatenation
  head_unsort: np.ndarray  # int32 [heads], inverse of head_order
  max_candidates: int  # K of the compact attention


def _candidate_keys(cand, n, s):
  """Pattern positions of one candidate set, int [n, K] (-1: none), in `_gather_keys` order."""
  nb, t = n // s, np.arange(n)
  if cand[0] == "block":
    cols = []
    for o in cand[1]:
      kb = t // s + o  # [n]
      c = kb[:, None] * s + np.arange(s)[None, :]
      cols.append(np.where(((kb >= 0) & (kb < nb))[:, None], c, -1))
    return np.concatenate(cols, axis=1)
  if cand[0] == "residue":
    return (t % s)[:, None] + s * np.arange(nb)[None, :]
  if cand[0] == "column":
    return np.broadcast_to(cand[1] % s + s * np.arange(nb), (n, nb))
  if cand[0] == "self":
    return t[:, None]
  raise ValueError(f"unknown candidate set {cand!r}")


def _step_valid(mask_1d, cands, s):
  """Exact candidate mask bool [n, K] and positions [n, K]; checks it covers `mask_1d` once."""
  n = mask_1d.shape[0]
  keys = np.concatenate([_candidate_keys(c, n, s) for c in cands], axis=1)  # [n, K]
  valid = np.zeros(keys.shape, bool)
  seen = np.zeros((n, n), bool)
  rows = np.arange(n)
  for j in range(keys.shape[1]):
    k = np.maximum(keys[:, j], 0)
    valid[:, j] = (keys[:, j] >= 0) & mask_1d[rows, k] & ~seen[rows, k]
    seen[rows[valid[:, j]], k[valid[:, j]]] = True
  if not np.array_equal(seen, mask_1d):
    raise AssertionError(f"candidate sets {cands} do not cover the step mask")
  return valid, keys


def _kind(cands):
  """Candidate sets without their column index: steps of one kind are batched together."""
  return tuple(c[:1] if c[0] == "column" else c for c in cands)


def build_sparse_plan(key_grid, query_grid, layout="ylg", esa=True, nonsquare="tile", stride=None):
  """The static plan for `sparse_attention`; arguments as `patterns.ylg_masks`.

  Raises ValueError if the stride does not divide the key count or a query would see no key.
  """
  key_order, query_pos = patterns.grid_positions(key_grid, query_grid, esa, nonsquare)
  n, nq = len(key_order), len(query_pos)
  s = patterns.default_stride(n) if stride is None else int(stride)
  if n % s:
    raise ValueError(f"the sparse YLG path needs the stride {s} to divide the {n} key positions; "
                     "pass a dividing stride or use implementation='dense'")
  f = nq // n
  if np.bincount(query_pos, minlength=n).tolist() != [f] * n:
    raise ValueError("every pattern position must have the same number of queries")
  query_sort = np.argsort(query_pos, kind="stable")
  steps = patterns.head_steps(layout)
  per_step = {}  # step -> (valid [Nq, K], raster key index [Nq, K])
  for step in dict.fromkeys(steps):
    mask = patterns.step_mask_1d(step, n, s)
    if not mask.any(axis=1).all():
      raise ValueError(f"step {step!r} leaves some queries without any key")
    valid, keys = _step_valid(mask, STEP_CANDIDATES[step], s)
    raster = np.where(valid, key_order[np.maximum(keys, 0)], -1)
    per_step[step] = np.repeat(valid, f, axis=0), np.repeat(raster, f, axis=0).astype(np.int32)
  kinds = {}  # kind -> heads, first-seen order
  for h, step in enumerate(steps):
    kinds.setdefault(_kind(STEP_CANDIDATES[step]), []).append(h)
  groups = []
  for kind, heads in kinds.items():
    cands = tuple(("column", tuple(STEP_CANDIDATES[steps[h]][i][1] % s for h in heads))
                  if c[0] == "column" else c for i, c in enumerate(kind))
    sizes = tuple(_candidate_keys(c, n, s).shape[1] for c in STEP_CANDIDATES[steps[heads[0]]])
    groups.append(HeadGroup(tuple(heads), cands,
                            np.stack([per_step[steps[h]][0] for h in heads]),
                            np.stack([per_step[steps[h]][1] for h in heads]), sizes))
  order = [h for gr in groups for h in gr.heads]
  return SparsePlan(
      num_keys=n, stride=s, copies=f, key_order=key_order.astype(np.int32),
      query_sort=query_sort.astype(np.int32),
      query_unsort=np.argsort(query_sort).astype(np.int32), groups=tuple(groups),
      head_order=np.array(order, np.int32), head_unsort=np.argsort(order).astype(np.int32),
      max_candidates=max(g.valid.shape[2] for g in groups))


def _permute(t, index):
  """t [B, M, ...] gathered on axis 1 by a permutation `index` [M] (numpy); the gradient is the
  inverse gather, a copy (tf.gather's own gradient is a segment sum)."""
  index = np.asarray(index)
  if np.array_equal(index, np.arange(len(index))):
    return t
  inverse = np.argsort(index)

  @tf.custom_gradient
  def permute(x):
    return tf.gather(x, index, axis=1), lambda dy: tf.gather(dy, inverse, axis=1)
  return permute(t)


def _gather_keys(t, cand, plan):
  """Candidate keys/values of one set, from t [B, h, n, d] in pattern order."""
  s, f = plan.stride, plan.copies
  nb = plan.num_keys // s
  d = t.shape[-1]
  if cand[0] == "block":
    blocks = tf.reshape(t, [-1, t.shape[1], nb, s, d])  # [B, h, nb, s, d]
    if cand[1] == (0,):
      return blocks
    w = max(abs(o) for o in cand[1])
    padded = tf.pad(blocks, [[0, 0], [0, 0], [w, w], [0, 0], [0, 0]])  # [B, h, nb + 2w, s, d]
    return tf.concat([padded[:, :, w + o:w + o + nb] for o in cand[1]], axis=3)  # [B,h,nb,K,d]
  if cand[0] == "residue":
    return tf.transpose(tf.reshape(t, [-1, t.shape[1], nb, s, d]), [0, 1, 3, 2, 4])  # [B,h,s,nb,d]
  if cand[0] == "column":  # one column per head, runs of equal columns sliced together
    runs, start = [], 0
    cols = cand[1]
    for i in range(1, len(cols) + 1):
      if i == len(cols) or cols[i] != cols[start]:
        runs.append(t[:, start:i, cols[start]::s])  # [B, run, nb, d]
        start = i
    return runs[0] if len(runs) == 1 else tf.concat(runs, axis=1)  # [B, h, nb, d]
  return t  # self: [B, h, n, d], matched to the f queries of each position by broadcasting


def _logits(q, keys, cand, plan):
  """Logits [B, h, Nq, K] of canonical queries q [B, h, Nq, d] against one candidate set."""
  s, f = plan.stride, plan.copies
  nb, h, d = plan.num_keys // s, q.shape[1], q.shape[-1]
  if cand[0] == "block":
    qb = tf.reshape(q, [-1, h, nb, s * f, d])  # queries of block b are contiguous
    return tf.reshape(tf.matmul(qb, keys, transpose_b=True), [-1, h, nb * s * f, keys.shape[3]])
  if cand[0] == "residue":
    qr = tf.transpose(tf.reshape(q, [-1, h, nb, s, f, d]), [0, 1, 3, 2, 4, 5])  # [B,h,s,nb,f,d]
    lr = tf.matmul(tf.reshape(qr, [-1, h, s, nb * f, d]), keys, transpose_b=True)  # [B,h,s,nb*f,nb]
    lr = tf.transpose(tf.reshape(lr, [-1, h, s, nb, f, nb]), [0, 1, 3, 2, 4, 5])
    return tf.reshape(lr, [-1, h, nb * s * f, nb])
  if cand[0] == "column":
    return tf.matmul(q, keys, transpose_b=True)  # [B, h, Nq, nb]
  qs = tf.reshape(q, [-1, h, plan.num_keys, f, d])  # self: [B, h, n, f, d]
  return tf.reshape(tf.reduce_sum(qs * keys[:, :, :, None], axis=-1), [-1, h, q.shape[2], 1])


def _weighted_values(p, values, cand, plan):
  """Sum of candidate values weighted by p [B, h, Nq, K]: [B, h, Nq, dv]."""
  s, f = plan.stride, plan.copies
  nb, h, dv = plan.num_keys // s, p.shape[1], values.shape[-1]
  if cand[0] == "block":
    pb = tf.reshape(p, [-1, h, nb, s * f, p.shape[-1]])
    return tf.reshape(tf.matmul(pb, values), [-1, h, nb * s * f, dv])
  if cand[0] == "residue":
    pr = tf.transpose(tf.reshape(p, [-1, h, nb, s, f, nb]), [0, 1, 3, 2, 4, 5])
    o = tf.matmul(tf.reshape(pr, [-1, h, s, nb * f, nb]), values)  # [B, h, s, nb * f, dv]
    o = tf.transpose(tf.reshape(o, [-1, h, s, nb, f, dv]), [0, 1, 3, 2, 4, 5])
    return tf.reshape(o, [-1, h, nb * s * f, dv])
  if cand[0] == "column":
    return tf.matmul(p, values)
  ps = tf.reshape(p, [-1, h, plan.num_keys, f, 1])  # self
  return tf.reshape(ps * values[:, :, :, None], [-1, h, p.shape[2], dv])


def _group_index(plan, positions, heads_last):
  """Flat gather index [heads * m] taking [B, heads, m, d] (or [B, m, heads, d] if heads_last),
  reshaped to [B, heads * m, d], to group-ordered heads and `positions`-ordered rows."""
  h, m = len(plan.head_order), len(positions)
  rows = positions[None, :].astype(np.int64)
  heads = plan.head_order[:, None].astype(np.int64)
  return (rows * h + heads if heads_last else heads * m + rows).reshape(-1)


def _to_groups(t, plan, positions, heads_last):
  """[B, heads, m, d] (or heads_last) -> [B, heads, m, d], heads in group order, rows in
  `positions` order: one gather."""
  nh, m, d = len(plan.head_order), len(positions), t.shape[-1]
  flat = _permute(tf.reshape(t, [-1, nh * m, d]), _group_index(plan, positions, heads_last))
  return tf.reshape(flat, [-1, nh, m, d])


def _from_groups(ts, plan, heads_last):
  """Group outputs [B, h_g, Nq, d] (canonical queries) -> [B, heads, Nq, d] (or [B, Nq, heads,
  d] if heads_last), raster queries, layer head order: the inverse of the queries' gather."""
  nh, nq, d = len(plan.head_order), len(plan.query_sort), ts[0].shape[-1]
  t = ts[0] if len(ts) == 1 else tf.concat(ts, axis=1)  # [B, heads, Nq, d]
  index = np.argsort(_group_index(plan, plan.query_sort, heads_last))
  flat = _permute(tf.reshape(t, [-1, nh * nq, d]), index)
  return tf.reshape(flat, [-1, nq, nh, d] if heads_last else [-1, nh, nq, d])


def sparse_attention(theta, phi, g, plan, return_attention=False, heads_last=False):
  """Masked multi-head attention over the allowed pairs of `plan` only.

  Args:
    theta: queries [B, heads, Nq, d], raster query order.
    phi: keys [B, heads, n, d], raster key order.
    g: values [B, heads, n, dv], raster key order.
    plan: a SparsePlan for these grids.
    return_attention: also return a CompactAttention.
    heads_last: theta, phi, g and out are [B, N, heads, d] instead (no head transposes needed
      around a 1x1 convolution's [B, H, W, heads * d]).
  Returns:
    out [B, heads, Nq, dv] ([B, Nq, heads, dv] if heads_last) in raster query order (and the
    CompactAttention, [B, heads, Nq, K] either way).
  """
  # Heads into group order (each group a contiguous slice), queries sorted, keys in pattern
  # order: one permuting gather per tensor.
  q = _to_groups(theta, plan, plan.query_sort, heads_last)  # [B, heads, Nq, d]
  k = _to_groups(phi, plan, plan.key_order, heads_last)  # [B, heads, n, d]
  v = _to_groups(g, plan, plan.key_order, heads_last)  # [B, heads, n, dv]
  sizes = [len(gr.heads) for gr in plan.groups]
  split = lambda t: tf.split(t, sizes, axis=1) if len(sizes) > 1 else [t]
  outs, weights = [], []
  for group, qh, kh, vh in zip(plan.groups, split(q), split(k), split(v)):
    logits, start = [], 0
    for c, size in zip(group.candidates, group.sizes):
      part = _logits(qh, _gather_keys(kh, c, plan), c, plan)  # [B, h, Nq, size]
      valid = group.valid[..., start:start + size]
      start += size
      if not valid.all():  # + 0 or -inf: exactly tf.where(valid, part, -inf); per set, so a
        part += tf.constant(np.where(valid, 0.0, -np.inf), part.dtype)  # full set adds nothing
      logits.append(part)
    logits = logits[0] if len(logits) == 1 else tf.concat(logits, axis=-1)  # [B, h, Nq, K]
    p = tf.nn.softmax(logits, axis=-1)  # [B, h, Nq, K], exactly 0 where not valid
    parts = tf.split(p, group.sizes, axis=-1) if len(group.sizes) > 1 else [p]
    outs.append(tf.add_n([_weighted_values(pc, _gather_keys(vh, c, plan), c, plan)
                          for pc, c in zip(parts, group.candidates)]))  # [B, h, Nq, dv]
    if return_attention:
      pad = plan.max_candidates - sum(group.sizes)
      weights.append(tf.pad(p, [[0, 0], [0, 0], [0, 0], [0, pad]]))  # [B, h, Nq, K_max]
  out = _from_groups(outs, plan, heads_last)
  if not return_attention:
    return out
  return out, CompactAttention(_from_groups(weights, plan, False),
                               tf.constant(compact_key_index(plan)))


def compact_key_index(plan):
  """int32 [heads, Nq, K]: raster key index of each compact attention entry, -1 = padding."""
  pad = lambda a: np.pad(a, [(0, 0), (0, plan.max_candidates - a.shape[1])], constant_values=-1)
  stacked = np.concatenate([[pad(k) for k in gr.key_index] for gr in plan.groups])  # group order
  return stacked[plan.head_unsort][:, plan.query_unsort]


def densify_attention(compact, num_keys):
  """CompactAttention -> dense per-head attention [B, heads, Nq, num_keys] (for inspection).

  Memory is that of the dense map: use it on small grids or slices.
  """
  w, idx = compact.weights, compact.key_index  # [B, H, Nq, K], [H, Nq, K]
  heads, nq, kk = idx.shape
  flat = tf.reshape(tf.cast(idx, tf.int32), [heads * nq, kk])  # [H * Nq, K]
  rows = tf.range(heads * nq)[:, None] * num_keys  # [H * Nq, 1]
  seg = tf.reshape(tf.where(flat >= 0, rows + flat, heads * nq * num_keys), [-1])  # -1 -> dropped
  data = tf.transpose(tf.reshape(w, [-1, heads * nq * kk]))  # [H * Nq * K, B]
  dense = tf.math.unsorted_segment_sum(data, seg, heads * nq * num_keys + 1)[:-1]
  return tf.transpose(tf.reshape(dense, [heads, nq, num_keys, -1]), [3, 0, 1, 2])
