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


def _ln(x, epsilon=1e-6):
  mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
  return (x - mean) / tf.sqrt(var + epsilon)


def _reference_generator(g, z, mlp_residual=False, lee_conv=True, modulated=True,
                         residual_with_pos_emb=True):
  """G(z) written out from the block formulas with g's weights (TINY: no decoder, 1 px patches).

  Only Lada attention is called as a layer (tested on its own); norms, MLP, LEE are by hand:
    SLN(t) = (relu(z Wh + bh) Wg + bg) * LN(t) + (relu(z Wh + bh) Wb + bb), else LN(t) g + b
    a = s + MAA(norm1(h + E)), s = h + E (official) or h (eq. 10);  y = MLP(norm2(a)) (+ a)
    LEE(h) = conv3x3(depth_to_space(h, 2)) or depth_to_space alone.
  """
  def norm(layer, t):
    if not modulated:
      return _ln(t, layer.epsilon) * layer.gamma + layer.beta
    hidden = tf.nn.relu(z @ layer.hidden.kernel + layer.hidden.bias)  # [B, C]
    gamma = hidden @ layer.gamma.kernel + layer.gamma.bias
    beta = hidden @ layer.beta.kernel + layer.beta.bias
    return gamma[:, None] * _ln(t) + beta[:, None]

  x = tf.reshape(z @ g.init_dense.kernel, [-1, 64, g.arch.g_dim[0]])  # [B, 64, C0]
  for i, (pos_emb, block) in enumerate(zip(g.pos_emb, g.blocks)):
    with_e = x + pos_emb.embeddings
    a = (with_e if residual_with_pos_emb else x) + block.attention(norm(block.norm1, with_e))
    fc1, fc2 = block.mlp.fc1, block.mlp.fc2
    y = tf.nn.gelu(norm(block.norm2, a) @ fc1.kernel + fc1.bias) @ fc2.kernel + fc2.bias
    x = a + y if mlp_residual else y  # [B, N, C]
    side = int(np.sqrt(x.shape[1]))
    grid = tf.reshape(x, [-1, side, side, x.shape[-1]])
    if i < 2:
      grid = tf.nn.depth_to_space(grid, 2)
      if lee_conv:
        conv = g.lee[i].conv
        grid = tf.nn.conv2d(grid, conv.kernel, 1, "SAME") + conv.bias
      x = tf.reshape(grid, [-1, 4 * side * side, grid.shape[-1]])
  return (tf.nn.conv2d(grid, g.to_rgb.kernel, 1, "SAME") + g.to_rgb.bias).numpy()


def test_table_one_ablations():
  """Each Table I ablation (and eq. 10's residual) equals its block formula written out with the
  same weights: LadaGAN's own G first, then each switch; weight-compatible ablations reuse G's."""
  tf.keras.utils.set_random_seed(1)
  z = tf.random.normal([2, 128])
  close = lambda model, expected: np.testing.assert_allclose(model(z).numpy(), expected,
                                                             rtol=1e-4, atol=1e-4)
  g = Generator(LadaGANArch(**TINY))
  g(z)
  close(g, _reference_generator(g, z))
  res = Generator(LadaGANArch(g_mlp_residual=True, **TINY))
  res(z)
  assert g.count_params() == res.count_params()
  res.set_weights(g.get_weights())
  close(res, _reference_generator(g, z, mlp_residual=True))
  paper = Generator(LadaGANArch(g_residual_with_pos_emb=False, **TINY))
  paper(z)
  paper.set_weights(g.get_weights())
  close(paper, _reference_generator(g, z, residual_with_pos_emb=False))
  # the switches change the output by more than the tolerance: each formula is distinguished
  for ablated in (res, paper):
    assert np.abs(ablated(z).numpy() - g(z).numpy()).max() > 1e-2
  no_conv = Generator(LadaGANArch(g_lee_conv=False, **dict(TINY, g_dim=(64, 16, 4))))
  assert no_conv(z).shape == (2, 32, 32, 3)
  close(no_conv, _reference_generator(no_conv, z, lee_conv=False))
  assert all("lee" not in v.name for v in no_conv.weights)
  ln = Generator(LadaGANArch(g_modulation=False, **TINY))
  ln(z)
  for v in ln.trainable_weights:  # LN's default gamma 1, beta 0 would hide a swapped affine
    v.assign(v + 0.1 * tf.random.normal(v.shape))
  close(ln, _reference_generator(ln, z, modulated=False))
  assert ln.count_params() < g.count_params()
  assert all("hidden" not in v.name for v in ln.weights)
  with pytest.raises(ValueError, match="quarter"):
    LadaGANArch(g_lee_conv=False, **TINY)


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
