"""TensorBoard helpers for the estimator's train graph, shared by every model's summaries."""
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
