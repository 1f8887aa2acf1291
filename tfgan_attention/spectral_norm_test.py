"""Spectral norm: power iteration converges to the true sigma; u updates only when training;
both bounds ("paper" W / sigma, "tfgan" W / max(1, sigma)) equal TF-GAN's spectral_normalize."""
import numpy as np
import pytest
import tensorflow as tf

from tfgan_attention.spectral_norm import SNConv2D, SNDense, SNEmbedding


def _true_sigma(kernel):
  return np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]


def test_conv_normalised_kernel_has_unit_spectral_norm_after_training_calls():
  tf.keras.utils.set_random_seed(0)
  layer = SNConv2D(16, 3)
  x = tf.random.normal([2, 8, 8, 4])
  for _ in range(50):
    layer(x, training=True)
  w = layer.normalized_kernel(training=False).numpy()
  assert abs(_true_sigma(w) - 1.0) < 1e-3
  assert abs(float(layer.last_sigma) - _true_sigma(layer.kernel.numpy())) < 1e-3 * _true_sigma(
      layer.kernel.numpy())


def test_u_updates_only_in_training_unless_quirk_enabled():
  tf.keras.utils.set_random_seed(1)
  x = tf.random.normal([3, 5])
  layer = SNDense(7)
  layer(x, training=False)
  u0 = layer.u.numpy().copy()
  layer(x, training=False)
  np.testing.assert_array_equal(layer.u.numpy(), u0)
  layer(x, training=True)
  assert np.abs(layer.u.numpy() - u0).max() > 1e-4

  quirky = SNDense(7, update_u_in_eval=True)
  quirky(x, training=False)
  u1 = quirky.u.numpy().copy()
  quirky(x, training=False)
  assert np.abs(quirky.u.numpy() - u1).max() > 1e-6


def test_dense_output_matches_numpy_with_one_power_iteration():
  tf.keras.utils.set_random_seed(2)
  layer = SNDense(3)
  x = np.random.RandomState(0).randn(4, 5).astype(np.float32)
  layer(x)  # build
  w, b, u = layer.kernel.numpy(), layer.bias.numpy(), layer.u.numpy()
  v = u @ w.T
  v /= np.linalg.norm(v)
  u2 = v @ w
  u2 /= np.linalg.norm(u2)
  sigma = (v @ w @ u2.T).item()
  expected = x @ (w / sigma) + b
  np.testing.assert_allclose(layer(x, training=False).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_embedding_rows_are_normalised_table_rows():
  tf.keras.utils.set_random_seed(3)
  emb = SNEmbedding(10, 6)
  labels = tf.constant([0, 3, 9])
  for _ in range(60):
    emb(labels, training=True)
  table = emb.embeddings.numpy() / _true_sigma(emb.embeddings.numpy().T)
  np.testing.assert_allclose(emb(labels).numpy(), table[[0, 3, 9]], rtol=1e-3, atol=1e-5)
  assert emb.u.shape == (1, 10)


def test_u_update_runs_inside_tf1_graph_without_fetching_the_assign():
  """DESIGN trap 2: the update must run when only the layer output is fetched."""
  g = tf.Graph()
  with g.as_default():
    tf.compat.v1.set_random_seed(0)
    layer = SNConv2D(4, 3)
    y = layer(tf.random.normal([2, 6, 6, 3]), training=True)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      u0 = sess.run(layer.u)
      sess.run(y)
      u1 = sess.run(layer.u)
  assert np.abs(u1 - u0).max() > 1e-4


# --- the bound: "paper" (W / sigma) and "tfgan" (W / max(1, sigma)) against TF-GAN's own op ---

def _kernel_with_sigma(shape, sigma, seed):
  """A random kernel of `shape` whose largest singular value (as a [-1, C_out] matrix) is sigma."""
  k = np.random.RandomState(seed).randn(*shape)
  return (k * sigma / _true_sigma(k)).astype(np.float32)


def _layer_with_kernel(kind, kernel, bound):
  """The layer of `kind`, built, its kernel (as the [.., C_out] matrix it normalises) set."""
  if kind == "conv":
    layer = SNConv2D(kernel.shape[-1], kernel.shape[0], bound=bound)
    layer(tf.zeros([1, 4, 4, kernel.shape[2]]))
    layer.kernel.assign(kernel)
  elif kind == "dense":
    layer = SNDense(kernel.shape[-1], bound=bound)
    layer(tf.zeros([1, kernel.shape[0]]))
    layer.kernel.assign(kernel)
  else:  # embedding: kernel is [dim, num_classes], the table its transpose
    layer = SNEmbedding(kernel.shape[1], kernel.shape[0], bound=bound)
    layer(tf.constant([0]))
    layer.embeddings.assign(kernel.T)
  return layer


def _tfgan_spectral_normalize(matrix, u, equality_constrained, training=True):
  """(normalised matrix, u after the update) from tfgan.features.spectral_normalize, in a TF1
  graph, with its persistent u (shape [rows, 1]) set to `u` first."""
  import tensorflow_gan as tfgan  # pylint: disable=import-outside-toplevel
  g = tf.Graph()
  with g.as_default():
    w = tf.constant(matrix)
    normalised = tfgan.features.spectral_normalize(
        w, equality_constrained=equality_constrained, training=training)
    (u_var,) = [v for v in tf.compat.v1.global_variables() if "spectral_norm_u" in v.name]
    with tf.compat.v1.Session() as sess:
      sess.run(u_var.assign(u.reshape(-1, 1)))
      out = sess.run(normalised)
      return out, sess.run(u_var)


SHAPES = {"conv": (3, 3, 6, 8), "dense": (12, 5), "embedding": (7, 10)}  # embedding: [dim, classes]
CASES = [(kind, sigma, bound) for kind in SHAPES for sigma in (0.45, 2.7)
         for bound in ("paper", "tfgan")]


@pytest.mark.parametrize("kind,sigma,bound", CASES)
def test_one_power_iteration_equals_tfgan_spectral_normalize_given_the_same_u(kind, sigma, bound):
  """Same u, one power iteration: the kernel, sigma and the updated u equal TF-GAN's.

  TF-GAN keeps its u on the input side of W ([K, 1]); this layer keeps it on the output side
  ([1, C_out]). TF-GAN's op applied to W^T keeps its u on W's output side and then runs exactly
  this layer's iteration, so the same u goes into both.
  """
  tf.keras.utils.set_random_seed(4)
  kernel = _kernel_with_sigma(SHAPES[kind], sigma, seed=len(kind))
  layer = _layer_with_kernel(kind, kernel, bound)
  u0 = layer.u.numpy().copy()
  ours = layer.normalized_kernel(training=True).numpy()
  w2d = kernel.reshape(-1, kernel.shape[-1])  # [K, C_out]
  theirs_t, their_u = _tfgan_spectral_normalize(w2d.T, u0, equality_constrained=(bound == "paper"))
  np.testing.assert_allclose(ours.reshape(w2d.shape), theirs_t.T, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(layer.u.numpy(), their_u.T, rtol=1e-5, atol=1e-7)
  # sigma is the estimate of the raw kernel's norm for both bounds (one iteration: close, below).
  estimate = float(layer.last_sigma)
  assert 0.5 * sigma < estimate <= sigma * (1 + 1e-5)
  divisor = estimate if bound == "paper" else max(1.0, estimate)
  np.testing.assert_allclose(ours, kernel / divisor, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kind,sigma,bound", CASES)
def test_converged_u_equals_tfgan_spectral_normalize_as_its_example_calls_it(kind, sigma, bound):
  """TF-GAN's op on W itself (as ops.py calls it), each side's u its exact singular vector:
  both give W / sigma ("paper", equality_constrained=True) or W / max(1, sigma) ("tfgan",
  equality_constrained=False), and the normalised kernel's norm is 1 or min(1, sigma)."""
  kernel = _kernel_with_sigma(SHAPES[kind], sigma, seed=10 + len(kind))
  layer = _layer_with_kernel(kind, kernel, bound)
  w2d = kernel.reshape(-1, kernel.shape[-1]).astype(np.float64)
  left, _, right_t = np.linalg.svd(w2d)
  layer.u.assign(right_t[:1].astype(np.float32))  # [1, C_out]: this layer's side
  ours = layer.normalized_kernel(training=True).numpy()
  theirs, _ = _tfgan_spectral_normalize(w2d.astype(np.float32), left[:, 0],
                                        equality_constrained=(bound == "paper"))
  if kind == "embedding":  # TF-GAN's sn_embedding normalises the transposed table, as here
    assert theirs.shape == (SHAPES[kind][0], SHAPES[kind][1])
  np.testing.assert_allclose(ours.reshape(w2d.shape), theirs, rtol=2e-5, atol=1e-7)
  np.testing.assert_allclose(float(layer.last_sigma), sigma, rtol=1e-5)
  expected_norm = 1.0 if bound == "paper" else min(1.0, sigma)
  np.testing.assert_allclose(_true_sigma(ours), expected_norm, rtol=1e-5)
  if bound == "tfgan" and sigma < 1:
    np.testing.assert_array_equal(ours, kernel)  # left exactly as it is


def test_tfgan_bound_keeps_last_sigma_the_raw_estimate_and_trains_to_it():
  """After many training calls last_sigma is the kernel's true norm under both bounds (the value
  the summaries show), while only "paper" rescales a kernel whose norm is below 1."""
  x = tf.random.normal([2, 6, 6, 4], seed=1)
  for bound, expected_norm in (("paper", 1.0), ("tfgan", 0.6)):
    tf.keras.utils.set_random_seed(5)
    layer = SNConv2D(8, 3, bound=bound)
    layer(x)
    layer.kernel.assign(_kernel_with_sigma((3, 3, 4, 8), 0.6, seed=3))
    for _ in range(60):
      layer(x, training=True)
    np.testing.assert_allclose(float(layer.last_sigma), 0.6, rtol=1e-4)
    np.testing.assert_allclose(_true_sigma(layer.normalized_kernel().numpy()), expected_norm,
                               rtol=1e-4)


def test_unknown_bound_is_refused():
  with pytest.raises(ValueError, match="paper"):
    SNDense(3, bound="tf-gan")


def test_conv_residual_is_added_before_the_bias():
  conv = SNConv2D(4, 3)
  x, r = tf.random.normal([2, 5, 5, 3], seed=1), tf.random.normal([2, 5, 5, 4], seed=2)
  conv(x)
  conv.bias.assign(tf.random.normal([4], seed=3))
  plain = conv(x).numpy()  # eval calls: u stays, the same kernel both times
  np.testing.assert_allclose(conv(x, residual=r).numpy(), plain + r.numpy(), rtol=0, atol=1e-5)
  with pytest.raises(ValueError, match="residual of shape"):
    conv(x, residual=r[..., :1])  # refused, not broadcast
