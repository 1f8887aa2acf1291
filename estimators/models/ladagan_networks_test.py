"""LadaGAN networks: exact parameter counts, attention maps, ablations, graph mode, names.

The counts were also checked against the official code (milmor/LadaGAN, tensorflow/model.py at
eb3ed9c) by building its Generator/Discriminator with the released configs and calling
count_params(), and by copying random weights into both and comparing outputs (equal to 1e-5).
"""
import numpy as np
import pytest
import tensorflow as tf

from estimators.models.ladagan_networks import (Discriminator, Generator, LadaGANArch, preset)

TINY = dict(g_dim=(64, 16, 8), g_mlp_dim=16, d_enc_dim=(8, 16), d_out_dim=(16, 32),
            d_mlp_dim=16)


def _block_params(c, heads=4, mlp=512, z=128, modulated=True):
  attn = 4 * (c * c + c) + c * heads + heads
  mlp_p = c * mlp + mlp + mlp * c + c
  norms = 2 * ((z * c + c) + 2 * (c * c + c)) if modulated else 2 * 2 * c
  return attn + mlp_p + norms


def expected_generator_params(arch):
  """Independent count, BN moving statistics included (as Keras' count_params)."""
  c0, c1, c2 = arch.g_dim
  n = arch.noise_dim * 64 * c0  # no bias
  n += sum(t * c + _block_params(c) for t, c in ((64, c0), (256, c1), (1024, c2)))
  n += 9 * (c0 // 4) * c1 + c1 + 9 * (c1 // 4) * c2 + c2  # LEE convs
  c = c2 if arch.g_decoder else c2 // arch.patch_size ** 2
  for width in arch.g_decoder:
    n += 9 * c * width + width + 4 * width  # conv + BN (gamma, beta, mean, variance)
    c = width
  return n + 9 * c * 3 + 3


def expected_discriminator_params(arch):
  enc = arch.d_enc_dim
  n = 9 * 3 * enc[0]
  for cin, cout in zip(enc[:-1], enc[1:]):
    n += 9 * cin * cout + 9 * cout * cout + cin * cout + 3 * 4 * cout
  c = enc[-1]
  n += 256 * c + _block_params(c) - 2 * ((128 * c + c) + 2 * (c * c + c)) + 4 * c  # LN, not SLN
  n += 9 * 4 * c * arch.d_out_dim[0] + arch.d_out_dim[0]
  return n + arch.d_out_dim[0] * arch.d_out_dim[1] + 16 * arch.d_out_dim[1]


# The paper's Table V #Params are the generators; discriminators are not in the paper.
COUNTS = {"cifar10": (19_901_647, 6_777_476), "celeba64": (19_900_351, 7_006_660),
          "ffhq128": (24_026_255, 7_063_908)}


def test_lsun128_is_the_ffhq128_architecture():
  assert preset("lsun128") == preset("ffhq128")  # Table II's best: conv decoder, {1024, 512, 256}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_parameter_counts_are_the_papers(name):
  arch = preset(name)
  g, d = Generator(arch), Discriminator(arch)
  images = g(tf.zeros([1, 128]))
  assert images.shape == (1, arch.image_size, arch.image_size, 3)
  assert d(images).shape == (1, 25)
  assert (g.count_params(), d.count_params()) == COUNTS[name]
  assert g.count_params() == expected_generator_params(arch)
  assert d.count_params() == expected_discriminator_params(arch)


def test_attention_maps_per_stage_sum_to_one():
  tf.keras.utils.set_random_seed(0)
  arch = LadaGANArch(**TINY)
  g, d = Generator(arch), Discriminator(arch)
  images, maps = g(tf.random.normal([2, 128]), return_attention=True)
  assert [m.shape for m in maps] == [(2, 4, 64), (2, 4, 256), (2, 4, 1024)]
  for m in maps:
    np.testing.assert_allclose(m.numpy().sum(-1), 1.0, rtol=1e-5)
  logits, d_map = d(images, return_attention=True)
  assert logits.shape == (2, 25) and d_map.shape == (2, 4, 256)
  np.testing.assert_allclose(g(tf.zeros([1, 128])).numpy(),
                             g(tf.zeros([1, 128]), return_attention=True)[0].numpy())


def test_patch_and_decoder_outputs_and_orthogonal_init():
  patch = Generator(LadaGANArch(image_size=64, **dict(TINY, d_enc_dim=(4, 8, 16))))
  assert patch(tf.zeros([1, 128])).shape == (1, 64, 64, 3)
  assert patch.to_rgb.kernel.shape == (3, 3, 2, 3)  # 8 channels / (2x2 patch)
  dec = Generator(LadaGANArch(image_size=128, g_decoder=(6, 4),
                              **dict(TINY, d_enc_dim=(4, 4, 8, 16))))
  assert dec(tf.zeros([1, 128]), training=True).shape == (1, 128, 128, 3)
  assert [v.name for v in dec.non_trainable_variables] == [
      f"generator/dec_bn_{i}/{s}:0" for i in (0, 1) for s in ("moving_mean", "moving_variance")]
  k = dec.init_dense.kernel.numpy()  # [128, 4096]: orthonormal rows
  np.testing.assert_allclose(k @ k.T, np.eye(128), atol=1e-4)


def test_table_one_ablations():
  tf.keras.utils.set_random_seed(1)
  base = LadaGANArch(**TINY)
  z = tf.random.normal([2, 128])
  g = Generator(base)
  res = Generator(LadaGANArch(g_mlp_residual=True, **TINY))
  assert g(z).shape == res(z).shape and g.count_params() == res.count_params()
  res.set_weights(g.get_weights())
  assert not np.allclose(g(z).numpy(), res(z).numpy())
  no_conv = Generator(LadaGANArch(g_lee_conv=False, **dict(TINY, g_dim=(64, 16, 4))))
  assert no_conv(z).shape == (2, 32, 32, 3)
  assert all("lee" not in v.name for v in no_conv.weights)
  ln = Generator(LadaGANArch(g_modulation=False, **TINY))
  ln(z)
  assert ln.count_params() < g.count_params()
  assert all("hidden" not in v.name for v in ln.weights)
  with pytest.raises(ValueError, match="quarter"):
    LadaGANArch(g_lee_conv=False, **TINY)
  paper = Generator(LadaGANArch(g_residual_with_pos_emb=False, **TINY))
  paper(z)
  paper.set_weights(g.get_weights())
  assert not np.allclose(g(z).numpy(), paper(z).numpy())


def test_conv_discriminator_of_table_two():
  arch = LadaGANArch(d_type="conv", **TINY)
  d = Discriminator(arch)
  x = tf.random.normal([3, 32, 32, 3])
  assert d(x, training=True).shape == (3, 25)
  names = [v.name for v in d.weights]
  assert not any("block_16" in n or "pos_emb" in n or "_bn" in n for n in names)
  assert "discriminator/head_down/main_conv1/kernel:0" in names
  with pytest.raises(ValueError, match="no attention map"):
    d(x, return_attention=True)
  bn = Discriminator(LadaGANArch(d_type="conv", d_conv_batch_norm=True, **TINY))
  bn(x)
  assert len(bn.non_trainable_variables) == 2 * 3 * 2  # two blocks x three BNs x (mean, var)


def _graph_names_and_outputs(arch, batch_sizes):
  graph = tf.Graph()
  with graph.as_default():
    z = tf.compat.v1.placeholder(tf.float32, [None, 128])
    g, d = Generator(arch), Discriminator(arch)
    with tf.compat.v1.name_scope("Generator"):
      images = g(z, training=True)
    logits = d(images, training=True)
    assert images.shape.as_list() == [None, arch.image_size, arch.image_size, 3]
    assert logits.shape.as_list() == [None, 25]
    updates = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      shapes = [sess.run(logits, {z: np.zeros([b, 128], np.float32)}).shape
                for b in batch_sizes]
    return sorted(v.name for v in tf.compat.v1.global_variables()), shapes, updates


def test_tf1_graph_any_batch_stable_names_and_bn_updates():
  arch = LadaGANArch(image_size=64, g_decoder=(4,), **dict(TINY, d_enc_dim=(4, 8, 16)))
  names1, shapes, updates = _graph_names_and_outputs(arch, [1, 3])
  assert shapes == [(1, 25), (3, 25)]
  # decoder BN (1) and the discriminator's 2 down-blocks x 3 BNs: mean and variance each
  assert len(updates) == 2 * (1 + 6)
  names2, _, _ = _graph_names_and_outputs(arch, [2])
  assert names1 == names2
  assert "Generator/generator/block_32/attention/score/kernel:0" in names1
  assert "discriminator/down_1/skip_bn/moving_mean:0" in names1


def test_bad_architectures_fail_clearly():
  with pytest.raises(ValueError, match="32 \\* 2\\^k"):
    LadaGANArch(image_size=48)
  with pytest.raises(ValueError, match="needs 2 widths"):
    LadaGANArch(image_size=128, g_decoder=(8,), d_enc_dim=(4, 4, 8, 16))
  with pytest.raises(ValueError, match="d_enc_dim"):
    LadaGANArch(image_size=64, d_enc_dim=(8, 16))
  with pytest.raises(ValueError, match="d_type"):
    LadaGANArch(d_type="fast")
  with pytest.raises(ValueError, match="unknown LadaGAN preset"):
    preset("imagenet")
  assert preset("lsun128", d_type="conv").d_type == "conv"
  assert LadaGANArch(g_dim=[1024, 256, 64]) == LadaGANArch()  # lists become tuples
