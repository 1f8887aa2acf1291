"""YLG patterns against the official definitions (rewritten here as index loops), plus ESA and the
Information Flow Graph facts of the paper."""
import math

import numpy as np
import pytest

from tfgan_attention import patterns
from tfgan_attention.patterns import esa_order, has_full_information, ylg_masks


# --- The official masks.py / ops.py, restated loop by loop (index lists, then a 0/1 tensor). ---

def _official_1d(kind, n):
  s = math.floor(math.sqrt(n))
  idx = []
  for row in range(n):
    if kind in ("left_floor", "right_floor"):
      for col in range(row - row % s, row + 1):
        idx.append((row, col) if kind == "left_floor" else (col, row))
    elif kind in ("left_repetitive", "right_repetitive"):
      idx.append((row, row))
      shift = 0 if kind == "left_repetitive" else s - 1
      idx += [(row, col - shift) for col in range(n) if col % s >= s - 1]
    elif kind == "strided_mask1":
      idx += [(row, col) for col in range(max(0, row - s + 1), row + 1)]
    elif kind == "strided_mask2":
      idx += [(row, col) for col in range(n) if abs(row - col) % s == 0]
  m = np.zeros((n, n), np.float32)
  for r, c in idx:
    m[r, c] = 1
  return m


def _official_enumeration(rows, cols):
  by_distance = {}
  for i in range(rows):
    for j in range(cols):
      by_distance.setdefault(i + j, []).append((i, j))
  cells = [c for d in sorted(by_distance) for c in by_distance[d]]
  return dict(enumerate(cells))


def _official_grid_mask(kind, key_grid, query_grid):
  rows, cols = key_grid
  n = rows * cols
  enum = _official_enumeration(rows, cols)
  square = [(enum[a][0] * cols + enum[a][1], enum[b][0] * cols + enum[b][1])
            for a, b in zip(*np.nonzero(_official_1d(kind, n)))]
  blocks = (query_grid[0] * query_grid[1]) // n
  m = np.zeros((n * blocks, n), np.float32)
  for block in range(blocks):  # the official code stacks the square indices with row offsets
    for x, y in square:
      m[x + block * n, y] = 1
  return m


def _official_heads(key_grid, query_grid):
  kinds = ["right_floor", "right_repetitive"] * 2 + ["left_floor", "left_repetitive"] * 2
  return np.stack([_official_grid_mask(k, key_grid, query_grid) for k in kinds])


@pytest.mark.parametrize("query_grid", [(16, 16), (32, 32)])
def test_ylg_masks_reproduce_official_on_16x16_keys(query_grid):
  got = ylg_masks((16, 16), query_grid)
  assert got.shape == (8, query_grid[0] * query_grid[1], 256) and got.dtype == np.float32
  np.testing.assert_array_equal(got, _official_heads((16, 16), query_grid))


def test_one_dimensional_steps_match_official():
  for n in (9, 16, 256):
    for step, official in [("left_floor", "left_floor"), ("right_floor", "right_floor"),
                           ("left_repetitive", "left_repetitive"),
                           ("right_repetitive", "right_repetitive"),
                           ("strided_window", "strided_mask1"),
                           ("strided_stride_full", "strided_mask2")]:
      np.testing.assert_array_equal(patterns.step_mask_1d(step, n), _official_1d(official, n) > 0)
  # The paper's 9x9 example (s = 3): RTL step 1 is the transposed LTR step 1, block by block.
  np.testing.assert_array_equal(
      patterns.step_mask_1d("right_floor", 9)[:3, :3], [[1, 1, 1], [0, 1, 1], [0, 0, 1]])
  np.testing.assert_array_equal(
      patterns.step_mask_1d("left_repetitive", 9)[4], [0, 0, 1, 0, 1, 1, 0, 0, 1])
  np.testing.assert_array_equal(
      patterns.step_mask_1d("right_repetitive", 9)[4], [1, 0, 0, 1, 1, 0, 1, 0, 0])


def test_right_repetitive_skips_incomplete_last_block_like_official():
  # n = 10, s = 3: block ends are 2, 5, 8; the official code shifts them to 0, 3, 6 (not 9).
  np.testing.assert_array_equal(patterns.step_mask_1d("right_repetitive", 10),
                                _official_1d("right_repetitive", 10) > 0)
  assert not patterns.step_mask_1d("right_repetitive", 10)[0, 9]


def test_fixed_and_original_strided_are_child_et_al():
  fixed = patterns.pattern_masks_1d("fixed", 9)
  np.testing.assert_array_equal(fixed[1][8], [0, 0, 1, 0, 0, 1, 0, 0, 1])
  np.testing.assert_array_equal(fixed[1][1], np.zeros(9))  # no block end yet
  strided = patterns.pattern_masks_1d("strided_original", 9)
  np.testing.assert_array_equal(strided[0][5], [0, 0, 0, 1, 1, 1, 0, 0, 0])
  np.testing.assert_array_equal(strided[1][5], [0, 0, 1, 0, 0, 1, 0, 0, 0])
  ext = patterns.pattern_masks_1d("strided", 9)
  np.testing.assert_array_equal(ext[0][5], [0, 0, 0, 1, 1, 1, 1, 1, 0])
  np.testing.assert_array_equal(ext[1][5], [0, 0, 1, 0, 0, 1, 0, 0, 1])


def test_full_information_of_the_paper_patterns_on_16x16():
  for name in ("ltr", "rtl", "strided"):
    masks = patterns.pattern_masks_1d(name, 256)
    info = has_full_information(masks)
    assert info and info.full and info.unreachable.shape == (0, 2), name
  # Placed on the grid with ESA (a permutation of rows and columns) they keep it.
  grid = ylg_masks((16, 16))
  assert has_full_information(grid[0:2]) and has_full_information(grid[4:6])
  # The opposite step order does not have it.
  assert not has_full_information(patterns.pattern_masks_1d("ltr", 256)[::-1])
  assert not has_full_information(patterns.pattern_masks_1d("rtl", 256)[::-1])


def test_patterns_without_full_information_report_unreachable_pairs():
  fixed = has_full_information(patterns.pattern_masks_1d("fixed", 9))
  assert not fixed
  pairs = {tuple(p) for p in fixed.unreachable}
  # Paper fig. 2d: no path from node 0 of V0 to node 1 of V2.
  assert (0, 1) in pairs and (0, 2) not in pairs
  # Fixed: input a reaches output b iff b >= end of a's block (s = 3).
  expected = {(a, b) for a in range(9) for b in range(9) if b < a - a % 3 + 2}
  assert pairs == expected
  assert not has_full_information(patterns.pattern_masks_1d("fixed", 256))
  assert not has_full_information(patterns.pattern_masks_1d("strided_original", 256))
  # The official StridedMask1 + StridedMask2 pair misses only the last s - 1 inputs.
  official = has_full_information(patterns.pattern_masks_1d("strided_official", 256))
  assert not official and set(official.unreachable[:, 0]) == set(range(241, 256))


def test_has_full_information_on_hand_graph():
  eye = np.eye(3)
  info = has_full_information([eye, eye])
  assert not info
  assert sorted(map(tuple, info.unreachable)) == [(a, b) for a in range(3) for b in range(3)
                                                   if a != b]
  cycle = np.array([[1, 0, 1], [1, 1, 0], [0, 1, 1]])  # q attends q and q - 1 (mod 3)
  assert sorted(map(tuple, has_full_information([cycle]).unreachable)) == [(0, 2), (1, 0), (2, 1)]
  assert has_full_information([cycle, cycle])


def test_esa_order():
  order = esa_order(4, 4)
  assert order[:6].tolist() == [[0, 0], [0, 1], [1, 0], [0, 2], [1, 1], [2, 0]]
  assert order[-1].tolist() == [3, 3]
  assert sorted(map(tuple, order)) == [(i, j) for i in range(4) for j in range(4)]
  assert esa_order(2, 3).tolist() == [[0, 0], [0, 1], [1, 0], [0, 2], [1, 1], [1, 2]]
  assert {i: tuple(c) for i, c in enumerate(esa_order(5, 3))} == _official_enumeration(5, 3)


def test_grid_mapping_esa_and_raster():
  m1d = patterns.step_mask_1d("left_floor", 16)
  # No ESA on a square grid: the raster placement is the 1-D mask itself.
  np.testing.assert_array_equal(patterns.grid_mask(m1d, (4, 4), esa=False), m1d)
  esa = patterns.grid_mask(m1d, (4, 4))
  # ESA positions 0..3 are cells (0,0), (0,1), (1,0), (0,2) = raster 0, 1, 4, 2: the first block.
  first = [0, 1, 4, 2]
  for tq, rq in enumerate(first):
    assert sorted(np.nonzero(esa[rq])[0].tolist()) == sorted(first[:tq + 1])


def test_nonsquare_tile_and_shift():
  sq = ylg_masks((4, 4))  # [8, 16, 16]
  tile = ylg_masks((4, 4), (8, 8))
  shift = ylg_masks((4, 4), (8, 8), nonsquare="shift")
  r = np.arange(64)
  np.testing.assert_array_equal(tile, sq[:, r % 16])
  np.testing.assert_array_equal(shift, sq[:, (r // 8 % 4) * 4 + r % 8 % 4])
  # The official tiling quirk: query (0, 4) takes the mask row of key cell (1, 0).
  np.testing.assert_array_equal(tile[:, 4], sq[:, 4])
  np.testing.assert_array_equal(shift[:, 4], sq[:, 0])


def test_layouts_and_bad_arguments():
  assert patterns.head_steps("ylg") == ("right_floor", "right_repetitive") * 2 + (
      "left_floor", "left_repetitive") * 2
  assert patterns.head_steps("strided") == ("strided_window_full", "strided_stride_full") * 4
  with pytest.raises(ValueError, match="unknown head layout"):
    patterns.head_steps("nope")
  with pytest.raises(ValueError, match="multiple of 16"):
    ylg_masks((4, 4), (6, 6))
  with pytest.raises(ValueError, match="whole number"):
    ylg_masks((4, 4), (6, 8), nonsquare="shift")
