"""LadaAttention against an independent numpy computation of the official code's equations."""
import numpy as np
import pytest
import tensorflow as tf

from tfgan_attention.lada_attention import LadaAttention


def _numpy_lada(x, layer, heads):
  """Token by token, head by head, in float64: the equations in the module docstring."""
  w = {name: [t.numpy().astype(np.float64) for t in getattr(layer, name).weights]
       for name in ("query", "key", "value", "score", "out")}
  lin = lambda t, name: t @ w[name][0] + w[name][1]
  b, n, c = x.shape
  d = c // heads
  q, k, v = lin(x, "query"), lin(x, "key"), lin(x, "value")
  s = lin(q, "score") / np.sqrt(d)  # [B, N, heads]
  alpha = np.zeros((b, heads, n))
  r = np.zeros((b, n, c))
  for i in range(b):
    for h in range(heads):
      e = np.exp(s[i, :, h] - s[i, :, h].max())
      alpha[i, h] = e / e.sum()
      cols = slice(h * d, (h + 1) * d)
      g = sum(alpha[i, h, t] * q[i, t, cols] for t in range(n))  # global query of head h
      for t in range(n):
        r[i, t, cols] = g * k[i, t, cols] * v[i, t, cols]
  return lin(r, "out"), alpha


@pytest.mark.parametrize("heads", [1, 4])
def test_matches_numpy_and_map_is_the_one_used(heads):
  tf.keras.utils.set_random_seed(2)
  x = np.random.RandomState(0).randn(3, 10, 8).astype(np.float32)
  layer = LadaAttention(num_heads=heads)
  layer(x)
  # Non-zero biases so a dropped bias would show.
  for v in layer.weights:
    if "bias" in v.name:
      v.assign(np.random.RandomState(len(v.name)).randn(*v.shape) * 0.3)
  y, alpha = layer(x, return_attention=True)
  y_np, alpha_np = _numpy_lada(x.astype(np.float64), layer, heads)
  assert y.shape == (3, 10, 8) and alpha.shape == (3, heads, 10)
  np.testing.assert_allclose(alpha.numpy(), alpha_np, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(alpha.numpy().sum(-1), 1.0, rtol=1e-6)
  np.testing.assert_allclose(y.numpy(), y_np, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(layer(x).numpy(), y.numpy(), rtol=1e-6)


def test_output_depends_on_the_map_exactly_as_returned():
  """Recomputing g from the returned alpha gives the layer's output: the map is the one used."""
  tf.keras.utils.set_random_seed(5)
  x = tf.random.normal([2, 6, 4])
  layer = LadaAttention(num_heads=2)
  y, alpha = layer(x, return_attention=True)
  q = tf.reshape(layer.query(x), [2, 6, 2, 2])
  k = tf.reshape(layer.key(x), [2, 6, 2, 2])
  v = tf.reshape(layer.value(x), [2, 6, 2, 2])
  g = tf.einsum("bhn,bnhd->bhd", alpha, q)
  y2 = layer.out(tf.reshape(g[:, None] * k * v, [2, 6, 4]))
  np.testing.assert_allclose(y.numpy(), y2.numpy(), rtol=1e-6, atol=1e-7)


def test_parameter_count_orthogonal_init_and_dynamic_batch():
  layer = LadaAttention(num_heads=4)
  layer(tf.zeros([1, 16, 64]))
  c, h = 64, 4
  assert layer.count_params() == 4 * (c * c + c) + (c * h + h)  # q, k, v, out; score
  k = layer.query.kernel.numpy()
  np.testing.assert_allclose(k.T @ k, np.eye(c), atol=1e-5)  # orthogonal
  f = tf.function(lambda t: layer(t, return_attention=True),
                  input_signature=[tf.TensorSpec([None, None, 64])])
  y, alpha = f(tf.ones([3, 5, 64]))
  assert y.shape == (3, 5, 64) and alpha.shape == (3, 4, 5)


def test_width_must_divide_by_heads():
  with pytest.raises(ValueError, match="divisible by num_heads"):
    LadaAttention(num_heads=3)(tf.zeros([1, 4, 8]))


def test_no_n_by_n_tensor_forward_or_backward():
  """O(N): no tensor in the traced forward+backward graph has two token axes."""
  layer = LadaAttention(num_heads=2)
  n = 97  # a token count no other dimension has

  @tf.function
  def step(x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y, alpha = layer(x, return_attention=True)
      loss = tf.reduce_sum(y ** 2) + tf.reduce_sum(alpha ** 2)
    return tape.gradient(loss, [x] + layer.trainable_variables)

  graph = step.get_concrete_function(tf.TensorSpec([3, n, 8])).graph
  shapes = [out.shape for op in graph.get_operations() for out in op.outputs
            if out.shape.rank is not None]
  assert any(n in s.as_list() for s in shapes)
  assert not [s for s in shapes if s.as_list().count(n) > 1]
