"""SAGAN's dense self-attention block (Zhang et al. 2019, eqs. 1-3), as TF-GAN implements it.

  theta = SNconv1x1(x) -> C/8            queries, one per pixel      [B, N, C/8]
  phi   = maxpool2x2(SNconv1x1(x) -> C/8) keys on the 2x2-pooled grid [B, N/4, C/8]
  g     = maxpool2x2(SNconv1x1(x) -> C/2) values, pooled likewise     [B, N/4, C/2]
  A     = softmax_k(theta phi^T)          no 1/sqrt(d) scaling        [B, heads, N, N/4]
  y     = x + sigma * SNconv1x1(A g -> C) sigma a scalar initialised to 0

All 1x1 convolutions are bias-free and divide by sigma (bound "paper") whatever bound the
surrounding network uses: TF-GAN's example and the YLG code build them with
equality_constrained=True while their other layers use W / max(1, sigma).

With `num_heads` > 1 the C/8 and C/2 channels are split into equal head-major groups
(channel = head * d + i), each head attending on its own (the 8-head ablation of the YLG paper);
one head is the paper's layer.
"""
import tensorflow as tf

from tfgan_attention.spectral_norm import SNConv2D


class SelfAttention(tf.keras.layers.Layer):
  """Dense non-local attention with a zero-initialised residual gate.

  Args:
    num_heads: attention heads; C/8 and C/2 must divide by it.
    update_u_in_eval: passed to the spectrally normalised convs (see SNConv2D).
  Call:
    x: [B, H, W, C] with even H, W and C divisible by 8 * num_heads.
    training: Python bool (spectral-norm updates).
    return_attention: also return A, [B, heads, H*W, (H/2)*(W/2)], rows sum to 1.
  """

  def __init__(self, num_heads=1, update_u_in_eval=False, **kwargs):
    super().__init__(**kwargs)
    self.num_heads = int(num_heads)
    self.update_u_in_eval = update_u_in_eval

  def build(self, input_shape):
    _, h, w, c = (int(d) if d is not None else None for d in input_shape)
    if c % (8 * self.num_heads) or c < 8:
      raise ValueError(f"SelfAttention needs channels divisible by 8 * num_heads "
                       f"({8 * self.num_heads}), got {c}")
    if h % 2 or w % 2:
      raise ValueError(f"SelfAttention pools keys 2x2 and needs even H, W; got {h}x{w}")
    # W / sigma here even in a "tfgan"-bound network (TF-GAN's sn_conv1x1: equality_constrained).
    sn = dict(use_bias=False, update_u_in_eval=self.update_u_in_eval, bound="paper")
    self.theta = SNConv2D(c // 8, 1, name="sn_conv_theta", **sn)
    self.phi = SNConv2D(c // 8, 1, name="sn_conv_phi", **sn)
    self.g = SNConv2D(c // 2, 1, name="sn_conv_g", **sn)
    self.attn_out = SNConv2D(c, 1, name="sn_conv_attn", **sn)
    self.sigma = self.add_weight(name="sigma", shape=(), initializer="zeros")
    super().build(input_shape)

  def _split_heads(self, t):
    """[B, h, w, heads * d] -> [B, heads, h * w, d]."""
    b = tf.shape(t)[0]
    hh, ww, c = t.shape[1], t.shape[2], t.shape[3]
    t = tf.reshape(t, [b, hh * ww, self.num_heads, c // self.num_heads])
    return tf.transpose(t, [0, 2, 1, 3])

  def call(self, x, training=False, return_attention=False):
    _, h, w, c = x.shape
    pool = lambda t: tf.nn.max_pool2d(t, ksize=2, strides=2, padding="VALID")
    theta = self._split_heads(self.theta(x, training=training))  # [B, heads, N, C/8h]
    phi = self._split_heads(pool(self.phi(x, training=training)))  # [B, heads, N/4, C/8h]
    g = self._split_heads(pool(self.g(x, training=training)))  # [B, heads, N/4, C/2h]
    attn = tf.nn.softmax(tf.matmul(theta, phi, transpose_b=True), axis=-1)  # [B, heads, N, N/4]
    o = tf.matmul(attn, g)  # [B, heads, N, C/2h]
    o = tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [-1, h, w, c // 2])  # head-major channels
    y = x + self.sigma * self.attn_out(o, training=training)
    return (y, attn) if return_attention else y
