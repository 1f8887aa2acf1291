"""SAGAN networks: exact parameter counts, attention placement, ablations, output contracts."""
import numpy as np
import pytest
import tensorflow as tf

from estimators.models.sagan_networks import (Discriminator, Generator, GBlock, DBlock,
                                       valid_attention_resolutions)
from tfgan_attention import SelfAttention


def _count(model):
  return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


def _attention_params(c):
  return 2 * c * (c // 8) + c * (c // 2) + (c // 2) * c + 1  # theta, phi, g, out (no bias), gate


def expected_generator_params(gf, classes, z=128, attention_channels=None):
  """Independent count of TF-GAN's 128 px SAGAN generator (documented in the README)."""
  widths = [16 * gf, 16 * gf, 8 * gf, 4 * gf, 2 * gf, gf]
  n = z * 16 * widths[0] + 16 * widths[0]  # SN linear to 4x4x16gf, with bias
  for cin, cout in zip(widths[:-1], widths[1:]):
    n += 2 * classes * cin + 2 * classes * cout  # two CBNs: per-class gamma and beta
    n += 9 * cin * cout + cout + 9 * cout * cout + cout + cin * cout + cout  # 3x3, 3x3, 1x1
  n += 2 * gf + 9 * gf * 3 + 3  # final BN and SN conv to RGB
  return n + (_attention_params(attention_channels) if attention_channels else 0)


def expected_discriminator_params(df, classes, attention_channels=None):
  n = 9 * 3 * df + df + 9 * df * df + df + 3 * df + df  # optimized block
  widths = [df, 2 * df, 4 * df, 8 * df, 16 * df]
  for cin, cout in zip(widths[:-1], widths[1:]):  # downsampling blocks, learned shortcut
    n += 9 * cin * cout + cout + 9 * cout * cout + cout + cin * cout + cout
  c = 16 * df
  n += 2 * (9 * c * c + c)  # last block: no downsampling, identity shortcut
  n += c + 1 + classes * c  # SN linear and projection embedding
  return n + (_attention_params(attention_channels) if attention_channels else 0)


@pytest.mark.parametrize("feat,g_ch,d_ch", [(64, 128, 64), (32, 256, 128)])
def test_128px_parameter_counts_at_gf_df_64(feat, g_ch, d_ch):
  g = Generator(128, 64, 1000, attention_resolution=feat)
  d = Discriminator(128, 64, 1000, attention_resolution=feat)
  images = g(tf.zeros([1, 128]), tf.constant([3]))
  assert images.shape == (1, 128, 128, 3)
  assert d(images, tf.constant([3])).shape == (1,)
  assert _count(g) == expected_generator_params(64, 1000, attention_channels=g_ch)
  assert _count(d) == expected_discriminator_params(64, 1000, attention_channels=d_ch)
  documented = {64: (42_017_412, 39_448_258), 32: (42_078_852, 39_463_618)}[feat]
  assert (_count(g), _count(d)) == documented


def test_attention_sits_at_the_requested_feature_map():
  g = Generator(128, 8, 5, attention_resolution=32)
  _, attn = g(tf.zeros([2, 128]), tf.constant([0, 1]), return_attention=True)
  assert attn.shape == (2, 1, 32 * 32, 16 * 16)  # queries 32x32, keys pooled to 16x16
  np.testing.assert_allclose(attn.numpy().sum(-1), 1.0, rtol=1e-5)
  assert isinstance(g.blocks[2], GBlock) and g.attention_after == 2
  d = Discriminator(128, 8, 5, attention_resolution=32)
  assert d.attention_after == 1 and isinstance(d.attention, SelfAttention)


def test_residual_ablation_and_no_attention():
  g = Generator(32, 8, 10, attention_resolution=16, attention_type="residual")
  d = Discriminator(32, 8, 10, attention_resolution=16, attention_type="residual")
  assert isinstance(g.attention, GBlock) and not g.attention.upsample
  assert isinstance(d.attention, DBlock) and not d.attention.downsample
  x = g(tf.zeros([2, 128]), tf.constant([0, 1]))
  assert x.shape == (2, 32, 32, 3) and d(x, tf.constant([0, 1])).shape == (2,)
  plain = Generator(32, 8, 10, attention_type="none")
  assert plain.attention is None
  assert _count(g) > _count(plain)


def test_unconditional_networks_have_no_class_parameters():
  g = Generator(64, 8, 0, attention_resolution=32)
  d = Discriminator(64, 8, 0, attention_resolution=32)
  x = g(tf.zeros([2, 128]))
  assert x.shape == (2, 64, 64, 3) and d(x).shape == (2,)
  assert d.embedding is None
  assert not [v for v in g.variables if "cbn/" in v.name]


def test_outputs_in_range_and_bad_settings_refused():
  x = Generator(32, 8, 10, attention_resolution=8)(tf.random.normal([4, 128]) * 50,
                                                  tf.constant([0, 1, 2, 3]))
  assert float(tf.reduce_max(tf.abs(x))) <= 1.0
  assert valid_attention_resolutions(128) == (8, 16, 32, 64)
  assert valid_attention_resolutions(32) == (8, 16)
  with pytest.raises(ValueError, match="choose one of"):
    Generator(32, 8, 10, attention_resolution=32)
  with pytest.raises(ValueError, match="image sizes"):
    Discriminator(48, 8, 10)
