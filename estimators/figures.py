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

Drawing (estimators/summaries.py, the same ops the TensorBoard `attention/*` images use): each
map normalised on its own to [0, 1] (min -> 0, max -> 1), coloured with jet (dark blue = the
map's least, dark red = its most) and blended over the grey sample, map and sample
nearest-upsampled to tiles of max(image size, 128) px; query points as squares in their colour,
outlined in black. Query points are (row, col) fractions of the
image in [0, 1] (--query_points=0.5:0.5,...), each mapped to the query-grid cell that holds it.
attention_maps.json records the points, their cells and the inputs. Files are written atomically.
"""
import os

import numpy as np
import tensorflow as tf

from estimators import export, run_dir, summaries
from estimators.evaluation import use_ema
from estimators.models import get_model

MAX_SAMPLES = 16
DEFAULT_QUERY_POINTS = summaries.DEFAULT_QUERY_POINTS
MARKER_COLOURS = summaries.MARKER_COLOURS
query_cells = summaries.query_cells


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
  return summaries.grid_side(n)


def _png(figure):
  """[H, W, 3] in [0, 1] (summaries' drawing) -> [-1, 1] as run_dir.write_png takes it."""
  return np.asarray(figure) * 2.0 - 1.0


def attention_grid(images, maps, image_size):
  """images [N, S, S, 3], maps [N, heads, side * side] -> one grid [N * T, (1 + heads) * T, 3]
  in [-1, 1] of T = summaries.tile_size(image_size) px tiles: a row per sample, the sample, then
  each head's map over it (summaries.token_figure, as TensorBoard draws it)."""
  return _png(summaries.token_figure(images, maps, summaries.tile_size(image_size)))


def query_figure(image, rows, cells, query_side, image_size):
  """One sample's query maps: image [S, S, 3], rows [heads, Q, Nk], cells the Q query-grid
  cells -> [heads * T, (1 + Q) * T, 3] in [-1, 1] (summaries.query_figure, as TensorBoard)."""
  return _png(summaries.query_figure(image, rows, cells, query_side,
                                     summaries.tile_size(image_size)))


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
      run_dir.write_png(path, query_figure(image, rows[i], cells, query_side, image_size))
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
