"""AttnGAN's networks (Xu et al. 2018; official code taoxugit/AttnGAN, model.py), channels last.

Generator (G_NET):
  words, sentence = frozen DAMSM text encoder(captions)       [B, T, D], [B, D]  (D = 256)
  c, mu, logvar = F_ca(sentence)                                [B, c_dim] each   (c_dim 100)
  G0 (INIT_STAGE_G): [c, z] -> Dense (no bias) -> BN -> GLU -> 4x4 x (ngf 2^n) -> n up-blocks
      (nearest x2, conv3x3 no bias to 2 out, BN, GLU) -> base x base x ngf; n = log2(base / 4)
      (the paper's base 64: n = 4, 4x4x16ngf as the official code)
  G1, G2 (NEXT_STAGE_G): WordAttention(h, words) -> [h, context] -> R_NUM residual blocks
      (conv3x3 -> BN -> GLU -> conv3x3 -> BN, + skip) -> up-block to ngf, twice the size
  each stage: conv3x3 (no bias) -> tanh                         [B, s_k, s_k, 3]
  `branch_num` stages: 1 = G0 alone, 2 = AttnGAN1 (one attention stage), 3 = AttnGAN2 (two).
Discriminators (D_NET64/128/256), one per stage: conv4x4 s2 + LReLU 0.2 (no BN), then
  conv4x4 s2 + BN + LReLU (widths ndf, 2ndf, 4ndf, 8ndf, 16ndf...) down to 4x4, then 3x3 blocks
  (conv3x3 BN LReLU) halving the width back to 8ndf; logits (no sigmoid here; the losses use
  sigmoid cross-entropy, the official sigmoid + BCELoss):
    unconditional: conv4x4 stride 4 -> [B]
    conditional:   [code, sentence tiled 4x4] -> conv3x3 BN LReLU -> conv4x4 stride 4 -> [B]
Init as the official code: orthogonal convolutions and linears, BN gamma ~ N(1, 0.02).

The text encoder is part of the generator (so the SavedModel serves token ids and strings on its
own), with every variable non-trainable: it is never in G's trainable variables, never in the
EMA, and its weights are the pretrained DAMSM's (attngan.py sets their initial values and the
GAN checkpoint then carries them).
"""
import math

import tensorflow as tf

from tfgan_attention import BatchNorm, ConditioningAugmentation, WordAttention
from tfgan_attention.conditioning_augmentation import glu
from tfgan_attention.initializers import ORTHOGONAL

# Orthogonal kernels as the official weights_init; Keras' values (same draw, same Q to float32
# round-off), factorised by Cholesky where a kernel is tall: TF's CPU QR on the discriminators'
# 32768 x 1024 kernels took most of the CUB config's set-up (tfgan_attention/initializers.py).
INIT = ORTHOGONAL


class OfficialBatchNorm(BatchNorm):
  """The project's graph-safe BatchNorm with the official init gamma ~ N(1, 0.02) and PyTorch's
  eps 1e-5 and momentum 0.1 (decay 0.9)."""

  def __init__(self, cross_replica=True, **kwargs):
    super().__init__(decay=0.9, epsilon=1e-5, cross_replica=cross_replica, **kwargs)

  def build(self, input_shape):
    c = int(input_shape[-1])
    self.gamma = self.add_weight(name="gamma", shape=(c,),
                                 initializer=tf.keras.initializers.RandomNormal(1.0, 0.02))
    self.beta = self.add_weight(name="beta", shape=(c,), initializer="zeros")
    self._build_moments(c)
    tf.keras.layers.Layer.build(self, input_shape)  # pylint: disable=bad-super-call


def batch_norm(name, cross_replica):
  return OfficialBatchNorm(cross_replica=cross_replica, name=name)


def conv(filters, kernel, name, strides=1, use_bias=False, padding="same"):
  return tf.keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding,
                                use_bias=use_bias, kernel_initializer=INIT, name=name)


def upsample(x):
  return tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)  # nearest x2


def stage_sizes(image_size, branch_num):
  """Image sizes of the stages, e.g. (64, 128, 256) for 256 px with 3 branches."""
  base = image_size // 2 ** (branch_num - 1)
  return tuple(base * 2 ** k for k in range(branch_num))


def check_sizes(image_size, branch_num):
  """Why `image_size` with `branch_num` stages cannot be built, or None."""
  if branch_num < 1:
    return f"--branch_num={branch_num} must be at least 1"
  base = image_size // 2 ** (branch_num - 1)
  if base * 2 ** (branch_num - 1) != image_size or base < 8 or base & (base - 1):
    return (f"--image_size={image_size} with --branch_num={branch_num} stages needs a first "
            f"stage of a power-of-two size >= 8 (image_size / 2^(branch_num - 1)); got {base}")
  return None


class UpBlock(tf.keras.layers.Layer):
  """Nearest x2, conv3x3 (no bias) to 2 out, BN, GLU -> [B, 2H, 2W, out]."""

  def __init__(self, filters, cross_replica=True, **kwargs):
    super().__init__(**kwargs)
    self.conv = conv(2 * filters, 3, "conv")
    self.bn = batch_norm("bn", cross_replica)

  def call(self, x, training=False):
    return glu(self.bn(self.conv(upsample(x)), training=training))


class ResBlock(tf.keras.layers.Layer):
  """conv3x3 (2C) -> BN -> GLU -> conv3x3 (C) -> BN, plus the input."""

  def __init__(self, channels, cross_replica=True, **kwargs):
    super().__init__(**kwargs)
    self.conv1 = conv(2 * channels, 3, "conv1")
    self.bn1 = batch_norm("bn1", cross_replica)
    self.conv2 = conv(channels, 3, "conv2")
    self.bn2 = batch_norm("bn2", cross_replica)

  def call(self, x, training=False):
    h = glu(self.bn1(self.conv1(x), training=training))
    return x + self.bn2(self.conv2(h), training=training)


class Generator(tf.keras.Model):
  """G(noise, captions, lengths, ca_noise) -> dict of every stage's images and the text code.

  Args:
    text_encoder: a damsm_networks.TextEncoder (frozen here: all its variables non-trainable).
    image_size: of the last stage. branch_num: stages (1-3). ngf: gf_dim (CUB 32, COCO 48).
    z_dim: 100. condition_dim: c_dim (100). r_num: residual blocks per attention stage.
  Call returns {'images': last stage, 'stage_<k>': [B, s_k, s_k, 3] for every stage k,
    'mu', 'logvar' [B, c_dim], 'words' [B, T, D], 'sentence' [B, D], 'caption_length' [B],
    'attention_<k>' [B, T, s_{k-1}^2] for k >= 1 (the word attention of the stage that makes
    stage k's image, over the previous stage's feature map)}.
  """

  def __init__(self, text_encoder, image_size, branch_num=3, ngf=32, z_dim=100,
               condition_dim=100, r_num=2, cross_replica=True, name="generator"):
    super().__init__(name=name)
    problem = check_sizes(image_size, branch_num)
    if problem:
      raise ValueError(problem)
    self.text_encoder = text_encoder
    self.text_encoder.trainable = False
    self.sizes = stage_sizes(image_size, branch_num)
    self.branch_num = branch_num
    self.ngf = ngf
    self.z_dim = z_dim
    ups = int(math.log2(self.sizes[0] // 4))
    self.init_width = ngf * 2 ** ups
    self.ca = ConditioningAugmentation(condition_dim, kernel_initializer=INIT, name="ca_net")
    self.init_fc = tf.keras.layers.Dense(self.init_width * 16 * 2, use_bias=False,
                                         kernel_initializer=INIT, name="init_fc")
    self.init_bn = batch_norm("init_bn", cross_replica)
    self.init_up = [UpBlock(self.init_width // 2 ** (i + 1), cross_replica, name=f"init_up_{i}")
                    for i in range(ups)]
    self.attention = []
    self.residual = []
    self.next_up = []
    for k in range(1, branch_num):
      self.attention.append(WordAttention(kernel_initializer=INIT, name=f"att_{k}"))
      self.residual.append([ResBlock(2 * ngf, cross_replica, name=f"res_{k}_{r}")
                            for r in range(r_num)])
      self.next_up.append(UpBlock(ngf, cross_replica, name=f"up_{k}"))
    self.to_image = [conv(3, 3, f"img_{k}") for k in range(branch_num)]

  def encode_text(self, captions, lengths):
    """The frozen DAMSM text encoder in inference mode; no gradient flows into it."""
    words, sentence = self.text_encoder(captions, lengths, training=False)
    return tf.stop_gradient(words), tf.stop_gradient(sentence)  # [B, T, D], [B, D]

  def call(self, noise, captions, lengths, ca_noise, training=False):
    words, sentence = self.encode_text(captions, lengths)
    c, mu, logvar = self.ca(sentence, noise=ca_noise)  # [B, c_dim] each
    x = self.init_fc(tf.concat([c, noise], axis=-1))  # c first, as the official code
    x = glu(self.init_bn(x, training=training))
    x = tf.reshape(x, [-1, 4, 4, self.init_width])
    for block in self.init_up:
      x = block(x, training=training)  # ... -> [B, s_0, s_0, ngf]
    out = {"mu": mu, "logvar": logvar, "words": words, "sentence": sentence,
           "caption_length": tf.cast(lengths, tf.int32)}
    out["stage_0"] = tf.tanh(self.to_image[0](x))
    for k in range(1, self.branch_num):
      context, beta = self.attention[k - 1](x, words, lengths)  # [B, s, s, ngf], [B, T, s*s]
      x = tf.concat([x, context], axis=-1)  # [B, s, s, 2 ngf]
      for block in self.residual[k - 1]:
        x = block(x, training=training)
      x = self.next_up[k - 1](x, training=training)  # [B, 2s, 2s, ngf]
      out[f"stage_{k}"] = tf.tanh(self.to_image[k](x))
      out[f"attention_{k}"] = beta
    out["images"] = out[f"stage_{self.branch_num - 1}"]
    return out


class StageDiscriminator(tf.keras.layers.Layer):
  """D_NET64/128/256 for one stage: a 4x4 code, unconditional and conditional logits [B]."""

  def __init__(self, image_size, ndf=64, cross_replica=True, **kwargs):
    super().__init__(**kwargs)
    downs = int(math.log2(image_size // 4))
    self.convs, self.bns = [], []
    width = ndf
    for i in range(downs):
      width = ndf * 2 ** i
      self.convs.append(conv(width, 4, f"down_{i}", strides=2))
      self.bns.append(batch_norm(f"down_bn_{i}", cross_replica) if i else None)
    self.blocks = []
    target = ndf * 8
    while width > target:  # D128 / D256: 3x3 blocks back to 8 ndf
      width //= 2
      self.blocks.append((conv(width, 3, f"block_{len(self.blocks)}"),
                          batch_norm(f"block_bn_{len(self.blocks)}", cross_replica)))
    self.code_width = width
    self.uncond = conv(1, 4, "uncond_logits", strides=4, use_bias=True, padding="valid")
    self.joint_conv = conv(width, 3, "cond_joint")
    self.joint_bn = batch_norm("cond_joint_bn", cross_replica)
    self.cond = conv(1, 4, "cond_logits", strides=4, use_bias=True, padding="valid")

  def call(self, images, sentence, wrong_sentence=None, training=False):
    """{'uncond', 'cond'} logits [B] (+ 'cond_wrong' [n]: image i with wrong_sentence i for the
    n <= B rows of wrong_sentence; official COND_DNET(real_features[:B-1], conditions[1:B]):
    only those rows enter its BN statistics)."""
    code = self.code(images, training=training)
    logits = {"uncond": self.unconditional(code),
              "cond": self.conditional(code, sentence, training=training)}
    if wrong_sentence is not None:
      rows = tf.shape(wrong_sentence)[0]
      logits["cond_wrong"] = self.conditional(code[:rows], wrong_sentence, training=training)
    return logits

  def code(self, images, training=False):
    x = images
    for conv_layer, bn in zip(self.convs, self.bns):
      x = conv_layer(x)
      if bn is not None:
        x = bn(x, training=training)
      x = tf.nn.leaky_relu(x, 0.2)
    for conv_layer, bn in self.blocks:
      x = tf.nn.leaky_relu(bn(conv_layer(x), training=training), 0.2)
    return x  # [B, 4, 4, code_width]

  def unconditional(self, code):
    return tf.reshape(self.uncond(code), [-1])  # [B]

  def conditional(self, code, sentence, training=False):
    tiled = tf.tile(sentence[:, tf.newaxis, tf.newaxis, :], [1, 4, 4, 1])  # [B, 4, 4, D]
    x = tf.concat([code, tf.cast(tiled, code.dtype)], axis=-1)
    x = tf.nn.leaky_relu(self.joint_bn(self.joint_conv(x), training=training), 0.2)
    return tf.reshape(self.cond(x), [-1])  # [B]


class Discriminator(tf.keras.Model):
  """One StageDiscriminator per stage; call(images per stage, sentence, wrong sentence)."""

  def __init__(self, image_size, branch_num=3, ndf=64, cross_replica=True,
               name="discriminator"):
    super().__init__(name=name)
    problem = check_sizes(image_size, branch_num)
    if problem:
      raise ValueError(problem)
    self.sizes = stage_sizes(image_size, branch_num)
    self.stages = [StageDiscriminator(s, ndf, cross_replica, name=f"d_{s}") for s in self.sizes]

  def call(self, stage_images, sentence, wrong_sentence=None, training=False):
    """stage_images: list of [B, s_k, s_k, 3]. Returns {'stage_<k>': {'uncond', 'cond'[,
    'cond_wrong']}} logits [B] ('cond_wrong' [n]: image i with `wrong_sentence` [n, D] i)."""
    return {f"stage_{k}": stage(images, sentence, wrong_sentence, training=training)
            for k, (stage, images) in enumerate(zip(self.stages, stage_images))}
