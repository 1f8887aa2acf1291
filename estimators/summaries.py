"""TensorBoard helpers for the estimator's train graph, shared by every model's summaries."""
import numpy as np
import tensorflow as tf


def image_grid(images, cols):
  """[N, H, W, C] -> [1, rows*H, cols*W, C], row-major; N must divide by cols."""
  n, h, w, c = images.shape
  rows = n // cols
  x = tf.reshape(images[: rows * cols], [rows, cols, h, w, c])
  x = tf.transpose(x, [0, 2, 1, 3, 4])
  return tf.reshape(x, [1, rows * h, cols * w, c])


def add_image_grid(tag, images, cols):
  """One image summary `tag` of images [N, H, W, 3] in [-1, 1] laid out `cols` wide."""
  grid = image_grid((images + 1.0) / 2.0, cols)
  with tf.compat.v1.name_scope(""):  # the tag as given, without the network's scope prefix
    tf.compat.v1.summary.image(tag, grid, max_outputs=1)


def add_scalars(values):
  """Scalar summaries {tag: value} under their tags as given."""
  with tf.compat.v1.name_scope(""):
    for tag, value in values.items():
      tf.compat.v1.summary.scalar(tag, value)


def attention_heat_maps(attention, image_size):
  """[heads, N] attention of one sample over a sqrt(N) x sqrt(N) token grid -> [heads, S, S, 1]
  in [0, 1], each head scaled to its maximum and resized (nearest) to the image."""
  heads, n = attention.shape
  side = int(np.sqrt(int(n)))
  maps = tf.reshape(attention, [heads, side, side, 1])
  maps = maps / (tf.reduce_max(maps, axis=[1, 2, 3], keepdims=True) + 1e-12)
  return tf.image.resize(maps, [image_size, image_size], method="nearest")
