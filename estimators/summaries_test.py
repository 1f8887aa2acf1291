"""The one attention drawing (estimators/summaries.py) against numpy: the jet colours, per-map
normalisation, the blend over the grey sample, nearest upsampling, the query markers' pixels and
the figure layouts that TensorBoard and --mode=attention_maps share."""
import numpy as np
import pytest

from estimators import summaries


def _jet(x):  # the MATLAB jet, piecewise linear: dark blue, blue, cyan, yellow, red, dark red
  return np.stack([np.interp(x, [0, 3 / 8, 5 / 8, 7 / 8, 1], [0, 0, 1, 1, 0.5]),
                   np.interp(x, [0, 1 / 8, 3 / 8, 5 / 8, 7 / 8, 1], [0, 0, 1, 1, 0, 0]),
                   np.interp(x, [0, 1 / 8, 3 / 8, 5 / 8, 1], [0.5, 1, 1, 0, 0])], axis=-1)


def test_jet_is_the_piecewise_linear_colour_map():
  x = np.linspace(0.0, 1.0, 41)
  np.testing.assert_allclose(summaries.jet(x).numpy(), _jet(x), atol=1e-6)
  np.testing.assert_allclose(summaries.jet([0.0, 0.5, 1.0]).numpy(),
                             [[0, 0, 0.5], [0.5, 1, 0.5], [0.5, 0, 0]], atol=1e-6)


def test_each_map_is_normalised_on_its_own_to_0_1():
  maps = np.array([[0.010, 0.011, 0.012, 0.0105],  # near uniform, as early in training
                   [0.0, 0.5, 0.25, 0.25],
                   [0.3, 0.3, 0.3, 0.3]], np.float32)  # constant -> all 0, not NaN
  out = summaries.normalise_maps(maps).numpy()
  np.testing.assert_allclose(out[:2].min(-1), 0.0)
  np.testing.assert_allclose(out[:2].max(-1), 1.0)
  np.testing.assert_allclose(out[0], [0.0, 0.5, 1.0, 0.25], atol=1e-4)
  np.testing.assert_allclose(out[1], [0.0, 1.0, 0.5, 0.5])
  np.testing.assert_array_equal(out[2], 0.0)


def _image(seed, side=4):
  return np.random.RandomState(seed).uniform(-1, 1, (side, side, 3)).astype(np.float32)


def test_overlay_blends_jet_of_the_normalised_map_over_the_grey_sample():
  images = np.stack([_image(0), _image(1)])  # [2, 4, 4, 3]
  maps = np.array([[0.1, 0.2, 0.3, 0.4], [0.7, 0.1, 0.1, 0.1]], np.float32)  # 2x2 grids
  tiles = summaries.attention_tiles(images, maps, 8).numpy()
  assert tiles.shape == (2, 8, 8, 3)
  for m in range(2):
    grey = np.kron((images[m].mean(-1) + 1) / 2, np.ones((2, 2)))[..., None]  # 4 -> 8 px
    heat = (maps[m] - maps[m].min()) / (maps[m].max() - maps[m].min())
    heat = np.kron(heat.reshape(2, 2), np.ones((4, 4)))  # 2x2 -> 8 px, nearest
    expected = (1 - summaries.OVERLAY_ALPHA) * grey + summaries.OVERLAY_ALPHA * _jet(heat)
    np.testing.assert_allclose(tiles[m], expected, atol=1e-5)
  # The map's peak cell is the most red-weighted: map 1 peaks at cell (0, 0).
  assert tiles[1, :4, :4, 0].mean() > tiles[1, 4:, 4:, 0].mean()
  plain = summaries.attention_tiles(images, None, 8).numpy()  # the sample itself, in colour
  np.testing.assert_allclose(plain[1], np.kron((images[1] + 1) / 2, np.ones((2, 2, 1))),
                             atol=1e-6)


def test_marker_paints_its_colour_outlined_in_black_over_the_query_cell():
  image = _image(2, 64)[None]
  size = 128  # radius 4: the centre 9x9 px in colour, a 1 px black outline around it
  tile = summaries.attention_tiles(image, None, size, [[((1, 2), 4, (0.0, 1.0, 0.0))]]).numpy()[0]
  plain = summaries.attention_tiles(image, None, size).numpy()[0]
  centre = (48, 80)  # cell (1, 2) of a 4x4 grid: ((1 + 0.5) * 32, (2 + 0.5) * 32)
  np.testing.assert_array_equal(tile[44:53, 76:85], np.broadcast_to([0, 1, 0], (9, 9, 3)))
  np.testing.assert_array_equal(tile[43, 75:86], 0.0)
  np.testing.assert_array_equal(tile[53, 75:86], 0.0)
  np.testing.assert_array_equal(tile[43:54, 75], 0.0)
  np.testing.assert_array_equal(tile[43:54, 85], 0.0)
  outside = np.ones((size, size), bool)
  outside[43:54, 75:86] = False
  np.testing.assert_array_equal(tile[outside], plain[outside])
  assert tile[centre].tolist() == [0.0, 1.0, 0.0]


def test_query_figure_rows_per_head_marked_sample_then_each_points_map():
  image = _image(3, 8)
  rows = np.random.RandomState(4).random_sample((2, 3, 16)).astype(np.float32)  # 2 heads, 3 pts
  cells = summaries.query_cells(((0.0, 0.0), (0.5, 0.25), (1.0, 1.0)), 8)
  assert cells == [(0, 0), (4, 2), (7, 7)]
  size = 32
  fig = summaries.query_figure(image, rows, cells, 8, size).numpy()
  assert fig.shape == (2 * size, 4 * size, 3)
  marks = [(c, 8, summaries.MARKER_COLOURS[i]) for i, c in enumerate(cells)]
  marked = summaries.attention_tiles(image[None], None, size, [marks]).numpy()[0]
  for h in range(2):
    np.testing.assert_allclose(fig[h * size:(h + 1) * size, :size], marked)
    for i in range(3):
      tile = summaries.attention_tiles(image[None], rows[h, i][None], size, [[marks[i]]])
      np.testing.assert_allclose(fig[h * size:(h + 1) * size, (1 + i) * size:(2 + i) * size],
                                 tile.numpy()[0], atol=1e-6)
  # Point 2 (cell (4, 2), centre (18, 10) px) is green on its own map, absent from point 1's.
  np.testing.assert_allclose(fig[18, 2 * size + 10], [0, 1, 0])
  np.testing.assert_allclose(fig[18, size + 10], summaries.attention_tiles(
      image[None], rows[0, 0][None], size).numpy()[0, 18, 10], atol=1e-6)


def test_token_figure_rows_per_sample_the_sample_then_each_map():
  images = np.stack([_image(5), _image(6)])
  maps = np.random.RandomState(7).random_sample((2, 3, 4)).astype(np.float32)
  fig = summaries.token_figure(images, maps, 16).numpy()
  assert fig.shape == (2 * 16, 4 * 16, 3)
  np.testing.assert_allclose(fig[16:, :16], summaries.attention_tiles(images[1:], None, 16)[0])
  np.testing.assert_allclose(fig[16:, 48:], summaries.attention_tiles(images[1:], maps[1, 2:],
                                                                      16)[0], atol=1e-6)
  with pytest.raises(ValueError, match="not a square grid"):
    summaries.attention_tiles(images, maps[:, 0, :3], 16)


def test_tile_size_is_at_least_what_a_screen_shows():
  assert summaries.tile_size(32) == 128 and summaries.tile_size(256) == 256


def test_add_figure_writes_the_drawn_pixels_as_uint8_not_rescaled():
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  figure = np.full((2, 3, 3), 0.25, np.float32)  # a float summary would stretch 0.25 to 255
  figure[0, 0] = (0.5, 0.0, 1.0)
  with tf.Graph().as_default():
    summaries.add_figure("attention/x", tf.constant(figure))
    merged = tf.compat.v1.summary.merge_all()
    with tf.compat.v1.Session() as session:
      proto = tf.compat.v1.Summary.FromString(session.run(merged))
  assert [v.tag for v in proto.value] == ["attention/x/image"]
  pixels = tf.io.decode_png(proto.value[0].image.encoded_image_string).numpy()
  np.testing.assert_array_equal(pixels, np.round(figure * 255))


def test_the_sample_grid_summary_keeps_a_dark_sample_dark():
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  images = np.full((4, 2, 2, 3), -0.5, np.float32)  # 0.25 after [-1, 1] -> [0, 1]
  images[3, 1, 1] = (0.0, -1.0, 1.0)
  with tf.Graph().as_default():
    summaries.add_image_grid("fixed_noise_grid", tf.constant(images), cols=2)
    merged = tf.compat.v1.summary.merge_all()
    with tf.compat.v1.Session() as session:
      proto = tf.compat.v1.Summary.FromString(session.run(merged))
  assert [v.tag for v in proto.value] == ["fixed_noise_grid/image"]
  pixels = tf.io.decode_png(proto.value[0].image.encoded_image_string).numpy()
  expected = np.full((4, 4, 3), 64, np.uint8)  # round(0.25 * 255); a float summary gives 255
  expected[3, 3] = (128, 0, 255)  # image 3 = row 1, column 1 of the grid, its pixel (1, 1)
  np.testing.assert_array_equal(pixels, expected)
