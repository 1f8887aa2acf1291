"""LadaGAN generator and discriminator (paper Fig. 4; official TF code, milmor/LadaGAN/tensorflow).

Generator: z [B, 128] -> Dense(64 * C0, no bias) -> 8x8 tokens -> + E -> G-Ladaformer (8x8)
           -> LEE (pixel shuffle, conv3x3) -> + E -> G-Ladaformer (16x16) -> LEE -> + E
           -> G-Ladaformer (32x32) -> 32x32 map -> either patches (depth_to_space(S / 32)) or a
           conv decoder (per width: nearest x2, conv3x3, BN, LReLU 0.2) -> conv3x3 to 3.
           No tanh: the output is unbounded, as in the code (clip where images must be in range).
Discriminator (Lada): conv3x3 (no bias) + LReLU -> FastGAN down-blocks to 16x16 -> + E ->
           D-Ladaformer (256 tokens) -> space_to_depth(2) -> conv3x3 to 512 (bias) -> conv1x1 to
           1024 (no bias) -> LReLU -> conv4x4 valid (no bias) -> 5x5 = 25 patch logits [B, 25].
Discriminator (conv, Table II's ablation): the same, with a FastGAN down-block 16x16 -> 8x8 to
           512 channels in place of E, the Ladaformer, space_to_depth and the conv3x3; without
           batch norm by default (section IV-C: "identical to FastGAN discriminator but without
           batch normalization").

All kernels orthogonal, biases zero. Batch norm is the project's `BatchNorm` with Keras' defaults
(decay 0.99, eps 1e-3) so its statistics update inside TF1 estimator graphs. The batch size is
never static. Layer names are explicit so checkpoint keys are the same in every graph.
"""
import dataclasses
import math
from typing import Tuple

import tensorflow as tf

from tfgan_attention import (BatchNorm, DiscriminatorLadaformer, GeneratorLadaformer,
                             LocalEmbeddingExpansion, PositionalEmbedding)

D_TYPES = ("lada", "conv")
INIT = "orthogonal"


@dataclasses.dataclass(frozen=True)
class LadaGANArch:
  """The architecture of one LadaGAN configuration (paper IV-B, Tables I-II; released configs)."""
  image_size: int = 32
  noise_dim: int = 128                         # D_z
  g_dim: Tuple[int, ...] = (1024, 256, 64)     # widths of the 8x8, 16x16, 32x32 Ladaformers
  g_heads: int = 4
  g_mlp_dim: int = 512
  g_decoder: Tuple[int, ...] = ()              # conv decoder widths; () = patch/pixel output
  g_mlp_residual: bool = False                 # Table I "Residual-MLP" (LadaGAN: off)
  g_lee_conv: bool = True                      # Table I "Convolutions" (the conv in LEE)
  g_modulation: bool = True                    # Table I "Modulation": SLN, or plain LN
  # The attention residual adds the tokens WITH their positional embedding (official code:
  # x = h + E; x + MAA(SLN(x))). False: the paper's eq. 10, h + MAA(SLN(h + E)).
  g_residual_with_pos_emb: bool = True
  d_type: str = "lada"                         # Table II "D-type": lada or conv
  d_enc_dim: Tuple[int, ...] = (128, 256)      # stem width, then each down-block's width
  d_out_dim: Tuple[int, ...] = (512, 1024)     # the conv3x3 and conv1x1 of the head
  d_heads: int = 4
  d_mlp_dim: int = 512
  d_conv_batch_norm: bool = False              # BN in the conv (ablation) discriminator
  layer_norm_epsilon: float = 1e-6
  bn_decay: float = 0.99                       # Keras BatchNormalization defaults (the code's)
  bn_epsilon: float = 1e-3
  cross_replica_bn: bool = True

  def __post_init__(self):
    for name in ("g_dim", "g_decoder", "d_enc_dim", "d_out_dim"):  # lists -> hashable tuples
      object.__setattr__(self, name, tuple(int(w) for w in getattr(self, name)))
    s = self.image_size
    if s < 32 or s & (s - 1):
      raise ValueError(f"LadaGAN image_size must be 32 * 2^k, got {s}")
    if len(self.g_dim) != 3:
      raise ValueError(f"g_dim needs the three Ladaformer widths, got {self.g_dim}")
    up = int(math.log2(s // 32))
    if self.g_decoder and len(self.g_decoder) != up:
      raise ValueError(f"a {s} px conv decoder needs {up} widths (one per x2), got "
                       f"{self.g_decoder}")
    if not self.g_lee_conv:
      for c_in, c_out in zip(self.g_dim, self.g_dim[1:]):
        if c_in != 4 * c_out:
          raise ValueError(f"without the LEE conv each width must be a quarter of the one "
                           f"before (pixel shuffle alone); got g_dim {self.g_dim}")
    if len(self.d_enc_dim) != int(math.log2(s // 16)) + 1:
      raise ValueError(f"a {s} px discriminator needs {int(math.log2(s // 16)) + 1} d_enc_dim "
                       f"widths (stem + one per halving to 16x16), got {self.d_enc_dim}")
    if self.d_type not in D_TYPES:
      raise ValueError(f"d_type must be one of {D_TYPES}, got {self.d_type!r}")
    p = s // 32
    if not self.g_decoder and self.g_dim[-1] % (p * p):
      raise ValueError(f"{p}x{p} patch output needs g_dim[-1] divisible by {p * p}, got "
                       f"{self.g_dim[-1]}")

  @property
  def patch_size(self):
    """Side of the pixel patch each 32x32 output token becomes (1 at 32 px); 0 with a decoder."""
    return 0 if self.g_decoder else self.image_size // 32


# Presets: the released config.json files (CIFAR-10, CelebA-64, FFHQ-128) and, for LSUN bedroom
# (no released config), Table II's best: the FFHQ-128 architecture with the conv decoder.
PRESETS = {
    "cifar10": LadaGANArch(image_size=32, d_enc_dim=(128, 256)),
    "celeba64": LadaGANArch(image_size=64, d_enc_dim=(64, 128, 256)),
    "ffhq128": LadaGANArch(image_size=128, g_dim=(1024, 512, 256), g_decoder=(128, 64),
                           d_enc_dim=(32, 64, 128, 256)),
    "lsun128": LadaGANArch(image_size=128, g_dim=(1024, 512, 256), g_decoder=(128, 64),
                           d_enc_dim=(32, 64, 128, 256)),
}


def preset(name, **overrides):
  """A preset architecture, optionally with fields replaced (e.g. d_type='conv')."""
  if name not in PRESETS:
    raise ValueError(f"unknown LadaGAN preset {name!r}; choose one of {sorted(PRESETS)}")
  return dataclasses.replace(PRESETS[name], **overrides)


def _conv(filters, kernel, name, use_bias=True, strides=1, padding="same"):
  return tf.keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding,
                                use_bias=use_bias, kernel_initializer=INIT, name=name)


def _lrelu(x):
  return tf.nn.leaky_relu(x, 0.2)


def _tokens(x):
  """[B, H, W, C] -> [B, H * W, C] (static H, W, C; dynamic B)."""
  _, h, w, c = x.shape
  return tf.reshape(x, [-1, h * w, c])


def _grid(x):
  """[B, N, C] -> [B, sqrt(N), sqrt(N), C]."""
  _, n, c = x.shape
  side = math.isqrt(n)
  return tf.reshape(x, [-1, side, side, c])


class Generator(tf.keras.Model):
  """G(z) -> images [B, S, S, 3] (unbounded), and on request the three stages' maps
  [B, heads, 64], [B, heads, 256], [B, heads, 1024]."""

  def __init__(self, arch: LadaGANArch, name="generator"):
    super().__init__(name=name)
    self.arch = arch
    c0, c1, c2 = arch.g_dim
    self.init_dense = tf.keras.layers.Dense(64 * c0, use_bias=False, kernel_initializer=INIT,
                                            name="init_dense")
    block = lambda name: GeneratorLadaformer(
        arch.g_heads, arch.g_mlp_dim, mlp_residual=arch.g_mlp_residual,
        modulated=arch.g_modulation, epsilon=arch.layer_norm_epsilon, kernel_initializer=INIT,
        name=name)
    self.pos_emb = [PositionalEmbedding(INIT, name=f"pos_emb_{s}") for s in (8, 16, 32)]
    self.blocks = [block(f"block_{s}") for s in (8, 16, 32)]
    self.lee = [LocalEmbeddingExpansion(c, use_conv=arch.g_lee_conv, kernel_initializer=INIT,
                                        name=f"lee_{s}") for c, s in ((c1, 8), (c2, 16))]
    self.decoder = []
    for i, width in enumerate(arch.g_decoder):
      self.decoder.append((
          _conv(width, 3, f"dec_conv_{i}"),
          BatchNorm(decay=arch.bn_decay, epsilon=arch.bn_epsilon,
                    cross_replica=arch.cross_replica_bn, name=f"dec_bn_{i}")))
    self.to_rgb = _conv(3, 3, "to_rgb")

  def call(self, z, training=False, return_attention=False):
    x = tf.reshape(self.init_dense(z), [-1, 64, self.arch.g_dim[0]])  # [B, 64, C0]
    maps = []
    for i, (pos_emb, block) in enumerate(zip(self.pos_emb, self.blocks)):
      shortcut = None if self.arch.g_residual_with_pos_emb else x
      x, attn = block(pos_emb(x), z, return_attention=True, shortcut=shortcut)  # [B, N, C]
      maps.append(attn)
      if i < 2:
        x = _tokens(self.lee[i](_grid(x)))  # [B, 4N, C_next]
    x = _grid(x)  # [B, 32, 32, C2]
    if self.decoder:
      for conv, bn in self.decoder:
        x = tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)  # nearest x2
        x = _lrelu(bn(conv(x), training=training))
    elif self.arch.patch_size > 1:
      x = tf.nn.depth_to_space(x, self.arch.patch_size)  # [B, S, S, C2 / p^2]
    images = self.to_rgb(x)  # [B, S, S, 3]
    return (images, maps) if return_attention else images


class DownBlock(tf.keras.layers.Layer):
  """FastGAN's down-block: (main + skip) / 2, both halving H and W.

  main: conv3x3 s2 (no bias), BN, LReLU, conv3x3 (no bias), BN, LReLU.
  skip: avgpool2, conv1x1 (no bias), BN, LReLU.
  """

  def __init__(self, filters, arch: LadaGANArch, batch_norm=True, **kwargs):
    super().__init__(**kwargs)
    self.conv1 = _conv(filters, 3, "main_conv1", use_bias=False, strides=2)
    self.conv2 = _conv(filters, 3, "main_conv2", use_bias=False)
    self.skip_conv = _conv(filters, 1, "skip_conv", use_bias=False)
    bn = lambda name: (BatchNorm(decay=arch.bn_decay, epsilon=arch.bn_epsilon,
                                 cross_replica=arch.cross_replica_bn, name=name)
                       if batch_norm else None)
    self.bn1, self.bn2, self.skip_bn = bn("main_bn1"), bn("main_bn2"), bn("skip_bn")

  @staticmethod
  def _norm_act(bn, x, training):
    return _lrelu(bn(x, training=training) if bn is not None else x)

  def call(self, x, training=False):
    h = self._norm_act(self.bn1, self.conv1(x), training)
    h = self._norm_act(self.bn2, self.conv2(h), training)
    s = tf.nn.avg_pool2d(x, ksize=2, strides=2, padding="VALID")
    s = self._norm_act(self.skip_bn, self.skip_conv(s), training)
    return (h + s) / 2


class Discriminator(tf.keras.Model):
  """D(images [B, S, S, 3]) -> 25 patch logits [B, 25] (row-major over the 5x5 grid); with
  `return_attention` (Lada D only) also the Ladaformer's map [B, heads, 256]."""

  def __init__(self, arch: LadaGANArch, name="discriminator"):
    super().__init__(name=name)
    self.arch = arch
    lada = arch.d_type == "lada"
    bn = lada or arch.d_conv_batch_norm
    self.stem = _conv(arch.d_enc_dim[0], 3, "stem_conv", use_bias=False)
    self.down = [DownBlock(w, arch, batch_norm=bn, name=f"down_{i}")
                 for i, w in enumerate(arch.d_enc_dim[1:])]
    if lada:
      self.pos_emb = PositionalEmbedding(INIT, name="pos_emb_16")
      self.block = DiscriminatorLadaformer(arch.d_heads, arch.d_mlp_dim,
                                           epsilon=arch.layer_norm_epsilon,
                                           kernel_initializer=INIT, name="block_16")
      self.head_conv = _conv(arch.d_out_dim[0], 3, "head_conv")
    else:
      self.head_down = DownBlock(arch.d_out_dim[0], arch, batch_norm=bn, name="head_down")
    self.head_1x1 = _conv(arch.d_out_dim[1], 1, "head_conv1x1", use_bias=False)
    self.logits_conv = _conv(1, 4, "logits_conv", use_bias=False, padding="valid")

  def call(self, images, training=False, return_attention=False):
    x = _lrelu(self.stem(images))  # [B, S, S, d_enc[0]]
    for block in self.down:
      x = block(x, training=training)  # halves H, W
    attn = None
    if self.arch.d_type == "lada":
      _, h, w, c = x.shape  # 16, 16, d_enc[-1]
      t, attn = self.block(self.pos_emb(_tokens(x)), return_attention=True)  # [B, 256, C]
      x = tf.nn.space_to_depth(tf.reshape(t, [-1, h, w, c]), 2)  # [B, 8, 8, 4C]
      x = self.head_conv(x)  # [B, 8, 8, 512]
    else:
      x = self.head_down(x, training=training)  # [B, 8, 8, 512]
    x = _lrelu(self.head_1x1(x))  # [B, 8, 8, 1024]
    logits = tf.reshape(self.logits_conv(x), [-1, 25])  # [B, 5, 5, 1] -> [B, 25]
    if return_attention:
      if attn is None:
        raise ValueError("the conv discriminator has no attention map")
      return logits, attn
    return logits
