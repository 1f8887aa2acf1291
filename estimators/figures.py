"""--mode=attention_maps: each head's attention drawn over the generated image, as PNG grids,
for any model whose ModelSpec returns attention maps (`ModelSpec.attention`).

From a checkpoint (the latest by default; the EMA generator when the run has one) or from a
SavedModel's 'attention' signature. Per map the model returns:

  [B, heads, N] per-token weights (LadaGAN paper Figure 6): attention_<side>x<side>.png, a row
      per sample: the image, then one overlay per head.
  [B, heads, Nq, Nk] query-key matrices (SAGAN, YLG-SAGAN):
      saliency_<key side>x<key side>.png: a row per sample: the image, then each head's
        saliency, the attention each key position receives averaged over all queries (YLG
        paper Figure 5d/e; it sums to 1 over the keys);
      queries_<query side>x<query side>_<i>.png, one per sample: a row per head: the image with
        the query points as coloured squares, then for each query point the head's attention
        row (its distribution over the keys) with that point's marker (SAGAN paper Figures 1
        and 5, YLG Figure 6 d-f).

Overlays: the weights scaled to their maximum, nearest-resized from the token grid to the image,
over the dimmed image (blue = low, red = high). Query points are (row, col) fractions of the
image in [0, 1] (--query_points=0.5:0.5,...), each mapped to the query-grid cell that holds it.
attention_maps.json records the points, their cells and the inputs. Files are written atomically.
"""
import os

import numpy as np
import tensorflow as tf

from estimators import export, run_dir
from estimators.evaluation import use_ema
from estimators.models import get_model
from estimators.summaries import attention_heat_maps

MAX_SAMPLES = 16
# SAGAN Figure 1 draws five query points: the centre and the four quarter points.
DEFAULT_QUERY_POINTS = ((0.25, 0.25), (0.25, 0.75), (0.5, 0.5), (0.75, 0.25), (0.75, 0.75))
MARKER_COLOURS = ((1.0, 1.0, 0.0), (0.0, 1.0, 0.0), (0.0, 1.0, 1.0), (1.0, 0.0, 1.0),
                  (1.0, 1.0, 1.0), (1.0, 0.55, 0.0), (0.6, 0.3, 1.0), (0.5, 1.0, 0.5))


def parse_query_points(values):
  """['0.25:0.5', ...] (row:col fractions of the image, in [0, 1]) -> ((0.25, 0.5), ...).
  Empty or None -> DEFAULT_QUERY_POINTS."""
  if not values:
    return DEFAULT_QUERY_POINTS
  points = []
  for text in values:
    parts = str(text).split(":")
    try:
      point = tuple(float(p) for p in parts)
    except ValueError:
      point = ()
    if len(point) != 2 or not all(0.0 <= p <= 1.0 for p in point):
      raise ValueError(f"query point {text!r} is not row:col with both fractions of the image "
                       "in [0, 1], e.g. 0.5:0.5 for the centre")
    points.append(point)
  if len(points) > len(MARKER_COLOURS):
    raise ValueError(f"{len(points)} query points; at most {len(MARKER_COLOURS)} (one marker "
                     "colour each)")
  return tuple(points)


def query_cells(points, side):
  """(row, col) fractions -> (row, col) cells of a side x side grid (1.0 -> the last cell)."""
  return [tuple(min(int(f * side), side - 1) for f in point) for point in points]


def saliency(matrix):
  """Query-key attention [..., Nq, Nk] -> [..., Nk]: each key's attention averaged over all
  queries (YLG sec. 5; sums to 1 over the keys when the rows do)."""
  return np.mean(matrix, axis=-2)


def query_rows(matrix, points):
  """matrix [B, heads, Nq, Nk] on a square query grid -> the rows of `points` [B, heads, Q, Nk]
  and the query cells they came from."""
  side = _side(matrix.shape[-2])
  cells = query_cells(points, side)
  return matrix[:, :, [r * side + c for r, c in cells], :], cells


def _side(n):
  side = int(round(np.sqrt(n)))
  if side * side != n:
    raise ValueError(f"attention over {n} positions is not a square grid")
  return side


def heat_map(weights, image_size):
  """Weights [side * side] -> [S, S] in [0, 1]: scaled to its maximum, nearest-resized."""
  side = _side(weights.shape[-1])
  grid = np.reshape(weights, (side, side)) / (np.max(weights) + 1e-12)
  index = (np.arange(image_size) * side) // image_size
  return grid[index][:, index].astype(np.float32)


def overlay(image, heat):
  """An image [S, S, 3] in [-1, 1] with a heat map [S, S] in [0, 1] blended over it, in [-1, 1]."""
  gray = np.repeat(np.mean(image, axis=-1, keepdims=True), 3, axis=-1) * 0.5  # dimmed
  colour = np.stack([heat, 0.25 * heat, 1.0 - heat], axis=-1) * 2.0 - 1.0  # blue -> red
  return np.clip(0.5 * gray + 0.5 * colour, -1.0, 1.0).astype(np.float32)


def draw_marker(image, cell, side, colour):
  """A copy of image [S, S, 3] in [-1, 1] with a square in `colour` (RGB in [0, 1]) outlined in
  black over query-grid cell (row, col) of a side x side grid."""
  out = np.array(image, np.float32)
  size = out.shape[0]
  radius = max(1, size // 32)
  centre = [int((c + 0.5) * size / side) for c in cell]
  lo = [max(0, c - radius - 1) for c in centre]
  hi = [min(size, c + radius + 2) for c in centre]
  out[lo[0]:hi[0], lo[1]:hi[1]] = -1.0  # outline
  out[lo[0] + 1:hi[0] - 1, lo[1] + 1:hi[1] - 1] = np.asarray(colour, np.float32) * 2.0 - 1.0
  return out


def attention_grid(images, maps, image_size):
  """images [N, S, S, 3], maps [N, heads, side * side] -> one grid [N * S, (1 + heads) * S, 3]."""
  tiles = []
  for image, per_head in zip(images, maps):
    heat = attention_heat_maps(tf.constant(per_head), image_size).numpy()  # [heads, S, S, 1]
    tiles.append(image)
    tiles.extend(overlay(image, h[..., 0]) for h in heat)
  return run_dir.grid(np.stack(tiles), 1 + maps.shape[1])


def query_figure(image, rows, cells, query_side):
  """One sample's query maps: image [S, S, 3], rows [heads, Q, Nk], cells Q query-grid cells ->
  [heads * S, (1 + Q) * S, 3]: per head, the image with every marker, then each point's map."""
  size = image.shape[0]
  marked = image
  for i, cell in enumerate(cells):
    marked = draw_marker(marked, cell, query_side, MARKER_COLOURS[i])
  tiles = []
  for per_query in rows:
    tiles.append(marked)
    for i, (weights, cell) in enumerate(zip(per_query, cells)):
      tiles.append(draw_marker(overlay(image, heat_map(weights, size)), cell, query_side,
                               MARKER_COLOURS[i]))
  return run_dir.grid(np.stack(tiles), 1 + len(cells))


def write_figures(images, maps, image_size, out_dir, query_points=DEFAULT_QUERY_POINTS):
  """Writes the PNGs of every map (module docstring) and returns (paths, {map: query cells})."""
  paths, cells_of = [], {}
  for name in sorted(maps, key=lambda k: (maps[k].shape[-1], k)):  # coarse to fine
    matrix = np.asarray(maps[name])
    if matrix.ndim == 3:  # [B, heads, N] per-token weights
      side = _side(matrix.shape[-1])
      path = os.path.join(out_dir, f"{name.split('_')[0]}_{side}x{side}.png")
      run_dir.write_png(path, attention_grid(images, matrix, image_size))
      paths.append(path)
      continue
    if matrix.ndim != 4:
      raise ValueError(f"attention map {name!r} has shape {matrix.shape}; expected [B, heads, N]"
                       " or [B, heads, Nq, Nk]")
    key_side, query_side = _side(matrix.shape[-1]), _side(matrix.shape[-2])
    path = os.path.join(out_dir, f"saliency_{key_side}x{key_side}.png")
    run_dir.write_png(path, attention_grid(images, saliency(matrix), image_size))
    paths.append(path)
    rows, cells = query_rows(matrix, query_points)
    cells_of[name] = cells
    for i, image in enumerate(images):
      path = os.path.join(out_dir, f"queries_{query_side}x{query_side}_{i:02d}.png")
      run_dir.write_png(path, query_figure(image, rows[i], cells, query_side))
      paths.append(path)
  return paths, cells_of


def attention_from_saved_model(saved_model, inputs):
  """(images, {name: maps}) numpy from a SavedModel's 'attention' signature."""
  loaded = tf.saved_model.load(saved_model)
  if "attention" not in loaded.signatures:
    raise ValueError(f"SavedModel {saved_model} has no 'attention' signature (export it with "
                     "this version from a model that returns attention maps)")
  signature = loaded.signatures["attention"]
  takes = set(signature.structured_input_signature[1])
  out = signature(**{k: tf.constant(v) for k, v in inputs.items() if k in takes})
  images = out.pop("images").numpy()
  return images, {k: v.numpy() for k, v in out.items()}


def run_attention_maps(cfg, num=8, seed=0, truncation=None, checkpoint=None, saved_model=None,
                       out_dir=None, query_points=None):
  """Writes the attention figures of `num` samples (at most MAX_SAMPLES); returns their paths.
  `query_points`: (row, col) fractions of the image, default DEFAULT_QUERY_POINTS."""
  spec = get_model(cfg.model)
  if not spec.returns_attention_maps(cfg.hparams):
    raise ValueError(f"--model={cfg.model} returns no attention maps with these hyperparameters")
  points = tuple(tuple(float(f) for f in p) for p in (query_points or DEFAULT_QUERY_POINTS))
  num = min(num, MAX_SAMPLES)
  inputs = spec.sample_inputs(cfg, num, seed=seed, truncation=truncation)
  if saved_model:
    images, maps = attention_from_saved_model(saved_model, inputs)
    tag = "savedmodel"
  else:
    ckpt = export.resolve_checkpoint(checkpoint or cfg.model_dir)
    generator = export.restore_generator(cfg, ckpt, use_ema(cfg, ckpt))
    images, maps = spec.attention(cfg, generator, {k: tf.constant(v) for k, v in inputs.items()})
    images, maps = images.numpy(), {k: v.numpy() for k, v in maps.items()}
    tag = f"step{export.checkpoint_step(ckpt)}"
  out_dir = out_dir or os.path.join(cfg.model_dir, "attention_maps", f"{tag}_seed{seed}")
  paths, cells = write_figures(images, maps, cfg.image_size, out_dir, points)
  run_dir.atomic_write_json(os.path.join(out_dir, "attention_maps.json"), {
      "source": saved_model or ckpt, "seed": seed, "truncation": truncation,
      "inputs": {k: v.tolist() for k, v in inputs.items() if k != "noise"},
      "maps": {k: list(v.shape) for k, v in maps.items()},
      "query_points": [list(p) for p in points],
      "query_cells": {k: [list(c) for c in v] for k, v in cells.items()},
      "files": [os.path.basename(p) for p in paths]})
  return paths
