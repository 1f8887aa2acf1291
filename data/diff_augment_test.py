"""DiffAugment: each op against numpy for fixed draws; shape, range, gradients, graph mode, seeds."""
import numpy as np
import pytest
import tensorflow as tf

from data import diff_augment as da


class _Fixed:
  """Stands in for the random draws: returns the given values in order, broadcast to shape."""

  def __init__(self, *values):
    self.values = list(values)

  def uniform(self, shape, minval, maxval, dtype=tf.float32):
    v = np.asarray(self.values.pop(0))
    assert np.all(v >= minval) and np.all(v < maxval)
    return tf.constant(v.reshape([-1] + [1] * (len(shape) - 1)), dtype)


def _images(b=2, h=8, w=8, seed=0):
  return np.random.RandomState(seed).uniform(-1, 1, (b, h, w, 3)).astype(np.float32)


def test_color_ops_match_numpy():
  x = _images()
  y = da.brightness(tf.constant(x), _Fixed([0.3, -0.2])).numpy()
  np.testing.assert_allclose(y, x + np.array([0.3, -0.2])[:, None, None, None], atol=1e-6)
  m = x.mean(3, keepdims=True)
  y = da.saturation(tf.constant(x), _Fixed([0.0, 1.7])).numpy()
  np.testing.assert_allclose(y[0], np.broadcast_to(m[0], x[0].shape), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(y[1], (x[1] - m[1]) * 1.7 + m[1], rtol=1e-5, atol=1e-6)
  m = x.mean((1, 2, 3), keepdims=True)
  y = da.contrast(tf.constant(x), _Fixed([0.5, 1.25])).numpy()
  np.testing.assert_allclose(y, (x - m) * np.array([0.5, 1.25])[:, None, None, None] + m,
                             rtol=1e-5, atol=1e-6)


def test_translation_shifts_with_zero_fill():
  x = _images(h=16, w=16)  # shift range int(16 / 8 + 0.5) = 2
  y = da.translation(tf.constant(x), _Fixed([2, -1], [-2, 0])).numpy()
  expected = np.zeros_like(x)
  expected[0, :14, 2:] = x[0, 2:, :14]  # out[i, j] = x[i + 2, j - 2]
  expected[1, 1:, :] = x[1, :15, :]  # out[i, j] = x[i - 1, j]
  np.testing.assert_allclose(y, expected)
  with pytest.raises(AssertionError):  # a shift of 3 is outside [-2, 2]
    da.translation(tf.constant(x), _Fixed([3, 0], [0, 0]))


def test_cutout_zeroes_a_clipped_half_size_square():
  x = _images(h=8, w=8)  # 4x4 hole; centres in [0, 8]
  y = da.cutout(tf.constant(x), _Fixed([4, 0], [5, 8])).numpy()
  expected = x.copy()
  expected[0, 2:6, 3:7] = 0  # centre (4, 5): rows 2..5, cols 3..6
  expected[1, 0:2, 6:8] = 0  # centre (0, 8): clipped to the corner
  np.testing.assert_allclose(y, expected)


@pytest.mark.parametrize("policy", ["", "color", "translation", "cutout",
                                    "color,translation,cutout"])
def test_shapes_kept_and_range_where_guaranteed(policy):
  x = tf.constant(_images(b=4, h=32, w=32))
  y = da.diff_augment(x, policy).numpy()
  assert y.shape == (4, 32, 32, 3)
  if "color" not in policy:
    assert y.min() >= -1 and y.max() <= 1
    # every pixel is an input pixel or 0
    assert np.isin(y, np.append(x.numpy().ravel(), 0.0)).all()
  if policy == "cutout":
    zeros = (y == 0).all(-1).sum((1, 2))
    assert np.all(zeros >= 8 * 8) and np.all(zeros <= 16 * 16)
  if not policy:
    np.testing.assert_array_equal(y, x.numpy())


def test_gradients_reach_the_generator():
  tf.keras.utils.set_random_seed(0)
  w = tf.Variable(tf.random.normal([4, 8 * 8 * 3]))  # a one-layer "generator"
  with tf.GradientTape() as tape:
    fake = tf.reshape(tf.tanh(tf.random.normal([2, 4]) @ w), [2, 8, 8, 3])
    out = da.diff_augment(fake, "color,translation,cutout", seed=3)
    loss = tf.reduce_sum(out * tf.random.normal(out.shape))
  g = tape.gradient(loss, w)
  assert g is not None and np.abs(g.numpy()).sum() > 0
  with tf.GradientTape() as tape:  # translation+cutout: gradient 1 where a pixel survives
    x = tf.constant(_images())
    tape.watch(x)
    out = da.diff_augment(x, "translation,cutout", seed=1)
    grad = tape.gradient(tf.reduce_sum(out), x)
  assert np.isclose(grad.numpy().sum(), np.count_nonzero(out.numpy()))


def test_seeded_draws_repeat_and_stateful_draws_differ():
  x = tf.constant(_images(b=3))
  policy = "color,translation,cutout"
  a = da.diff_augment(x, policy, seed=tf.constant([7, 1]))
  b = da.diff_augment(x, policy, seed=tf.constant([7, 1]))
  c = da.diff_augment(x, policy, seed=tf.constant([8, 1]))
  np.testing.assert_array_equal(a.numpy(), b.numpy())
  assert not np.allclose(a.numpy(), c.numpy())
  assert not np.allclose(da.diff_augment(x, policy).numpy(), da.diff_augment(x, policy).numpy())


def test_tf1_graph_with_dynamic_batch():
  graph = tf.Graph()
  with graph.as_default():
    x = tf.compat.v1.placeholder(tf.float32, [None, 8, 8, 3])
    y = da.diff_augment(x, "color,translation,cutout", seed=5)
    z = da.diff_augment(x, "color,translation,cutout")
    grad = tf.gradients(tf.reduce_sum(y), x)[0]
    assert y.shape.as_list() == [None, 8, 8, 3]
    with tf.compat.v1.Session() as sess:
      feed = {x: _images(b=5)}
      y1, y2, zz, g = sess.run([y, y, z, grad], feed)
      assert y1.shape == zz.shape == g.shape == (5, 8, 8, 3)
      np.testing.assert_array_equal(y1, sess.run(y, feed))  # stateless: same draw every run


def test_policy_names_are_checked():
  assert da.parse_policy("color, cutout") == ("color", "cutout")
  assert da.parse_policy(["translation"]) == ("translation",)
  with pytest.raises(ValueError, match="unknown DiffAugment policy 'colour'"):
    da.diff_augment(tf.zeros([1, 8, 8, 3]), "colour")


def test_example_draws_make_each_examples_augmentation_independent_of_the_batch_split():
  """The global batch augmented at once equals its two halves (two replicas' shares) augmented
  apart, each with its own rows' draws; another seed augments differently."""
  policy = "color,translation,cutout"
  assert da.num_draws(policy) == 7 and da.num_draws("translation") == 2 and da.num_draws("") == 0
  seed, x = tf.constant([3, 4], tf.int64), tf.constant(_images(b=8, h=16, w=16))
  rows = tf.range(8, 16, dtype=tf.int64)  # the second global batch of 8
  whole = da.diff_augment(x, policy, draws=da.example_draws(seed, rows, policy)).numpy()
  halves = [da.diff_augment(x[i:i + 4], policy, draws=da.example_draws(seed, rows[i:i + 4],
                                                                      policy)).numpy()
            for i in (0, 4)]
  np.testing.assert_array_equal(whole, np.concatenate(halves))
  other = da.diff_augment(x, policy, draws=da.example_draws(seed + 1, rows, policy)).numpy()
  assert np.abs(whole - other).max(axis=(1, 2, 3)).min() > 0.01  # every example differs
  with pytest.raises(ValueError, match="more than the 2 draws"):
    da.diff_augment(x, "color", draws=da.example_draws(seed, rows, "translation"))


def test_example_draws_keep_each_ops_distribution():
  """From the per-example table: brightness U(-0.5, 0.5), saturation U(0, 2), contrast
  U(0.5, 1.5), integer shifts uniform over -r..r, cutout offsets over 0..size (+1 if even)."""
  table = da.example_draws(tf.constant([5, 6], tf.int64), tf.range(3000, dtype=tf.int64),
                           "color,translation,cutout")
  assert table.shape == (3000, 7) and 0 <= table.numpy().min() and table.numpy().max() < 1
  draws = da._ExampleDraws(table)  # pylint: disable=protected-access
  for low, high in ((-0.5, 0.5), (0.0, 2.0), (0.5, 1.5)):
    v = draws.uniform([3000, 1, 1, 1], low, high).numpy().ravel()
    assert low <= v.min() and v.max() < high
    assert abs(v.mean() - (low + high) / 2) < 0.03 * (high - low)
  for low, high in ((-2, 3), (-2, 3), (0, 9), (0, 9)):  # 16 px: shifts -2..2; cutout 8: 0..8
    v = draws.uniform([3000, 1], low, high, tf.int32).numpy().ravel()
    counts = np.bincount(v - low, minlength=high - low)
    assert len(counts) == high - low and v.dtype == np.int32
    assert counts.min() > 0.7 * 3000 / (high - low) and counts.max() < 1.3 * 3000 / (high - low)
