"""SAGAN generator and projection discriminator for 32, 64 and 128 px (TF-GAN's example layout).

Generator:  z -> SNDense -> 4x4xC0 -> up-blocks (CBN, ReLU, x2 nearest, SNconv3x3, CBN, ReLU,
            SNconv3x3; shortcut x2 + SNconv1x1) -> [attention at feat_k] -> BN -> ReLU ->
            SNconv3x3 -> tanh.
Discriminator: optimized block -> down-blocks (ReLU, SNconv3x3, ReLU, SNconv3x3, avgpool2;
            shortcut SNconv1x1 + avgpool2) -> [attention at feat_k] -> ... -> ReLU -> sum over
            H, W -> SNDense(1) + <h, SNEmbedding(y)> (projection).
Widths are multiples of gf / df, per resolution below. Layer names are explicit so checkpoint keys
are the same in the estimator's train, eval and predict graphs and in an eager rebuild.

Spectral-norm bound (`sn_bound`, issue #19): "paper" divides every kernel by its sigma; "tfgan"
divides the convolutions, linears and the class embedding by max(1, sigma) and keeps W / sigma for
the attention block's 1x1 convolutions, exactly as TF-GAN's example (ops.py: snconv2d, snlinear,
sn_embedding with equality_constrained=False; sn_conv1x1 with the default True) and the official
YLG code (ylg/ops.py, the same split) do. The bound changes no variable: a checkpoint loads under
either bound.
"""
import tensorflow as tf

from tfgan_attention import (SN_BOUNDS, BatchNorm, ConditionalBatchNorm, SelfAttention, SNConv2D,
                             SNDense, SNEmbedding)
from tfgan_attention.spectral_norm import check_bound

# Generator: width of the 4x4 input, then each up-block's output width, in units of gf.
# 128 px is TF-GAN's SAGAN; 64 px follows BigGAN-64; 32 px is SNGAN/BigGAN's CIFAR layout (4gf).
G_WIDTHS = {128: (16, 16, 8, 4, 2, 1), 64: (16, 16, 8, 4, 2), 32: (4, 4, 4, 4)}
# Discriminator: each block's width in units of df, and whether it halves the resolution.
D_BLOCKS = {
    128: ((1, True), (2, True), (4, True), (8, True), (16, True), (16, False)),
    64: ((1, True), (2, True), (4, True), (8, True), (16, False)),
    32: ((2, True), (2, True), (2, False), (2, False)),
}
ATTENTION_TYPES = ("self_attention", "residual", "none")
SN_BOUND_CHOICES = SN_BOUNDS  # ("paper", "tfgan"): see the module docstring


def generator_resolutions(image_size):
  """Feature-map sizes after each generator up-block, e.g. (8, 16, 32, 64, 128)."""
  return tuple(4 * 2 ** (i + 1) for i in range(len(G_WIDTHS[image_size]) - 1))


def discriminator_resolutions(image_size):
  sizes, s = [], image_size
  for _, down in D_BLOCKS[image_size]:
    s = s // 2 if down else s
    sizes.append(s)
  return tuple(sizes)


def valid_attention_resolutions(image_size):
  """Sizes where both networks have a feature map, so `attention_resolution` may take them."""
  return tuple(sorted(set(generator_resolutions(image_size))
                      & set(discriminator_resolutions(image_size))))


def attention_channels(image_size, gf_dim, df_dim, attention_resolution):
  """(generator, discriminator) channel counts at the attention block."""
  g_idx = generator_resolutions(image_size).index(attention_resolution)
  d_idx = discriminator_resolutions(image_size).index(attention_resolution)
  return gf_dim * G_WIDTHS[image_size][1 + g_idx], df_dim * D_BLOCKS[image_size][d_idx][0]


def _upsample(x):
  """Nearest neighbour x2: one ResizeNearestNeighbor op (and one op for its gradient), the same
  values as two tf.repeat or TF-GAN's tile, and the cheapest of the three on CPU (issue #27)."""
  return tf.image.resize(x, [2 * x.shape[1], 2 * x.shape[2]], method="nearest")


def _downsample(x):
  return tf.nn.avg_pool2d(x, ksize=2, strides=2, padding="VALID")


class _GNorm(tf.keras.layers.Layer):
  """CBN for class-conditional generators, plain BN for unconditional ones."""

  def __init__(self, num_classes, decay=0.999, cross_replica=True, inference="moving", **kwargs):
    super().__init__(**kwargs)
    kw = dict(decay=decay, cross_replica=cross_replica, inference=inference)
    self.norm = (ConditionalBatchNorm(num_classes, name="cbn", **kw) if num_classes
                 else BatchNorm(name="bn", **kw))
    self.conditional = bool(num_classes)

  def call(self, x, labels, training=False):
    if self.conditional:
      return self.norm(x, labels, training=training)
    return self.norm(x, training=training)


class GBlock(tf.keras.layers.Layer):
  """Generator residual block; `upsample=False` is the Table 1 'residual instead of attention'.
  `sn_bound` is its convolutions' spectral-norm bound ("paper" or "tfgan")."""

  def __init__(self, out_channels, num_classes, upsample=True, bn_decay=0.999,
               cross_replica_bn=True, sn_bound="paper", bn_inference="moving", **kwargs):
    super().__init__(**kwargs)
    self.upsample = upsample
    norm = dict(decay=bn_decay, cross_replica=cross_replica_bn, inference=bn_inference)
    sn = dict(bound=check_bound(sn_bound))
    self.bn0 = _GNorm(num_classes, name="cbn_0", **norm)
    self.conv1 = SNConv2D(out_channels, 3, name="snconv1", **sn)
    self.bn1 = _GNorm(num_classes, name="cbn_1", **norm)
    self.conv2 = SNConv2D(out_channels, 3, name="snconv2", **sn)
    self.shortcut = SNConv2D(out_channels, 1, name="snconv3", **sn)

  def call(self, x, labels, training=False):
    h = tf.nn.relu(self.bn0(x, labels, training=training))
    if self.upsample:
      h, x = _upsample(h), _upsample(x)
    h = self.conv1(h, training=training)
    h = tf.nn.relu(self.bn1(h, labels, training=training))
    h = self.conv2(h, training=training)
    return self.shortcut(x, training=training) + h


class DBlock(tf.keras.layers.Layer):
  """Discriminator residual block; `optimized` is the first block (no pre-activation).
  `sn_bound` is its convolutions' spectral-norm bound ("paper" or "tfgan")."""

  def __init__(self, out_channels, downsample=True, optimized=False, in_channels=None,
               update_u_in_eval=False, sn_bound="paper", **kwargs):
    super().__init__(**kwargs)
    self.downsample = downsample
    self.optimized = optimized
    sn = dict(update_u_in_eval=update_u_in_eval, bound=check_bound(sn_bound))
    self.conv1 = SNConv2D(out_channels, 3, name="sn_conv1", **sn)
    self.conv2 = SNConv2D(out_channels, 3, name="sn_conv2", **sn)
    self.learned_shortcut = optimized or downsample or in_channels != out_channels
    self.shortcut = (SNConv2D(out_channels, 1, name="sn_conv3", **sn)
                     if self.learned_shortcut else None)

  def call(self, x, training=False):
    # The sum is TF-GAN's shortcut + residual; where a Conv2D+BiasAdd would feed it directly
    # that convolution adds the other branch before its bias (SNConv2D's `residual`), the same
    # sum up to float32 round-off. Reason: the next block reads the sum twice (its ReLU and its
    # shortcut), and TF 2.15's remapper, which fuses Conv2D+BiasAdd+Add+Relu without checking
    # that the Add has no other reader, then fails on the whole graph ("Mutation::Apply error:
    # fanout ... exist for missing node .../add"): no Conv2D+BiasAdd+Relu fusion anywhere.
    h = x if self.optimized else tf.nn.relu(x)
    h = tf.nn.relu(self.conv1(h, training=training))
    if self.optimized:  # TF-GAN: pool, then 1x1 conv
      h = _downsample(self.conv2(h, training=training))
      return self.shortcut(_downsample(x), training=training, residual=h)
    s = x
    if self.learned_shortcut:
      s = self.shortcut(s, training=training)
      s = _downsample(s) if self.downsample else s
    if self.downsample:
      return s + _downsample(self.conv2(h, training=training))
    return self.conv2(h, training=training, residual=s)


def _check_arch(image_size, attention_type, attention_resolution):
  if image_size not in G_WIDTHS:
    raise ValueError(f"SAGAN networks exist for image sizes {sorted(G_WIDTHS)}, got {image_size}")
  if attention_type not in ATTENTION_TYPES:
    raise ValueError(f"attention_type must be one of {ATTENTION_TYPES}, got {attention_type!r}")
  valid = valid_attention_resolutions(image_size)
  if attention_type != "none" and attention_resolution not in valid:
    raise ValueError(f"attention_resolution {attention_resolution} is not a feature-map size of "
                     f"both networks at {image_size} px; choose one of {valid}")


def _attention_layer(attention_type, num_heads, make_residual, update_u_in_eval, name):
  if attention_type == "self_attention":
    return SelfAttention(num_heads=num_heads, update_u_in_eval=update_u_in_eval, name=name)
  return make_residual(name)


class Generator(tf.keras.Model):
  """G(z, y) -> images [B, S, S, 3] in [-1, 1].

  `sn_bound`: "paper" (W / sigma everywhere) or "tfgan" (W / max(1, sigma) for the linear and the
  convolutions, including a residual block in the attention slot; W / sigma for the attention
  block's 1x1 convolutions, which its own layer keeps). See the module docstring.
  """

  def __init__(self, image_size, gf_dim, num_classes, attention_resolution=32,
               attention_type="self_attention", num_heads=1, attention_layer_fn=None,
               bn_decay=0.999, cross_replica_bn=True, sn_bound="paper", bn_inference="moving",
               name="generator"):
    super().__init__(name=name)
    _check_arch(image_size, attention_type, attention_resolution)
    self.sn_bound = check_bound(sn_bound)
    widths = [gf_dim * m for m in G_WIDTHS[image_size]]
    self.num_classes = num_classes
    self.initial_channels = widths[0]
    self.linear = SNDense(4 * 4 * widths[0], name="g_snh0", bound=sn_bound)
    norm = dict(bn_decay=bn_decay, cross_replica_bn=cross_replica_bn, sn_bound=sn_bound,
                bn_inference=bn_inference)
    self.blocks = [GBlock(w, num_classes, name=f"g_block{i + 1}", **norm)
                   for i, w in enumerate(widths[1:])]
    self.attention_after = None
    self.attention = None
    if attention_type != "none":
      self.attention_after = generator_resolutions(image_size).index(attention_resolution)
      channels = widths[1 + self.attention_after]
      make_res = lambda n: GBlock(channels, num_classes, upsample=False, name=n, **norm)
      if attention_layer_fn is not None and attention_type == "self_attention":
        self.attention = attention_layer_fn("g_ops")
      else:
        self.attention = _attention_layer(attention_type, num_heads, make_res, False, "g_ops")
    self.final_bn = BatchNorm(decay=bn_decay, cross_replica=cross_replica_bn,
                              inference=bn_inference, name="g_bn")
    self.final_conv = SNConv2D(3, 3, name="g_snconv_last", bound=sn_bound)

  def call(self, z, labels=None, training=False, return_attention=False):
    h = self.linear(z, training=training)
    h = tf.reshape(h, [-1, 4, 4, self.initial_channels])  # [B, 4, 4, C0]
    attn = None
    for i, block in enumerate(self.blocks):
      h = block(h, labels, training=training)
      if i == self.attention_after:
        if isinstance(self.attention, GBlock):
          h = self.attention(h, labels, training=training)
        else:
          h, attn = self.attention(h, training=training, return_attention=True)
    h = tf.nn.relu(self.final_bn(h, training=training))
    images = tf.tanh(self.final_conv(h, training=training))  # [B, S, S, 3]
    return (images, attn) if return_attention else images


class Discriminator(tf.keras.Model):
  """D(x, y) -> logits [B]; projection on the class embedding when num_classes > 0.

  `sn_bound`: "paper" or "tfgan" (W / max(1, sigma) for the convolutions, the linear and the
  class embedding; the attention block keeps W / sigma), as Generator.
  """

  def __init__(self, image_size, df_dim, num_classes, attention_resolution=32,
               attention_type="self_attention", num_heads=1, update_u_in_eval=False,
               attention_layer_fn=None, sn_bound="paper", name="discriminator"):
    super().__init__(name=name)
    _check_arch(image_size, attention_type, attention_resolution)
    self.sn_bound = check_bound(sn_bound)
    sn = dict(update_u_in_eval=update_u_in_eval)
    block_sn = dict(sn, sn_bound=sn_bound)
    self.blocks = []
    in_ch = 3
    for i, (mult, down) in enumerate(D_BLOCKS[image_size]):
      name_i = "d_optimized_block1" if i == 0 else f"d_block{i + 1}"
      self.blocks.append(DBlock(df_dim * mult, downsample=down, optimized=(i == 0),
                                in_channels=in_ch, name=name_i, **block_sn))
      in_ch = df_dim * mult
    self.attention_after = None
    self.attention = None
    if attention_type != "none":
      self.attention_after = discriminator_resolutions(image_size).index(attention_resolution)
      channels = df_dim * D_BLOCKS[image_size][self.attention_after][0]
      make_res = lambda n: DBlock(channels, downsample=False, in_channels=channels, name=n,
                                  **block_sn)
      if attention_layer_fn is not None and attention_type == "self_attention":
        self.attention = attention_layer_fn("d_ops")
      else:
        self.attention = _attention_layer(attention_type, num_heads, make_res, update_u_in_eval,
                                          "d_ops")
    self.linear = SNDense(1, name="d_sn_linear", bound=sn_bound, **sn)
    self.embedding = (SNEmbedding(num_classes, in_ch, name="d_embedding", bound=sn_bound, **sn)
                      if num_classes else None)

  def call(self, images, labels=None, training=False):
    h = images
    for i, block in enumerate(self.blocks):
      h = block(h, training=training)
      if i == self.attention_after:
        h = self.attention(h, training=training)
    h = tf.reduce_sum(tf.nn.relu(h), axis=[1, 2])  # [B, C]
    logits = self.linear(h, training=training)[:, 0]  # [B]
    if self.embedding is not None:
      logits += tf.reduce_sum(h * self.embedding(labels, training=training), axis=1)
    return logits

  def attention_features(self, images, training=False, return_attention=True):
    """D0 of YLG's inversion (paper sec. 5, app. 9.1: "the Discriminator network up to, but not
    including, the attention layer"; the official ylg/inverse_image.py takes the same tensor,
    `h1_`) and the attention layer's per-head attention over it.

    images: [B, S, S, 3] in [-1, 1]. `training` only refreshes spectral-norm u vectors (D has
    no batch norm). Returns (features [B, r, r, C], attention) with r = attention_resolution;
    attention is the layer's own (SelfAttention: [B, heads, r*r, (r/2)^2]; sparse YLG: a
    CompactAttention), or None with return_attention=False (then the layer is not run).
    """
    if self.attention is None or isinstance(self.attention, DBlock):
      raise ValueError("attention_features needs an attention layer; this discriminator has "
                       f"{'none' if self.attention is None else 'a residual block'} "
                       "(--attention_type=self_attention)")
    h = images
    for block in self.blocks[:self.attention_after + 1]:
      h = block(h, training=training)
    if not return_attention:
      return h, None
    _, attention = self.attention(h, training=training, return_attention=True)
    return h, attention
