"""YLG's sparse attention patterns (Daras et al. 2020, sec. 3): 1-D two-step masks, ESA, grid masks.

Convention: a mask M is boolean [n_queries, n_keys]; M[q, k] = True means query q may attend key k.
Positions of a 1-D pattern are t = 0..n-1; the stride is s = floor(sqrt(n)) unless given
(the official code's default, computed from the number of keys).

1-D step masks (the official `masks.py` definitions, written independently):
  left_floor          s*floor(q/s) <= k <= q                 LTR step 1 (also Fixed step 1)
  left_repetitive     k == q  or  k mod s == s-1             LTR step 2
  right_floor         same block as q and k >= q             RTL step 1
  right_repetitive    k == q  or  k is a block start whose block is complete (k mod s == 0 and
                      k + s - 1 < n; the official code derives it from the block ends)  RTL step 2
  fixed_columns       k <= q  and  k mod s == s-1            Fixed step 2 (Child et al. 2019, c = 1)
  strided_window      q - s < k <= q                         Strided step 1 (official StridedMask1)
  strided_stride      k <= q  and  (q - k) mod s == 0        Strided step 2, causal (Child et al.)
  strided_window_full |q - k| < s                            extended Strided step 1
  strided_stride_full |q - k| mod s == 0                     extended Strided step 2 (StridedMask2)

Two-step patterns (PATTERNS): ltr, rtl (Full Information), fixed (the original, without),
strided_original (Child et al., without), strided (the paper's Full Information extension, used by
YLG - Strided). The extension makes both steps bi-directional, as LTR does to Fixed. The official
code's StridedMask1 + StridedMask2 pair only makes step 2 bi-directional; that pair misses the last
s - 1 inputs (their causal window reaches no later position) and is kept as `strided_official`.

Grids: `esa_order` enumerates cells by Manhattan distance from (0, 0), ties to the smaller row
(ESA, sec. 3.2); `raster_order` is the plain reshape (the No-ESA ablation). A 1-D mask maps to a
grid by M2d[raster(order[tq]), raster(order[tk])] = M1d[tq, tk]. Query grids larger than the key
grid (SAGAN: 32x32 queries, 16x16 pooled keys) use the official tiling M[r, k] = M_sq[r mod n, k]
over raster query index r (`nonsquare="tile"`, default), or the paper's block shift: query (i, j)
takes the mask row of key cell (i mod Hk, j mod Wk) (`nonsquare="shift"`).
"""
import dataclasses
import math

import numpy as np


def default_stride(n):
  """The official stride: floor(sqrt(n)) for n key positions."""
  return math.isqrt(int(n))


def _qk(n):
  q = np.arange(n)[:, None]  # [n, 1]
  k = np.arange(n)[None, :]  # [1, n]
  return q, k


def _left_floor(n, s):
  q, k = _qk(n)
  return (k >= q - q % s) & (k <= q)


def _right_floor(n, s):
  return _left_floor(n, s).T


def _left_repetitive(n, s):
  q, k = _qk(n)
  return (k == q) | (k % s == s - 1)


def _right_repetitive(n, s):
  q, k = _qk(n)
  return (k == q) | ((k % s == 0) & (k + s - 1 < n))


def _fixed_columns(n, s):
  q, k = _qk(n)
  return (k <= q) & (k % s == s - 1)


def _strided_window(n, s):
  q, k = _qk(n)
  return (k > q - s) & (k <= q)


def _strided_stride(n, s):
  q, k = _qk(n)
  return (k <= q) & ((q - k) % s == 0)


def _strided_window_full(n, s):
  q, k = _qk(n)
  return np.abs(q - k) < s


def _strided_stride_full(n, s):
  q, k = _qk(n)
  return np.abs(q - k) % s == 0


STEP_MASKS = {
    "left_floor": _left_floor,
    "left_repetitive": _left_repetitive,
    "right_floor": _right_floor,
    "right_repetitive": _right_repetitive,
    "fixed_columns": _fixed_columns,
    "strided_window": _strided_window,
    "strided_stride": _strided_stride,
    "strided_window_full": _strided_window_full,
    "strided_stride_full": _strided_stride_full,
}

PATTERNS = {
    "ltr": ("left_floor", "left_repetitive"),
    "rtl": ("right_floor", "right_repetitive"),
    "fixed": ("left_floor", "fixed_columns"),
    "strided": ("strided_window_full", "strided_stride_full"),
    "strided_original": ("strided_window", "strided_stride"),
    "strided_official": ("strided_window", "strided_stride_full"),
}


def step_mask_1d(step, n, stride=None):
  """One named 1-D step mask, bool [n, n]."""
  if step not in STEP_MASKS:
    raise ValueError(f"unknown mask step {step!r}; known: {sorted(STEP_MASKS)}")
  s = default_stride(n) if stride is None else int(stride)
  if not 1 <= s <= n:
    raise ValueError(f"stride must be in [1, n={n}], got {s}")
  return STEP_MASKS[step](int(n), s)


def pattern_masks_1d(pattern, n, stride=None):
  """The steps of a two-step pattern, bool [2, n, n] (step 1 first)."""
  if pattern not in PATTERNS:
    raise ValueError(f"unknown pattern {pattern!r}; known: {sorted(PATTERNS)}")
  return np.stack([step_mask_1d(step, n, stride) for step in PATTERNS[pattern]])


def head_steps(layout="ylg"):
  """The 1-D step of each of the 8 heads.

  "ylg" is the official order: heads 0-3 RTL (floor, repetitive, floor, repetitive), heads 4-7
  LTR (same). Any other pattern name (e.g. "strided" for YLG - Strided) repeats that pattern's two
  steps over the 8 heads.
  """
  if layout == "ylg":
    return PATTERNS["rtl"] * 2 + PATTERNS["ltr"] * 2
  if layout in PATTERNS:
    return PATTERNS[layout] * 4
  raise ValueError(f"unknown head layout {layout!r}; known: 'ylg', {sorted(PATTERNS)}")


def esa_order(rows, cols):
  """ESA enumeration: int [rows * cols, 2], position t -> (row, col).

  Cells sorted by Manhattan distance from (0, 0), ties to the smaller row. For 4x4:
  (0,0), (0,1), (1,0), (0,2), (1,1), (2,0), ...
  """
  cells = [(i, j) for i in range(rows) for j in range(cols)]
  return np.array(sorted(cells, key=lambda c: (c[0] + c[1], c[0])), dtype=np.int64)


def raster_order(rows, cols):
  """Plain reshape enumeration: int [rows * cols, 2], t -> (t // cols, t % cols)."""
  t = np.arange(rows * cols)
  return np.stack([t // cols, t % cols], axis=1)


def grid_positions(key_grid, query_grid=None, esa=True, nonsquare="tile"):
  """Where grid cells sit in a 1-D pattern.

  Args:
    key_grid: (Hk, Wk); the 1-D pattern has n = Hk * Wk positions.
    query_grid: (Hq, Wq), default the key grid.
    esa: ESA enumeration (True) or raster order (False, the No-ESA ablation).
    nonsquare: "tile" (official: raster query r takes square row r mod n; needs n | Hq * Wq) or
      "shift" (paper: query (i, j) takes the row of key cell (i mod Hk, j mod Wk); needs Hk | Hq and
      Wk | Wq). Both are the identity when the grids are equal.
  Returns:
    key_order: int [n], raster key index of pattern position t.
    query_pos: int [Hq * Wq], pattern position of each raster query index.
  """
  hk, wk = (int(v) for v in key_grid)
  hq, wq = (hk, wk) if query_grid is None else (int(v) for v in query_grid)
  n, nq = hk * wk, hq * wq
  cells = esa_order(hk, wk) if esa else raster_order(hk, wk)
  key_order = cells[:, 0] * wk + cells[:, 1]  # [n]
  pos = np.argsort(key_order)  # [n], raster key index -> pattern position
  if nonsquare == "tile":
    if nq % n:
      raise ValueError(f"nonsquare='tile' needs the query count {nq} to be a multiple of {n}")
    row = np.arange(nq) % n
  elif nonsquare == "shift":
    if hq % hk or wq % wk:
      raise ValueError(f"nonsquare='shift' needs the query grid {hq}x{wq} to be a whole number "
                       f"of key grids {hk}x{wk}")
    i, j = np.arange(nq) // wq, np.arange(nq) % wq
    row = (i % hk) * wk + j % wk
  else:
    raise ValueError(f"nonsquare must be 'tile' or 'shift', got {nonsquare!r}")
  return key_order, pos[row]


def grid_mask(mask_1d, key_grid, query_grid=None, esa=True, nonsquare="tile"):
  """A 1-D mask [n, n] placed on grids: bool [Hq * Wq, Hk * Wk] over raster indices."""
  key_order, query_pos = grid_positions(key_grid, query_grid, esa, nonsquare)
  n = len(key_order)
  if mask_1d.shape != (n, n):
    raise ValueError(f"mask shape {mask_1d.shape} does not match the {n} key cells")
  pos = np.argsort(key_order)  # [n], raster key -> pattern position
  return mask_1d[np.ix_(query_pos, pos)]


def ylg_masks(key_grid, query_grid=None, layout="ylg", esa=True, nonsquare="tile", stride=None):
  """The 8 head masks of a YLG attention layer, float32 0/1 [8, Hq * Wq, Hk * Wk].

  The stack the official `get_grid_masks(gridO=query_grid, gridI=key_grid)` builds for
  layout="ylg", esa=True, nonsquare="tile". See `head_steps` for layouts and `grid_positions` for
  the grid arguments.
  """
  n = int(key_grid[0]) * int(key_grid[1])
  steps = head_steps(layout)
  cache = {name: grid_mask(step_mask_1d(name, n, stride), key_grid, query_grid, esa, nonsquare)
           for name in set(steps)}
  return np.stack([cache[name] for name in steps]).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class InformationFlow:
  """Result of `has_full_information`; truthy iff every input reaches every output.

  unreachable: int [m, 2], rows (input a, output b) with no directed path a -> b.
  """
  full: bool
  unreachable: np.ndarray

  def __bool__(self):
    return self.full


def has_full_information(step_masks):
  """Information Flow Graph check (paper sec. 3.1) for masks applied one after another.

  Step i's mask M_i [n_out, n_in] joins node k of layer V^(i-1) to node q of V^i when query q
  attends key k, so information reaches output b from input a iff (M_p ... M_1)[b, a] > 0.
  """
  reach = None
  for m in step_masks:
    m = np.asarray(m) > 0
    reach = m.astype(np.int64) if reach is None else (m.astype(np.int64) @ reach > 0)
    reach = reach.astype(np.int64)
  b, a = np.nonzero(reach == 0)
  return InformationFlow(full=a.size == 0, unreachable=np.stack([a, b], axis=1))
