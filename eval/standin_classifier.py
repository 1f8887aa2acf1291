"""A stand-in for TF-GAN's Inception module, for tests and benchmarks only: never for IS/FID.

Same interface as the TF-Hub module (`__call__(images [N, S, S, 3] in [-1, 1])` ->
{'logits': [N, 1008], 'pool_3': [N, 1, 1, 2048]}), so the real loading code (`load_inception`
with a local directory or the TF-Hub cache) and the whole metric pipeline can be exercised
offline. Its numbers are meaningless. Two flavours:

  `StandinModule`: fixed random projections of 4x4 average-pooled images; cheap, any widths.
  `inception_v3_standin`: Keras InceptionV3(weights=None) at 299x299 with a 1008-way head, for
      benchmarks that need the real network's cost (DESIGN.md trap 6), random weights.
"""
import numpy as np
import tensorflow as tf

from eval import inception


class StandinModule(tf.Module):
  """Deterministic random-projection classifier with Inception's output names and shapes."""

  def __init__(self, logits_dim: int = inception.LOGITS_DIM, pool_dim: int = inception.POOL_DIM,
               seed: int = 0):
    super().__init__(name="standin_inception")
    rng = np.random.RandomState(seed)
    self.pool_kernel = tf.Variable(rng.normal(0, 0.5, [48, pool_dim]).astype(np.float32))
    self.pool_bias = tf.Variable(rng.normal(0, 0.1, [pool_dim]).astype(np.float32))
    self.logits_kernel = tf.Variable(
        rng.normal(0, 3.0 / np.sqrt(pool_dim), [pool_dim, logits_dim]).astype(np.float32))

  @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
  def __call__(self, images):  # [N, S, S, 3] in [-1, 1]
    pooled = tf.image.resize(images, [4, 4], method="area")  # [N, 4, 4, 3]
    flat = tf.reshape(pooled, [-1, 48])
    pool_3 = tf.nn.relu(tf.matmul(flat, self.pool_kernel) + self.pool_bias)  # [N, D]
    logits = tf.matmul(pool_3, self.logits_kernel)  # [N, C]
    return {"logits": logits, "pool_3": pool_3[:, None, None, :]}  # pool_3 as [N, 1, 1, D]


def save_standin_module(path: str, **kwargs) -> str:
  """Writes a `StandinModule` SavedModel to `path` (a --inception_path stand-in); returns path."""
  tf.saved_model.save(StandinModule(**kwargs), path)
  return path


def standin_classifier(logits_dim: int = 16, pool_dim: int = 8, seed: int = 0,
                       image_size: int = 8) -> inception.InceptionClassifier:
  """A small in-memory stand-in wrapped like the real one; content_hash names its settings."""
  return inception.InceptionClassifier(
      StandinModule(logits_dim, pool_dim, seed), source="standin",
      content_hash=f"standin:{logits_dim}x{pool_dim}:seed{seed}", image_size=image_size)


def inception_v3_standin(seed: int = 0) -> tf.keras.Model:
  """Keras InceptionV3 (random weights) with Inception's outputs; same cost, meaningless values."""
  tf.keras.utils.set_random_seed(seed)
  images = tf.keras.Input([inception.INCEPTION_IMAGE_SIZE, inception.INCEPTION_IMAGE_SIZE, 3])
  backbone = tf.keras.applications.InceptionV3(weights=None, include_top=False, pooling="avg")
  pool_3 = backbone(images)  # [N, 2048]
  logits = tf.keras.layers.Dense(inception.LOGITS_DIM)(pool_3)  # [N, 1008]
  return tf.keras.Model(images, {"logits": logits, "pool_3": pool_3})
