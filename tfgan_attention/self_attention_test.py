"""SelfAttention against an independent numpy computation, plus its structural facts."""
import numpy as np
import pytest
import tensorflow as tf

from tfgan_attention.self_attention import SelfAttention


def _sn(kernel, u):
  """Numpy twin of one power iteration (inference: u is not written back)."""
  w = kernel.reshape(-1, kernel.shape[-1])
  v = u @ w.T
  v /= np.linalg.norm(v)
  u2 = v @ w
  u2 /= np.linalg.norm(u2)
  return w / (v @ w @ u2.T).item()  # [C_in, C_out] for a 1x1 conv


def _numpy_attention(x, layer, heads):
  b, h, w, c = x.shape
  conv = lambda t, l: t @ _sn(l.kernel.numpy(), l.u.numpy())
  pool = lambda t: t.reshape(b, h // 2, 2, w // 2, 2, -1).max(axis=(2, 4))
  theta = conv(x, layer.theta).reshape(b, h * w, heads, -1)
  phi = pool(conv(x, layer.phi)).reshape(b, h * w // 4, heads, -1)
  g = pool(conv(x, layer.g)).reshape(b, h * w // 4, heads, -1)
  out = np.zeros((b, h * w, heads, g.shape[-1]))
  attn = np.zeros((b, heads, h * w, h * w // 4))
  for i in range(b):
    for k in range(heads):
      logits = theta[i, :, k] @ phi[i, :, k].T
      a = np.exp(logits - logits.max(1, keepdims=True))
      a /= a.sum(1, keepdims=True)
      attn[i, k] = a
      out[i, :, k] = a @ g[i, :, k]
  o = out.reshape(b, h, w, c // 2)
  return x + layer.sigma.numpy() * conv(o, layer.attn_out), attn


@pytest.mark.parametrize("heads", [1, 2])
def test_matches_numpy(heads):
  tf.keras.utils.set_random_seed(4)
  x = np.random.RandomState(1).randn(2, 4, 6, 16).astype(np.float32)
  layer = SelfAttention(num_heads=heads)
  layer(x)
  layer.sigma.assign(0.7)
  y, attn = layer(x, training=False, return_attention=True)
  y_np, attn_np = _numpy_attention(x.astype(np.float64), layer, heads)
  assert attn.shape == (2, heads, 24, 6)
  np.testing.assert_allclose(attn.numpy(), attn_np, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(y.numpy(), y_np, rtol=1e-4, atol=1e-5)


def test_structure_gate_zero_bias_free_and_parameter_count():
  layer = SelfAttention()
  x = tf.random.normal([1, 8, 8, 64])
  y = layer(x)
  np.testing.assert_allclose(y.numpy(), x.numpy())  # sigma starts at 0: identity
  c = 64
  trainable = sum(int(np.prod(v.shape)) for v in layer.trainable_variables)
  # theta, phi: C*C/8 each; g: C*C/2; out: C/2*C; sigma: 1. No biases.
  assert trainable == 2 * c * c // 8 + 2 * (c * c // 2) + 1
  assert all("bias" not in v.name for v in layer.variables)


def test_bad_shapes_fail_clearly():
  with pytest.raises(ValueError, match="divisible by 8"):
    SelfAttention(num_heads=8)(tf.zeros([1, 4, 4, 32]))
  with pytest.raises(ValueError, match="even H, W"):
    SelfAttention()(tf.zeros([1, 5, 4, 16]))
