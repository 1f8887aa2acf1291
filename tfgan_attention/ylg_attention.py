"""YLG local sparse attention (Daras et al. 2020): SAGAN's attention block with 8 masked heads.

Everything but the attention map is SAGAN's (SelfAttention: SN 1x1 projections theta/phi/g, 2x2
max-pooled keys and values, SN output conv attn_out, zero-initialised gate sigma; the 1x1 convs
divide by their sigma in any network, as the official ylg/ops.py sn_conv1x1); the C/8 query/key
and C/2 value channels are split over 8 heads (G at C=256: 4 and 16 per head; D at C=128: 2 and 8).
Each head attends through one step of a two-step pattern placed on the key grid with ESA
(`patterns.ylg_masks`); official head order: heads 0-3 RTL (floor, repetitive, ...), 4-7 LTR.
For speed (issue #27) theta, phi and g run as one 1x1 convolution of their normalised kernels
side by side and sigma multiplies the output kernel rather than its output: the same layer to
float rounding, the same variables.

implementation="sparse" (default) computes only allowed query-key pairs (`ylg_sparse`):
O(N sqrt N) memory and FLOPs, no [N, N] tensor. implementation="dense" is the reference: full
logits [B, 8, Nq, Nk] with the masks applied. Masking:
  "exclude" (default, the paper's -inf): masked pairs get exactly zero weight. Dense and sparse
    agree to float rounding.
  "official_additive" (dense only): logits + (1 - M) * -1000 as the official code. Identical in
    float32 while a row's logits span less than ~900 (exp underflows to 0); beyond that masked keys
    leak weight.
"""
import numpy as np
import tensorflow as tf

from tfgan_attention import patterns
from tfgan_attention.self_attention import SelfAttention
from tfgan_attention.ylg_sparse import build_sparse_plan, sparse_attention

NUM_HEADS = 8  # two-step patterns spread over heads: YLG paper sec. 4, "8 heads"
OFFICIAL_MASK_ADDEND = -1000.0  # official code: logits + (1 - mask) * -1000


class YLGAttention(SelfAttention):
  """SAGAN attention with YLG's 8 sparse heads; a drop-in replacement for SelfAttention.

  Args:
    layout: "ylg" (RTL on heads 0-3, LTR on 4-7) or a pattern name of `patterns.PATTERNS` repeated
      over the 8 heads ("strided" is the YLG - Strided ablation).
    esa: ESA enumeration of the key grid (True) or raster order (False: YLG - No ESA).
    nonsquare: query grid vs. key grid mapping: "tile" (official, default) or "shift" (paper).
    stride: pattern stride s; default floor(sqrt(key count)).
    implementation: "sparse" or "dense" (the masked reference).
    masking: "exclude" or "official_additive" (dense only), see the module docstring.
    interleave_heads: False (default) concatenates head outputs head-major (channel h * dv + i),
      as SelfAttention. True reproduces the official order (channel i * 8 + h). It is a fixed
      permutation of the output conv's input channels, so both span the same functions; True
      only matters to load official checkpoints.
    update_u_in_eval: as SelfAttention.
  Call:
    x: [B, H, W, C], even H and W, C divisible by 64.
    training: Python bool (spectral-norm updates).
    return_attention: also return the per-head attention. Dense: [B, 8, H*W, (H/2)*(W/2)].
      Sparse: a `ylg_sparse.CompactAttention` (weights [B, 8, H*W, K], key_index [8, H*W, K]);
      `ylg_sparse.densify_attention(a, (H/2)*(W/2))` gives the dense map.
  """

  def __init__(self, layout="ylg", esa=True, nonsquare="tile", stride=None,
               implementation="sparse", masking="exclude", interleave_heads=False,
               update_u_in_eval=False, **kwargs):
    super().__init__(num_heads=NUM_HEADS, update_u_in_eval=update_u_in_eval, **kwargs)
    if implementation not in ("sparse", "dense"):
      raise ValueError(f"implementation must be 'sparse' or 'dense', got {implementation!r}")
    if masking not in ("exclude", "official_additive"):
      raise ValueError(f"masking must be 'exclude' or 'official_additive', got {masking!r}")
    if masking == "official_additive" and implementation == "sparse":
      raise ValueError("masking='official_additive' adds -1000 to every masked pair, which only "
                       "the dense implementation computes; use implementation='dense'")
    patterns.head_steps(layout)  # validates the layout name
    self.layout, self.esa, self.nonsquare, self.stride = layout, esa, nonsquare, stride
    self.implementation, self.masking = implementation, masking
    self.interleave_heads = interleave_heads

  def build(self, input_shape):
    super().build(input_shape)
    # `call` applies the 1x1 convolutions through their normalised kernels (theta, phi and g as
    # one convolution), not their __call__: build them here, each in its own name scope, so their
    # variables get the names and creation order the __call__ route gives.
    shape = tf.TensorShape(input_shape)
    for conv, channels in ((self.theta, shape[-1]), (self.phi, shape[-1]), (self.g, shape[-1]),
                           (self.attn_out, shape[-1] // 2)):
      with tf.name_scope(conv.name):
        conv.build(shape[:-1].concatenate([channels]))
    h, w = int(input_shape[1]), int(input_shape[2])
    grids = dict(key_grid=(h // 2, w // 2), query_grid=(h, w), layout=self.layout, esa=self.esa,
                 nonsquare=self.nonsquare, stride=self.stride)
    if self.implementation == "sparse":
      self._plan = build_sparse_plan(**grids)
    else:
      masks = patterns.ylg_masks(**grids)  # [8, Nq, Nk] 0/1
      if not masks.any(axis=2).all():
        raise ValueError(f"layout {self.layout!r} leaves some queries without any key")
      # bool for "exclude" (a quarter of the memory), float 0/1 for the additive mask.
      self._masks = masks > 0 if self.masking == "exclude" else masks

  def _dense_attention(self, theta, phi, g):
    logits = tf.matmul(theta, phi, transpose_b=True)  # [B, 8, Nq, Nk]
    if self.masking == "exclude":
      logits = tf.where(self._masks, logits, tf.constant(-np.inf, logits.dtype))
    else:
      logits += (1.0 - self._masks) * OFFICIAL_MASK_ADDEND
    attn = tf.nn.softmax(logits, axis=-1)  # [B, 8, Nq, Nk]
    return tf.matmul(attn, g), attn  # [B, 8, Nq, dv]

  def _projections(self, x, training):
    """theta [B, H, W, C/8], phi [B, H/2, W/2, C/8], g [B, H/2, W/2, C/2] (keys and values
    2x2 max-pooled): one 1x1 convolution with the three normalised kernels side by side, one
    pool (the same sums per channel as three convolutions, read x once)."""
    c = x.shape[-1]
    w = tf.concat([conv.normalized_kernel(training) for conv in (self.theta, self.phi, self.g)],
                  axis=-1)  # [1, 1, C, C/8 + C/8 + C/2]
    theta, pg = tf.split(tf.nn.conv2d(x, tf.cast(w, x.dtype), 1, "SAME"),
                         [c // 8, c // 8 + c // 2], axis=-1)
    phi, g = tf.split(tf.nn.max_pool2d(pg, ksize=2, strides=2, padding="VALID"),
                      [c // 8, c // 2], axis=-1)
    return theta, phi, g

  def call(self, x, training=False, return_attention=False):
    b, h, w, c = tf.shape(x)[0], x.shape[1], x.shape[2], x.shape[3]
    theta, phi, g = self._projections(x, training)
    if self.implementation == "sparse":  # heads last: [B, N, 8, d], no transposes
      tokens = lambda t: tf.reshape(t, [b, -1, NUM_HEADS, t.shape[-1] // NUM_HEADS])
      out = sparse_attention(tokens(theta), tokens(phi), tokens(g), self._plan,
                             return_attention=return_attention, heads_last=True)
      o, attn = out if return_attention else (out, None)  # o [B, Nq, 8, C/16]
      o = tf.transpose(o, [0, 1, 3, 2]) if self.interleave_heads else o
    else:
      o, attn = self._dense_attention(*map(self._split_heads, (theta, phi, g)))  # [B,8,Nq,C/16]
      o = tf.transpose(o, [0, 2, 3, 1] if self.interleave_heads else [0, 2, 1, 3])
    o = tf.reshape(o, [-1, h, w, c // 2])  # channel h*dv+i, or i*8+h with interleave_heads
    # sigma folded into the output kernel: (sigma W) o instead of sigma (W o), a product over the
    # kernel instead of the feature map (equal to float rounding).
    kernel = self.sigma * self.attn_out.normalized_kernel(training)
    y = x + tf.nn.conv2d(o, tf.cast(kernel, o.dtype), 1, "SAME")
    return (y, attn) if return_attention else y
