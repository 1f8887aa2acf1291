"""Ladaformer blocks, SLN, LEE and positional embeddings against hand computations."""
import numpy as np
import pytest
import tensorflow as tf

from tfgan_attention.ladaformer import (DiscriminatorLadaformer, GeneratorLadaformer,
                                        LocalEmbeddingExpansion, PositionalEmbedding,
                                        SelfModulatedLayerNorm)


def _ln(x, eps=1e-6):
  mu = x.mean(-1, keepdims=True)
  return (x - mu) / np.sqrt(x.var(-1, keepdims=True) + eps)


def _dense(layer, x):
  return x @ layer.kernel.numpy() + layer.bias.numpy()


def test_sln_is_gamma_of_z_times_ln_plus_beta_of_z():
  tf.keras.utils.set_random_seed(1)
  x = np.random.RandomState(0).randn(2, 5, 6).astype(np.float32)
  z = np.random.RandomState(1).randn(2, 3).astype(np.float32)
  sln = SelfModulatedLayerNorm()
  y = sln(x, z).numpy()
  h = np.maximum(_dense(sln.hidden, z), 0)  # [B, C]
  expected = _dense(sln.gamma, h)[:, None] * _ln(x) + _dense(sln.beta, h)[:, None]
  np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
  # LN itself has no affine weights: hidden, gamma, beta kernels and biases only.
  assert sln.count_params() == (3 * 6 + 6) + 2 * (6 * 6 + 6)


def _mlp(block, x):
  h = _dense(block.mlp.fc1, x)
  gelu = 0.5 * h * (1 + np.vectorize(__import__("math").erf)(h / np.sqrt(2)))
  return _dense(block.mlp.fc2, gelu)


@pytest.mark.parametrize("mlp_residual", [False, True])
def test_generator_block_has_no_mlp_residual_unless_asked(mlp_residual):
  tf.keras.utils.set_random_seed(2)
  x = tf.random.normal([2, 4, 8])
  z = tf.random.normal([2, 5])
  block = GeneratorLadaformer(num_heads=2, mlp_dim=16, mlp_residual=mlp_residual)
  y, attn = block(x, z, return_attention=True)
  a = x + block.attention(block.norm1(x, z))
  expected = _mlp(block, block.norm2(a, z).numpy()) + (a.numpy() if mlp_residual else 0)
  np.testing.assert_allclose(y.numpy(), expected, rtol=1e-4, atol=1e-5)
  assert attn.shape == (2, 2, 4)


def test_generator_block_shortcut_replaces_the_attention_residual():
  tf.keras.utils.set_random_seed(6)
  h, e, z = tf.random.normal([2, 4, 8]), tf.random.normal([2, 4, 8]), tf.random.normal([2, 5])
  block = GeneratorLadaformer(num_heads=2, mlp_dim=16)
  y = block(h + e, z, shortcut=h)  # paper eq. 10: h + MAA(SLN(h + E))
  a = h + block.attention(block.norm1(h + e, z))
  np.testing.assert_allclose(y.numpy(), _mlp(block, block.norm2(a, z).numpy()), rtol=1e-4,
                             atol=1e-5)
  assert not np.allclose(y.numpy(), block(h + e, z).numpy())


def test_unmodulated_generator_block_ignores_z():
  tf.keras.utils.set_random_seed(3)
  x = tf.random.normal([2, 4, 8])
  block = GeneratorLadaformer(num_heads=2, mlp_dim=16, modulated=False)
  y1 = block(x, tf.random.normal([2, 5]))
  y2 = block(x, tf.random.normal([2, 5]))
  np.testing.assert_allclose(y1.numpy(), y2.numpy())
  assert isinstance(block.norm1, tf.keras.layers.LayerNormalization)


def test_discriminator_block_pre_ln_with_both_residuals():
  tf.keras.utils.set_random_seed(4)
  x = tf.random.normal([2, 4, 8])
  block = DiscriminatorLadaformer(num_heads=2, mlp_dim=16)
  y = block(x)
  for v in block.norm1.weights + block.norm2.weights:  # non-trivial affine LN
    v.assign(np.random.RandomState(v.shape[0]).rand(*v.shape) + 0.5)
  y = block(x).numpy()
  ln = lambda layer, t: _ln(t) * layer.gamma.numpy() + layer.beta.numpy()
  a = x.numpy() + block.attention(ln(block.norm1, x.numpy())).numpy()
  np.testing.assert_allclose(y, a + _mlp(block, ln(block.norm2, a)), rtol=1e-4, atol=1e-5)
  assert block.norm1.epsilon == 1e-6


def test_lee_pixel_shuffles_then_convolves():
  tf.keras.utils.set_random_seed(5)
  x = tf.random.normal([2, 3, 3, 8])
  lee = LocalEmbeddingExpansion(5)
  y = lee(x)
  assert y.shape == (2, 6, 6, 5)
  shuffled = tf.nn.depth_to_space(x, 2)
  np.testing.assert_allclose(y.numpy(), lee.conv(shuffled).numpy(), rtol=1e-6)
  # depth_to_space's layout: channel (i * 2 + j) * C/4 + c lands at pixel (2h + i, 2w + j).
  np.testing.assert_allclose(shuffled[0, 1, 0, :].numpy(), x[0, 0, 0, 4:6].numpy())
  assert lee.count_params() == 9 * 2 * 5 + 5
  plain = LocalEmbeddingExpansion(2, use_conv=False)
  np.testing.assert_allclose(plain(x).numpy(), shuffled.numpy())
  assert plain.count_params() == 0
  with pytest.raises(ValueError, match="C / 4 = 2"):
    LocalEmbeddingExpansion(5, use_conv=False)(x)


def test_positional_embedding_adds_a_learned_table():
  pe = PositionalEmbedding()
  x = tf.random.normal([3, 16, 4])
  y = pe(x)
  np.testing.assert_allclose((y - x).numpy(), np.broadcast_to(pe.embeddings.numpy(), (3, 16, 4)),
                             rtol=1e-6, atol=1e-6)
  assert pe.count_params() == 64


def test_variable_names_are_explicit():
  block = GeneratorLadaformer(num_heads=2, mlp_dim=16, name="block_8")
  block(tf.zeros([1, 4, 8]), tf.zeros([1, 3]))
  names = sorted(v.name for v in block.weights)
  assert "block_8/attention/score/kernel:0" in names
  assert "block_8/norm1/gamma/bias:0" in names
  assert "block_8/mlp/fc2/kernel:0" in names
