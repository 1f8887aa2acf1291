"""AttnGAN's word attention F_attn (Xu et al. 2018, eq. 2): a word-context vector for every pixel.

  e' = U e          words projected to the image width, no bias                 [B, T, C]
  s' = h e'^T       dot product with every pixel, no 1/sqrt(C)                   [B, N, T]
  beta              softmax over the real words of each caption, per pixel      [B, N, T]
  c = beta e'       word-context features                                       [B, H, W, C]

Layout: channels last throughout. Words are [B, T, D] (the official code holds [B, D, T]); the
image is [B, H, W, C] with N = H * W pixels; U is a Dense over word channels (the official 1x1
conv `conv_context`). Padding words are masked from the per-example `lengths` for every example of
the batch: the official `GlobalAttentionGeneral` tiles its [B, T] mask batch-major over rows
ordered (batch, pixel), so for B > 1 each example gets other examples' masks (upstream issue 93).
That bug is not reproduced. Padding words get exactly zero weight; a caption of length 0 gets
zero context.
"""
import tensorflow as tf


def length_mask(lengths, max_len):
  """Bool [B, T]: True for the first lengths[b] positions of row b."""
  return tf.sequence_mask(tf.cast(lengths, tf.int32), max_len)


def masked_softmax(logits, mask, axis=-1):
  """Softmax of `logits` over `axis` restricted to `mask`; masked entries are exactly 0.

  Masked logits are replaced by the dtype's lowest value before the softmax (their exp underflows
  to 0, and no -inf enters the gradient), then multiplied by the mask, so a fully masked row is all
  zeros instead of NaN.
  """
  mask = tf.broadcast_to(mask, tf.shape(logits))
  low = tf.fill(tf.shape(logits), tf.constant(logits.dtype.min, logits.dtype))
  weights = tf.nn.softmax(tf.where(mask, logits, low), axis=axis)
  return weights * tf.cast(mask, weights.dtype)


class WordAttention(tf.keras.layers.Layer):
  """F_attn of the AttnGAN generator stages G1, G2 (paper eq. 2, official GlobalAttentionGeneral).

  Args:
    kernel_initializer: of U. The official generator initialises every conv orthogonally.
  Call:
    image: h, [B, H, W, C] (the query features of the previous stage).
    words: e, [B, T, D] word features (the DAMSM text encoder's, D = 256).
    lengths: [B] int, the number of real words of each caption (the rest of T is padding).
  Returns:
    context: [B, H, W, C], the word-context features c (concatenated with h by the caller).
    attention: beta, [B, T, H*W]: for each pixel, weights over the real words summing to 1;
      rows of padding words are exactly 0. Reshape to [B, T, H, W] for figures.
  """

  def __init__(self, kernel_initializer="orthogonal", **kwargs):
    super().__init__(**kwargs)
    self.kernel_initializer = kernel_initializer

  def build(self, input_shape):
    channels = input_shape[-1]
    if channels is None:
      raise ValueError("WordAttention needs the image's channel count known when it is built")
    self.project = tf.keras.layers.Dense(
        int(channels), use_bias=False, kernel_initializer=self.kernel_initializer,
        name="word_projection")
    super().build(input_shape)

  def call(self, image, words, lengths):
    words = tf.convert_to_tensor(words, image.dtype)
    if words.shape.rank != 3 or image.shape.rank != 4:
      raise ValueError(f"WordAttention needs image [B, H, W, C] and words [B, T, D], got "
                       f"{image.shape} and {words.shape}")
    b, h, w, c = _dims(image)
    t = _dims(words)[1]
    projected = self.project(words)  # [B, T, C]
    query = tf.reshape(image, [b, h * w, c])  # [B, N, C]
    logits = tf.matmul(query, projected, transpose_b=True)  # [B, N, T], no scaling
    mask = length_mask(lengths, t)[:, tf.newaxis, :]  # [B, 1, T], per example
    beta = masked_softmax(logits, mask, axis=-1)  # [B, N, T]
    context = tf.matmul(beta, projected)  # [B, N, C]
    context = tf.reshape(context, [b, h, w, c])  # [B, H, W, C]
    return context, tf.transpose(beta, [0, 2, 1])  # [B, T, N]


def _dims(x):
  """Static dimensions where known, dynamic ones elsewhere (keeps static shapes through reshape)."""
  dynamic = tf.shape(x)
  return [d if d is not None else dynamic[i] for i, d in enumerate(x.shape.as_list())]
