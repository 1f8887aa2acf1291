"""Batch normalisation whose moving statistics update inside TF1 estimator graphs too.

Keras' BatchNormalization registers its moving-average updates with Keras, which a TF-GAN
GANEstimator graph never runs (DESIGN.md trap 3). These layers create the assign ops themselves:
in a TF1 graph they go into tf.GraphKeys.UPDATE_OPS, created under the generator's or
discriminator's name scope, so TF-GAN's `gan_train_ops` runs them with that network's train op;
eagerly or inside a tf.function they simply run.
"""
import tensorflow as tf


def _register_updates(updates):
  if not tf.compat.v1.executing_eagerly_outside_functions():  # TF1 graph (estimator)
    for op in updates:
      tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.UPDATE_OPS, op)


class _MovingMoments(tf.keras.layers.Layer):
  """Shared part: per-channel batch moments in training, moving averages in inference."""

  def __init__(self, decay=0.999, epsilon=1e-3, **kwargs):
    super().__init__(**kwargs)
    self.decay = decay
    self.epsilon = epsilon

  def _build_moments(self, channels):
    kw = dict(trainable=False, aggregation=tf.VariableAggregation.MEAN)
    self.moving_mean = self.add_weight(name="moving_mean", shape=(channels,),
                                       initializer="zeros", **kw)
    self.moving_variance = self.add_weight(name="moving_variance", shape=(channels,),
                                           initializer="ones", **kw)

  def _normalize(self, x, training):
    """Returns (x - mean) / sqrt(var + eps) with batch or moving moments."""
    if training:
      axes = list(range(len(x.shape) - 1))
      mean, var = tf.nn.moments(x, axes=axes)  # [C], [C] (biased variance, as tf.nn.moments)
      one_minus = 1.0 - self.decay
      updates = [
          self.moving_mean.assign_sub((self.moving_mean - mean) * one_minus, read_value=False),
          self.moving_variance.assign_sub((self.moving_variance - var) * one_minus,
                                          read_value=False),
      ]
      _register_updates(updates)
    else:
      mean, var = self.moving_mean, self.moving_variance
    return (x - mean) * tf.math.rsqrt(var + self.epsilon)


class BatchNorm(_MovingMoments):
  """Plain batch norm with per-channel gamma (ones) and beta (zeros)."""

  def build(self, input_shape):
    c = int(input_shape[-1])
    self.gamma = self.add_weight(name="gamma", shape=(c,), initializer="ones")
    self.beta = self.add_weight(name="beta", shape=(c,), initializer="zeros")
    self._build_moments(c)
    super().build(input_shape)

  def call(self, x, training=False):
    return self._normalize(x, training) * self.gamma + self.beta


class ConditionalBatchNorm(_MovingMoments):
  """Class-conditional batch norm: out = gamma[y] * BN(x) + beta[y].

  gamma and beta are [num_classes, C], initialised to ones and zeros (so an untrained layer is
  plain BN; never `x * gamma` with a zero-initialised gamma). SAGAN: eps 1e-3, decay 0.999.
  """

  def __init__(self, num_classes, **kwargs):
    super().__init__(**kwargs)
    self.num_classes = int(num_classes)

  def build(self, input_shape):
    c = int(input_shape[-1])
    self.gamma = self.add_weight(name="gamma", shape=(self.num_classes, c), initializer="ones")
    self.beta = self.add_weight(name="beta", shape=(self.num_classes, c), initializer="zeros")
    self._build_moments(c)
    super().build(input_shape)

  def call(self, x, labels, training=False):
    x_hat = self._normalize(x, training)  # [B, H, W, C]
    gamma = tf.gather(self.gamma, labels)[:, None, None, :]  # [B, 1, 1, C]
    beta = tf.gather(self.beta, labels)[:, None, None, :]
    return x_hat * gamma + beta
