"""SAGAN networks: exact parameter counts, attention placement, ablations, output contracts,
where the spectral-norm bound applies."""
import numpy as np
import pytest
import tensorflow as tf

from estimators.models.sagan_networks import (Discriminator, Generator, GBlock, DBlock,
                                       valid_attention_resolutions)
from tfgan_attention import SelfAttention, SNConv2D, SNDense, SNEmbedding, YLGAttention


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


def _sn_bounds(model):
  """{variable path of each SN layer's kernel: its bound}."""
  out = {}
  for m in model.submodules:
    if isinstance(m, (SNConv2D, SNDense, SNEmbedding)):
      var = m.embeddings if isinstance(m, SNEmbedding) else m.kernel
      out[var.name] = m.bound
  return out


def _built(bound, attention_type="self_attention", attention_layer_fn=None, gf=8, df=8):
  """32 px networks, attention at feat16."""
  g = Generator(32, gf, 10, attention_resolution=16, attention_type=attention_type,
                attention_layer_fn=attention_layer_fn, sn_bound=bound)
  d = Discriminator(32, df, 10, attention_resolution=16, attention_type=attention_type,
                    attention_layer_fn=attention_layer_fn, sn_bound=bound)
  labels = tf.constant([0, 1])
  d(g(tf.zeros([2, 128]), labels), labels)
  return g, d


def test_tfgan_bound_sits_where_tfgan_and_ylg_put_it_and_keeps_every_variable():
  """"tfgan": W / max(1, sigma) on every conv, linear and the class embedding; W / sigma on the
  attention 1x1 convs. Variable names and shapes (checkpoint keys) equal the "paper" networks'."""
  paper, tfgan = _built("paper"), _built("tfgan")
  for p_net, t_net in zip(paper, tfgan):
    assert [(v.name, v.shape) for v in p_net.variables] == [(v.name, v.shape)
                                                               for v in t_net.variables]
    assert set(_sn_bounds(p_net).values()) == {"paper"}
    bounds = _sn_bounds(t_net)
    inside = {n: b for n, b in bounds.items() if "_ops/sn_conv_" in n}
    assert len(inside) == 4 and set(inside.values()) == {"paper"}
    outside = {n: b for n, b in bounds.items() if n not in inside}
    assert set(outside.values()) == {"tfgan"}
  g, d = tfgan
  assert len(_sn_bounds(g)) == 1 + 3 * 3 + 1 + 4  # linear, 3 up-blocks, RGB conv, attention
  assert len(_sn_bounds(d)) == 3 + 3 + 2 + 2 + 1 + 1 + 4  # 4 blocks, linear, embedding, attention
  assert d.embedding.bound == "tfgan" and d.linear.bound == "tfgan" and g.linear.bound == "tfgan"


def test_tfgan_bound_reaches_ylg_attention_and_residual_ablation_as_tfgan_does():
  ylg = lambda name: YLGAttention(implementation="dense", name=name)
  g, d = _built("tfgan", attention_layer_fn=ylg, gf=16, df=32)  # 64 channels at feat16
  for net in (g, d):
    assert isinstance(net.attention, YLGAttention)
    att = {n: b for n, b in _sn_bounds(net).items() if "_ops/" in n}
    assert len(att) == 4 and set(att.values()) == {"paper"}  # as YLG's sn_conv1x1
  # A residual block in the attention slot is made of convolutions: it takes the network's bound.
  g, d = _built("tfgan", attention_type="residual")
  for net in (g, d):
    att = {n: b for n, b in _sn_bounds(net).items() if "_ops/" in n}
    assert len(att) >= 2 and set(att.values()) == {"tfgan"}


def test_sn_bound_default_is_the_papers_and_bad_values_are_refused():
  assert Generator(32, 8, 10, attention_resolution=16).sn_bound == "paper"
  assert Discriminator(32, 8, 10, attention_resolution=16).sn_bound == "paper"
  with pytest.raises(ValueError, match="'paper', 'tfgan'"):
    Generator(32, 8, 10, attention_resolution=16, sn_bound="TF-GAN")
  with pytest.raises(ValueError, match="'paper', 'tfgan'"):
    Discriminator(32, 8, 10, attention_resolution=16, sn_bound=None)


def _fused_conv_ops(image_size, attention_type, attention_resolution):
  """Fused-op lists of the _FusedConv2D nodes grappler makes of a D training graph (D on real
  and fake images, hinge loss, Adam), on the CPU."""
  from tensorflow.core.protobuf import config_pb2  # pylint: disable=import-outside-toplevel
  from tensorflow.python.grappler import tf_optimizer  # pylint: disable=import-outside-toplevel
  graph = tf.Graph()
  with graph.as_default(), tf.device("/device:CPU:0"):
    d = Discriminator(image_size, 8, 10, attention_resolution=attention_resolution,
                      attention_type=attention_type, sn_bound="tfgan")
    labels = tf.zeros([2], tf.int32)
    real, fake = (d(tf.random.normal([2, image_size, image_size, 3]), labels, training=True)
                  for _ in range(2))
    loss = tf.reduce_mean(tf.nn.relu(1 - real)) + tf.reduce_mean(tf.nn.relu(1 + fake))
    train = tf.compat.v1.train.AdamOptimizer(1e-4).minimize(loss, var_list=d.trainable_variables)
    graph.add_to_collection("train_op", train)
    meta = tf.compat.v1.train.export_meta_graph(graph=graph)
  config = config_pb2.ConfigProto()
  config.graph_options.rewrite_options.min_graph_nodes = -1
  optimized = tf_optimizer.OptimizeGraph(config, meta)
  return [[op.decode() for op in n.attr["fused_ops"].list.s] for n in optimized.node
          if n.op == "_FusedConv2D"]


@pytest.mark.parametrize("attention_type,resolution", [("self_attention", 16), ("residual", 8)])
def test_grappler_fuses_every_blocks_conv_bias_relu(attention_type, resolution):
  # Each block's first conv is Conv2D+BiasAdd+Relu: fused only if the remapper succeeds on the
  # whole graph. It failed while a block's sum (read by the next block's ReLU and shortcut) was
  # a Conv2D+BiasAdd+Add (issue #27; DBlock.call), leaving no such fusion at all.
  fused = _fused_conv_ops(32, attention_type, resolution)
  blocks = 4 + (attention_type == "residual")
  assert fused.count(["BiasAdd", "Relu"]) == 2 * blocks  # D on real and on fake images
  assert ["BiasAdd", "Add", "Relu"] not in fused
