"""Spectral norm: power iteration converges to the true sigma; u updates only when training."""
import numpy as np
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
