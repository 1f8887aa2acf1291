"""LadaGAN's multi-head linear additive attention (Morales-Juarez & Fuentes-Pineda, eqs. 1-4).

As the official TensorFlow code computes it (tokens x: [B, N, C], h heads of d = C / h channels,
channel = head * d + i):

  q, k, v = Dense_C(x)                      with bias                          [B, N, C]
  s       = Dense_h(q) / sqrt(d)            reads ALL C channels of q, bias    [B, N, h]
  alpha   = softmax over the N tokens of s, per head                           [B, h, N]
  g       = sum_n alpha_n q_n               one global query per head          [B, h, d]
  r_n     = (g * k_n) * v_n                 element-wise                       [B, N, h, d]
  out     = Dense_C(r)                                                         [B, N, C]

(The paper's eq. 1 scores each head with its own w in R^d; the code's single Dense over all C
channels is what the reported numbers come from, so it is what this layer does.) Time and memory
are O(N * C): no N x N matrix is ever formed. `alpha` is the attention map LadaGAN plots.
"""
import math

import tensorflow as tf


class LadaAttention(tf.keras.layers.Layer):
  """Multi-head linear additive attention over a token sequence.

  Args:
    num_heads: h; the width C must divide by it.
    kernel_initializer: for all five Dense kernels (the official code: orthogonal).
  Call:
    x: [B, N, C] tokens (B and N may be dynamic; C must be static).
    return_attention: also return alpha, [B, heads, N], which sums to 1 over N.
  """

  def __init__(self, num_heads=4, kernel_initializer="orthogonal", **kwargs):
    super().__init__(**kwargs)
    self.num_heads = int(num_heads)
    self.kernel_initializer = kernel_initializer

  def build(self, input_shape):
    c = input_shape[-1]
    if c is None or c % self.num_heads:
      raise ValueError(f"LadaAttention needs a static width divisible by num_heads "
                       f"({self.num_heads}), got {c}")
    self.channels = int(c)
    self.head_dim = self.channels // self.num_heads
    dense = lambda units, name: tf.keras.layers.Dense(
        units, kernel_initializer=self.kernel_initializer, name=name)
    self.query = dense(c, "query")
    self.key = dense(c, "key")
    self.value = dense(c, "value")
    self.score = dense(self.num_heads, "score")
    self.out = dense(c, "out")
    super().build(input_shape)

  def call(self, x, return_attention=False):
    b = tf.shape(x)[0]
    n = x.shape[1] if x.shape[1] is not None else tf.shape(x)[1]
    heads, d = self.num_heads, self.head_dim
    q, k, v = self.query(x), self.key(x), self.value(x)  # [B, N, C] each
    scores = self.score(q) / math.sqrt(d)  # [B, N, heads]
    alpha = tf.nn.softmax(tf.transpose(scores, [0, 2, 1]), axis=-1)  # [B, heads, N]
    split = lambda t: tf.reshape(t, [b, n, heads, d])  # head-major channels
    g = tf.einsum("bhn,bnhd->bhd", alpha, split(q))  # [B, heads, d]
    r = g[:, None] * split(k) * split(v)  # [B, N, heads, d]
    y = self.out(tf.reshape(r, [b, n, self.channels]))  # [B, N, C]
    return (y, alpha) if return_attention else y
