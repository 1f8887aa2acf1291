"""Each layout conversion against an independent numpy computation in PyTorch's own formulas.

The PyTorch side is written here in numpy from PyTorch's documented formulas (NCHW convolution
by hand, the LSTM cell equations, Linear -> BatchNorm1d -> GLU -> view(-1, C, H, W)); the Keras
side runs real Keras / TF ops (or the project's layers) with the converted weights."""
import numpy as np
import pytest
import tensorflow as tf

from estimators.importers import layouts
from tfgan_attention.conditioning_augmentation import glu
from tfgan_attention.spectral_norm import spectral_normalize


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _conv_nchw(x, weight, stride, pad):
  """PyTorch Conv2d (no bias) by hand: x [N, C, H, W], weight OIHW -> [N, O, H', W']."""
  n, c, h, w = x.shape
  o, _, kh, kw = weight.shape
  xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
  ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
  out = np.zeros((n, o, ho, wo), np.float64)
  for i in range(ho):
    for j in range(wo):
      patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]  # [N, C, kh, kw]
      out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, weight)
  return out


@pytest.mark.parametrize("kernel,stride,pad", [(3, 1, 1), (4, 2, 1), (1, 1, 0)])
def test_conv_kernel_oihw_to_hwio(kernel, stride, pad):
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
  weight = rng.standard_normal((5, 3, kernel, kernel)).astype(np.float32)
  expected = _conv_nchw(x.astype(np.float64), weight.astype(np.float64), stride, pad)
  got = tf.nn.conv2d(x.transpose(0, 2, 3, 1), layouts.conv_kernel(weight), strides=stride,
                     padding=[[0, 0], [pad, pad], [pad, pad], [0, 0]]).numpy()
  np.testing.assert_allclose(got, expected.transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-5)
  with pytest.raises(layouts.LayoutError, match=r"OIHW .* shape \(5, 3\)"):
    layouts.conv_kernel(weight[:, :, 0, 0])


def test_dense_kernel():
  rng = np.random.default_rng(1)
  x = rng.standard_normal((4, 6)).astype(np.float32)
  weight, bias = rng.standard_normal((3, 6)).astype(np.float32), rng.standard_normal(3)
  dense = tf.keras.layers.Dense(3)
  dense.build((None, 6))
  dense.set_weights([layouts.dense_kernel(weight), bias])
  np.testing.assert_allclose(dense(x).numpy(), x @ weight.T + bias, rtol=1e-5, atol=1e-6)


def _torch_lstm(x, weight_ih, weight_hh, bias_ih, bias_hh):
  """torch.nn.LSTM (one direction, zero initial state) in numpy: x [B, T, in] -> [B, T, u]."""
  b, t, _ = x.shape
  u = weight_hh.shape[1]
  h, c, outs = np.zeros((b, u)), np.zeros((b, u)), []
  for step in range(t):
    gates = x[:, step] @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh
    i, f, g, o = np.split(gates, 4, axis=1)  # PyTorch's order: W_ii|W_if|W_ig|W_io
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h = _sigmoid(o) * np.tanh(c)
    outs.append(h)
  return np.stack(outs, axis=1)


def _lstm_weights(rng, inputs, units):
  return [rng.uniform(-0.5, 0.5, shape).astype(np.float32)
          for shape in ((4 * units, inputs), (4 * units, units), (4 * units,), (4 * units,))]


def test_lstm_gate_order_needs_no_reordering_and_biases_add():
  rng = np.random.default_rng(2)
  x = rng.standard_normal((3, 5, 4)).astype(np.float32)
  weights = _lstm_weights(rng, 4, 6)
  expected = _torch_lstm(x.astype(np.float64), *weights)
  keras_lstm = tf.keras.layers.LSTM(6, return_sequences=True)
  keras_lstm.build((None, 5, 4))
  keras_lstm.set_weights(list(layouts.lstm(*weights)))
  np.testing.assert_allclose(keras_lstm(x).numpy(), expected, rtol=1e-5, atol=1e-5)
  assert layouts.GATES_PYTORCH[2] == "g" and layouts.GATES_KERAS[2] == "c"

  # The check discriminates: moving the g block to the end (i, f, o, g) changes the output.
  def swap_g_o(a):
    i, f, g, o = np.split(a, 4, axis=-1)
    return np.concatenate([i, f, o, g], axis=-1)
  keras_lstm.set_weights([swap_g_o(a) for a in layouts.lstm(*weights)])
  assert np.abs(keras_lstm(x).numpy() - expected).max() > 1e-2


def test_bidirectional_lstm_forward_then_backward_halves():
  rng = np.random.default_rng(3)
  x = rng.standard_normal((2, 7, 4)).astype(np.float32)
  fwd, bwd = _lstm_weights(rng, 4, 3), _lstm_weights(rng, 4, 3)
  names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
  state = {f"encoder.rnn.{n}": a for n, a in zip(names, fwd)}
  state.update({f"encoder.rnn.{n}_reverse": a for n, a in zip(names, bwd)})
  expected_fwd = _torch_lstm(x.astype(np.float64), *fwd)
  expected_bwd = _torch_lstm(x[:, ::-1].astype(np.float64), *bwd)[:, ::-1]  # reverse direction
  layer = tf.keras.layers.Bidirectional(tf.keras.layers.LSTM(3, return_sequences=True),
                                        merge_mode="concat")
  layer.build((None, 7, 4))
  layer.set_weights(layouts.bidirectional_lstm(state, prefix="encoder.rnn."))
  np.testing.assert_allclose(layer(x).numpy(), np.concatenate([expected_fwd, expected_bwd], -1),
                             rtol=1e-5, atol=1e-5)
  del state["encoder.rnn.weight_hh_l0_reverse"]
  with pytest.raises(layouts.LayoutError, match="weight_hh_l0_reverse"):
    layouts.bidirectional_lstm(state, prefix="encoder.rnn.")


def test_lstm_shape_errors_name_both_shapes():
  with pytest.raises(layouts.LayoutError, match=r"\[24, in\].*\(24, 6\).*\(20, 4\)"):
    layouts.lstm(np.zeros((20, 4)), np.zeros((24, 6)))


def _bn(y, p, eps):
  return (y - p["running_mean"]) / np.sqrt(p["running_var"] + eps) * p["weight"] + p["bias"]


@pytest.mark.parametrize("channels", [8, 32])
def test_dense_bn_glu_view_nchw_equals_keras_nhwc_reshape(channels):
  """AttnGAN's INIT_STAGE_G fc at a small width: Linear (no bias) -> BatchNorm1d -> GLU ->
  view(-1, C, 4, 4); for CUB C = 16 ngf = 512 and the Linear has 2 x 512 x 4 x 4 = 16384 outputs."""
  rng = np.random.default_rng(4)
  n_out, n_in = 2 * channels * 16, 12
  x = rng.standard_normal((3, n_in)).astype(np.float32)
  weight = rng.standard_normal((n_out, n_in)).astype(np.float32) / 4
  bn = {"weight": rng.normal(1, 0.3, n_out), "bias": rng.normal(0, 0.3, n_out),
        "running_mean": rng.normal(0, 0.3, n_out), "running_var": rng.uniform(0.5, 2, n_out)}
  bn = {k: v.astype(np.float32) for k, v in bn.items()}
  y = _bn(x.astype(np.float64) @ weight.T, bn, 1e-5)
  y = y[:, :n_out // 2] * _sigmoid(y[:, n_out // 2:])  # GLU over features, PyTorch
  expected = y.reshape(-1, channels, 4, 4).transpose(0, 2, 3, 1)  # .view(-1, C, 4, 4) -> NHWC

  def keras_side(kernel, params):
    dense = tf.keras.layers.Dense(n_out, use_bias=False)
    dense.build((None, n_in))
    dense.set_weights([kernel])
    norm = tf.keras.layers.BatchNormalization(epsilon=params["epsilon"])
    norm.build((None, n_out))
    norm.set_weights([params[k] for k in ("gamma", "beta", "moving_mean", "moving_variance")])
    return tf.reshape(glu(norm(dense(x), training=False)), [-1, 4, 4, channels]).numpy()

  perm = dict(channels=channels, height=4, width=4, groups=2)
  kernel = layouts.dense_kernel_nchw_outputs(weight, **perm)
  params = layouts.batch_norm(*[layouts.vector_nchw_outputs(bn[k], **perm)
                                for k in ("weight", "bias", "running_mean", "running_var")])
  np.testing.assert_allclose(keras_side(kernel, params), expected, rtol=1e-4, atol=1e-5)
  # Without the permutation the same weights give another image.
  plain = layouts.batch_norm(bn["weight"], bn["bias"], bn["running_mean"], bn["running_var"])
  assert np.abs(keras_side(layouts.dense_kernel(weight), plain) - expected).max() > 1e-2


def test_the_16384_outputs_of_attngan_cub_g0():
  perm = layouts.nchw_output_permutation(channels=512, height=4, width=4, groups=2)
  assert perm.shape == (16384,) and sorted(perm.tolist()) == list(range(16384))
  # Keras column (half, h, w, c) reads PyTorch column half*8192 + c*16 + h*4 + w.
  for half, h, w, c in [(0, 0, 0, 1), (1, 2, 3, 511), (0, 3, 1, 7)]:
    assert perm[half * 8192 + (h * 4 + w) * 512 + c] == half * 8192 + c * 16 + h * 4 + w
  with pytest.raises(layouts.LayoutError, match=r"16000 outputs .* = 16384"):
    layouts.dense_kernel_nchw_outputs(np.zeros((16000, 200)), 512, 4, 4, groups=2)


def test_batch_norm_passthrough_equals_pytorch_inference_on_nchw():
  rng = np.random.default_rng(5)
  x = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
  p = {"weight": rng.normal(1, 0.2, 4), "bias": rng.normal(0, 0.2, 4),
       "running_mean": rng.normal(0, 0.5, 4), "running_var": rng.uniform(0.2, 3, 4)}
  p = {k: v.astype(np.float32) for k, v in p.items()}
  expected = ((x - p["running_mean"][:, None, None]) /
              np.sqrt(p["running_var"][:, None, None] + 1e-5) * p["weight"][:, None, None] +
              p["bias"][:, None, None])
  params = layouts.batch_norm(p["weight"], p["bias"], p["running_mean"], p["running_var"],
                              eps=1e-5, momentum=0.1)
  assert params["epsilon"] == 1e-5 and params["decay"] == pytest.approx(0.9)
  norm = tf.keras.layers.BatchNormalization(epsilon=params["epsilon"],
                                            momentum=params["decay"])
  norm.build((None, 3, 3, 4))
  norm.set_weights([params[k] for k in ("gamma", "beta", "moving_mean", "moving_variance")])
  got = norm(x.transpose(0, 2, 3, 1), training=False).numpy()
  np.testing.assert_allclose(got, expected.transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-5)
  with pytest.raises(layouts.LayoutError, match="one length"):
    layouts.batch_norm(p["weight"], p["bias"][:3], p["running_mean"], p["running_var"])


def test_embedding_table():
  rng = np.random.default_rng(6)
  table = rng.standard_normal((10, 5)).astype(np.float32)
  ids = np.array([[0, 3, 9], [9, 9, 1]])
  emb = tf.keras.layers.Embedding(10, 5)
  emb.build((None, 3))
  emb.set_weights([layouts.embedding(table)])
  np.testing.assert_array_equal(emb(ids).numpy(), table[ids])


def test_spectral_norm_u_gives_pytorchs_sigma_and_next_u():
  """torch.nn.utils.spectral_norm's training-mode power iteration, in numpy, against the project's
  spectral_normalize with the converted kernel and u."""
  rng = np.random.default_rng(7)
  weight_orig = rng.standard_normal((6, 3, 3, 3))  # OIHW
  u0 = rng.standard_normal(6)
  u0 /= np.linalg.norm(u0)
  w_mat = weight_orig.reshape(6, -1)  # PyTorch's weight_mat [out, -1]
  v = w_mat.T @ u0
  v /= np.linalg.norm(v)
  u1 = w_mat @ v
  u1 /= np.linalg.norm(u1)
  sigma = u1 @ w_mat @ v
  u_var = tf.Variable(layouts.spectral_norm_u(u0))
  kernel, got_sigma, _ = spectral_normalize(tf.constant(layouts.conv_kernel(weight_orig)), u_var,
                                            training=True)
  assert float(got_sigma) == pytest.approx(sigma, rel=1e-10)
  np.testing.assert_allclose(u_var.numpy(), u1[None], rtol=1e-10)
  np.testing.assert_allclose(kernel.numpy(), layouts.conv_kernel(weight_orig / sigma), rtol=1e-10)
  perm = layouts.nchw_output_permutation(3, 1, 2)
  np.testing.assert_array_equal(layouts.spectral_norm_u(u0, perm), u0[perm][None])
