"""TensorBoard summaries added inside the estimator's train graph: grids, attention, D outputs."""
import numpy as np
import tensorflow as tf

from tfgan_attention import CompactAttention, densify_attention


def fixed_noise_and_labels(cfg, num=None):
  """The same noise and labels at every step and on every rerun, so grids are comparable."""
  num = num or min(64, max(16, 4 * max(cfg.num_classes, 1)))
  rng = np.random.RandomState(cfg.seed + 12345)
  noise = rng.standard_normal((num, cfg.z_dim)).astype(np.float32)
  labels = (np.arange(num) % max(cfg.num_classes, 1)).astype(np.int32)
  return noise, labels


def image_grid(images, cols):
  """[N, H, W, C] -> [1, rows*H, cols*W, C], row-major; N must divide by cols."""
  n, h, w, c = images.shape
  rows = n // cols
  x = tf.reshape(images[: rows * cols], [rows, cols, h, w, c])
  x = tf.transpose(x, [0, 2, 1, 3, 4])
  return tf.reshape(x, [1, rows * h, cols * w, c])


def attention_query_maps(attn, image_size, feature_size, num_queries=4):
  """Attention rows of a few query pixels of sample 0, as heat maps at image resolution.

  attn: [B, heads, Nq, Nk] with Nq = feature_size**2 and keys on the 2x2-pooled grid.
  Returns [num_queries, image_size, image_size, 1] in [0, 1] (head 0).
  """
  key_side = feature_size // 2
  q = feature_size
  picks = [(q // 4) * q + q // 4, (q // 4) * q + 3 * q // 4, (3 * q // 4) * q + q // 4,
           (3 * q // 4) * q + 3 * q // 4][:num_queries]
  rows = tf.gather(attn[0, 0], picks)  # [num_queries, Nk]
  rows = rows / (tf.reduce_max(rows, axis=1, keepdims=True) + 1e-12)
  maps = tf.reshape(rows, [-1, key_side, key_side, 1])
  return tf.image.resize(maps, [image_size, image_size], method="nearest")


def add_generator_summaries(generator, cfg):
  """Fixed-noise image grid, attention gate and attention maps (run only at summary steps)."""
  noise, labels = fixed_noise_and_labels(cfg)
  images, attn = generator(tf.constant(noise), tf.constant(labels), training=False,
                           return_attention=True)
  cols = max(cfg.num_classes, 1) if cfg.num_classes and len(noise) % cfg.num_classes == 0 else 8
  grid = image_grid((images + 1.0) / 2.0, cols)
  sigma = getattr(generator.attention, "sigma", None)
  if isinstance(attn, CompactAttention):  # YLG sparse: sample 0 only, [1, 8, Nq, K] -> dense
    attn = densify_attention(CompactAttention(attn.weights[:1], attn.key_index),
                             (cfg.attention_resolution // 2) ** 2)
  maps = (attention_query_maps(attn, cfg.image_size, cfg.attention_resolution)
          if attn is not None else None)
  with tf.compat.v1.name_scope(""):  # tags without the 'Generator/' scope prefix
    tf.compat.v1.summary.image("fixed_noise_grid", grid, max_outputs=1)
    if sigma is not None:
      tf.compat.v1.summary.scalar("attention/generator_gate", sigma)
    if maps is not None:
      tf.compat.v1.summary.image("attention/generator_query_maps", maps, max_outputs=4)


def add_discriminator_summaries(discriminator):
  if getattr(discriminator.attention, "sigma", None) is not None:
    with tf.compat.v1.name_scope(""):
      tf.compat.v1.summary.scalar("attention/discriminator_gate", discriminator.attention.sigma)
