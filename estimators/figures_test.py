"""Attention figures of SAGAN (1 and 8 heads) and YLG-SAGAN: the maps, the saliency against numpy,
the query rows, the PNG grids, and the SavedModel 'attention' signature path."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from estimators import export, figures, summaries
from estimators.models import get_model
from estimators.networks import make_generator
from estimators.testing import tiny_config
from tfgan_attention import ylg_masks

# 32 px, attention at 16x16: queries 16x16 = 256, keys 8x8 = 64. 8 heads need 64 channels in G.
CASES = {"sagan": dict(model="sagan"),
         "sagan8": dict(model="sagan", gf_dim=16, num_heads=8),
         "ylg": dict(model="ylg_sagan", gf_dim=16, df_dim=32)}


def _maps(tmp_path, case, num=2):
  cfg = tiny_config(tmp_path, **CASES[case])
  spec = get_model(cfg.model)
  generator = make_generator(cfg)
  inputs = {k: tf.constant(v) for k, v in spec.sample_inputs(cfg, num, seed=3).items()}
  images, maps = spec.attention(cfg, generator, inputs)
  return cfg, generator, inputs, images.numpy(), {k: v.numpy() for k, v in maps.items()}


@pytest.mark.parametrize("case,heads", [("sagan", 1), ("sagan8", 8), ("ylg", 8)])
def test_attention_matrices_shapes_rows_and_saliency(tmp_path, case, heads):
  cfg, generator, inputs, images, maps = _maps(tmp_path, case)
  assert list(maps) == ["attention_16"]
  matrix = maps["attention_16"]
  assert matrix.shape == (2, heads, 256, 64)
  np.testing.assert_allclose(matrix.sum(-1), 1.0, atol=1e-5)
  served = get_model(cfg.model).images(get_model(cfg.model).generate(
      cfg, generator, inputs, training=False))
  np.testing.assert_allclose(images, served.numpy(), atol=1e-6)  # the same images
  if case == "ylg":  # densified sparse maps: exactly zero where YLG's masks forbid the pair
    masks = ylg_masks(key_grid=(8, 8), query_grid=(16, 16))  # [8, Nq, Nk], official defaults
    assert np.all(matrix[:, masks == 0] == 0.0) and np.all(matrix[:, masks == 1] > 0.0)
  # Saliency: each key's attention averaged over the 256 queries, per sample and head.
  expected = np.zeros((2, heads, 64))
  for b in range(2):
    for h in range(heads):
      for k in range(64):
        expected[b, h, k] = sum(float(matrix[b, h, q, k]) for q in range(256)) / 256.0
  np.testing.assert_allclose(figures.saliency(matrix), expected, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(figures.saliency(matrix).sum(-1), 1.0, atol=1e-5)


def test_query_points_pick_the_rows_of_their_grid_cells():
  matrix = np.random.RandomState(0).random_sample((1, 2, 256, 64))
  rows, cells = figures.query_rows(matrix, ((0.0, 0.0), (0.5, 0.25), (1.0, 1.0)))
  assert cells == [(0, 0), (8, 4), (15, 15)]
  np.testing.assert_array_equal(rows, matrix[:, :, [0, 8 * 16 + 4, 255]])
  assert figures.parse_query_points(["0.5:0.25", "1:0"]) == ((0.5, 0.25), (1.0, 0.0))
  assert figures.parse_query_points([]) == figures.DEFAULT_QUERY_POINTS
  with pytest.raises(ValueError, match=r"'1.5:0' is not row:col with both fractions"):
    figures.parse_query_points(["1.5:0"])
  with pytest.raises(ValueError, match="is not row:col"):
    figures.parse_query_points(["0.5"])


def _png(path):
  return np.asarray(Image.open(path)).astype(np.float64)


def _uint8(image):
  return np.clip(np.round((image + 1.0) * 127.5), 0, 255)


def _jet(x):  # the MATLAB jet, piecewise linear
  return np.stack([np.interp(x, [0, 3 / 8, 5 / 8, 7 / 8, 1], [0, 0, 1, 1, 0.5]),
                   np.interp(x, [0, 1 / 8, 3 / 8, 5 / 8, 7 / 8, 1], [0, 0, 1, 1, 0, 0]),
                   np.interp(x, [0, 1 / 8, 3 / 8, 5 / 8, 1], [0.5, 1, 1, 0, 0])], axis=-1)


def _blend(image, weights, tile):
  """numpy: weights [side * side] min-max normalised, jet, over the grey image, as uint8."""
  side = int(np.sqrt(weights.size))
  heat = (weights - weights.min()) / (weights.max() - weights.min())
  heat = np.kron(heat.reshape(side, side), np.ones((tile // side, tile // side)))
  grey = np.kron((image.mean(-1) + 1) / 2, np.ones((tile // image.shape[0],) * 2))[..., None]
  alpha = summaries.OVERLAY_ALPHA
  return np.clip(np.round(((1 - alpha) * grey + alpha * _jet(heat)) * 255), 0, 255)


@pytest.mark.parametrize("case,heads", [("sagan", 1), ("ylg", 8)])
def test_figures_draw_saliency_and_query_maps(tmp_path, case, heads):
  _, _, _, images, maps = _maps(tmp_path, case)
  points = ((0.25, 0.25), (0.75, 0.5))
  paths, cells = figures.write_figures(images, maps, 32, str(tmp_path / "out"), points)
  assert [os.path.basename(p) for p in paths] == [
      "saliency_8x8.png", "queries_16x16_00.png", "queries_16x16_01.png"]
  assert cells == {"attention_16": [(4, 4), (12, 8)]}
  matrix = maps["attention_16"]
  t = 128  # 32 px samples drawn at 128 px tiles (4x nearest), key cells 16 px, query cells 8 px
  saliency_grid = _png(paths[0])
  assert saliency_grid.shape == (2 * t, (1 + heads) * t, 3)  # a row per sample
  np.testing.assert_allclose(saliency_grid[t:, :t],
                             _uint8(np.kron(images[1], np.ones((4, 4, 1)))), atol=1)
  # Sample 1, last head: the saliency from numpy, normalised to [0, 1], as a jet overlay.
  np.testing.assert_allclose(saliency_grid[t:, heads * t:],
                             _blend(images[1], matrix[1, -1].mean(axis=0), t), atol=1)
  queries = _png(paths[2])  # sample 1
  assert queries.shape == (heads * t, 3 * t, 3)  # a row per head: image + 2 query points
  # Head 0, query point 2 (cell (12, 8) of the 16x16 grid): its row over the 8x8 keys.
  expected = _blend(images[1], matrix[1, 0, 12 * 16 + 8], t)
  tile = queries[:t, 2 * t:]
  marker = np.zeros((t, t), bool)
  marker[95:106, 63:74] = True  # cell (12, 8): centre (100, 68) px, radius 4, a black outline
  np.testing.assert_allclose(tile[~marker], expected[~marker], atol=1)
  np.testing.assert_allclose(tile[96:105, 64:73], np.broadcast_to([0, 255, 0], (9, 9, 3)))
  np.testing.assert_allclose(tile[95, 63:74], 0)  # the outline
  np.testing.assert_allclose(queries[36, 36], [255, 255, 0])  # point 1 on the image: yellow
  np.testing.assert_allclose(queries[100, 68], [0, 255, 0])  # point 2 on the image: green
  assert np.all(tile.max(axis=(0, 1)) > 100)  # a heat map, not a dimmed grey square


@pytest.mark.slow
def test_saved_model_attention_signature_gives_the_same_maps(tmp_path):
  cfg, generator, inputs, images, maps = _maps(tmp_path, "ylg", num=3)
  module = export.ServingModule(generator, cfg)
  assert set(module.extra_signatures) == {"attention", "class_mixture"}
  path = str(tmp_path / "saved")
  tf.saved_model.save(module, path, signatures={"serving_default": module.serve,
                                                **module.extra_signatures})
  numpy_inputs = {k: v.numpy() for k, v in inputs.items()}
  saved_images, saved_maps = figures.attention_from_saved_model(path, numpy_inputs)
  np.testing.assert_allclose(saved_images, images, atol=1e-5)
  np.testing.assert_allclose(saved_maps["attention_16"], maps["attention_16"], atol=1e-6)


def test_no_attention_ablation_has_no_maps_and_no_signature(tmp_path):
  cfg = tiny_config(tmp_path, model="sagan", attention_type="none")
  spec = get_model(cfg.model)
  assert not spec.returns_attention_maps(cfg.hparams)
  assert set(spec.extra_signatures(cfg, make_generator(cfg))) == {"class_mixture"}
  with pytest.raises(ValueError, match="returns no attention maps"):
    figures.run_attention_maps(cfg)
  from data import get_spec  # pylint: disable=import-outside-toplevel
  from estimators import model_flags  # pylint: disable=import-outside-toplevel
  values = {"model": "sagan", "mode": "attention_maps", "image_size": 32,
            "attention_type": "residual"}
  assert "does not return with the hyperparameters given" in model_flags.problem(
      values, get_spec("digits"))
  assert model_flags.problem({**values, "attention_type": None}, get_spec("digits")) is None
