"""Batch normalisation whose moving statistics update inside TF1 estimator graphs too.

Keras' BatchNormalization registers its moving-average updates with Keras, which a TF-GAN
GANEstimator graph never runs (DESIGN.md trap 3). These layers create the assign ops themselves:
in a TF1 graph they go into tf.GraphKeys.UPDATE_OPS, created under the generator's or
discriminator's name scope, so TF-GAN's `gan_train_ops` runs them with that network's train op;
eagerly or inside a tf.function they simply run.
"""
import tensorflow as tf
from tensorflow.python.tpu import tpu_function  # pylint: disable=g-direct-tensorflow-import
from tensorflow_gan.python.tpu import cross_replica_ops


def batch_moments(x, axes, cross_replica=True):
  """Per-channel (mean, biased variance) of x over `axes`, in float32.

  With `cross_replica`, inside a multi-replica step the moments are those of the GLOBAL batch:
  on TPU through TF-GAN's `cross_replica_moments` (TPUGANEstimator; as SAGAN's TPU runs), under
  a tf.distribute strategy (mirrored / multi-worker) in two passes, as tf.nn.moments (one pass
  over x and x^2, E[x^2] - E[x]^2, loses the variance to cancellation in float32): the all-reduced
  sums of x and the row counts give the global mean (replicas may hold different numbers of rows:
  AttnGAN's mismatched pairs), then the all-reduced sums of squared deviations from it the
  variance. Outside both, or with one replica, it is tf.nn.moments.
  """
  x = tf.cast(x, tf.float32)
  if cross_replica:
    if (tpu_function.get_tpu_context().number_of_shards or 1) > 1:
      return cross_replica_ops.cross_replica_moments(x, axes)
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    if replicas > 1:
      count = context.all_reduce(tf.distribute.ReduceOp.SUM, _local_count(x, axes))
      mean = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(x, axes)) / count
      squares = tf.reduce_sum(tf.math.squared_difference(x, tf.stop_gradient(mean)), axes)
      return mean, context.all_reduce(tf.distribute.ReduceOp.SUM, squares) / count
  return tf.nn.moments(x, axes=axes)


def _register_updates(updates):
  if not tf.compat.v1.executing_eagerly_outside_functions():  # TF1 graph (estimator)
    for op in updates:
      tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.UPDATE_OPS, op)


def _local_count(x, axes):
  return tf.cast(tf.reduce_prod(tf.gather(tf.shape(x), axes)), tf.float32)


def _count(x, axes, cross_replica=True):
  """How many values each channel's batch moments average over (the global batch's with
  `cross_replica` inside a multi-replica step, as batch_moments: summed over tf.distribute
  replicas, which may hold different numbers of rows; TPU shards hold equal ones)."""
  n = _local_count(x, axes)
  if cross_replica:
    shards = tpu_function.get_tpu_context().number_of_shards or 1
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    if shards > 1:
      return n * float(shards)
    if replicas > 1:
      return context.all_reduce(tf.distribute.ReduceOp.SUM, n)
  return n


class MovingMoments(tf.keras.layers.Layer):
  """Shared part: per-channel batch moments in training, moving averages in inference.

  The moving variance averages the biased batch variance (tf.nn.moments, TF-GAN's batch norm),
  or with `unbiased_variance` the batch variance x n / (n - 1) (Keras' fused batch norm and
  PyTorch: what LadaGAN's and AttnGAN's official code accumulate); normalisation in training
  always uses the biased one, as all of them do. Engines set it from the model's training step
  (estimators/engines/training_step.py).

  inference='batch' normalises with the batch's own moments outside training too (without
  touching the moving averages), as TF-GAN's SAGAN example, the YLG code and the SAGAN authors'
  code do when they sample and evaluate: the output then depends on the rest of the batch.
  """
  INFERENCE = ("moving", "batch")

  def __init__(self, decay=0.999, epsilon=1e-3, cross_replica=True, inference="moving",
               **kwargs):
    super().__init__(**kwargs)
    if inference not in self.INFERENCE:
      raise ValueError(f"inference must be one of {self.INFERENCE}, got {inference!r}")
    self.decay = decay
    self.epsilon = epsilon
    self.cross_replica = cross_replica  # global-batch statistics across replicas
    self.inference = inference
    self.unbiased_variance = False

  def _build_moments(self, channels):
    kw = dict(trainable=False, aggregation=tf.VariableAggregation.MEAN)
    self.moving_mean = self.add_weight(name="moving_mean", shape=(channels,),
                                       initializer="zeros", **kw)
    self.moving_variance = self.add_weight(name="moving_variance", shape=(channels,),
                                           initializer="ones", **kw)

  def _moments(self, x, training):
    """(mean, variance) [C] float32: the batch's (updating the moving averages in training) or
    the moving ones."""
    if training:
      axes = list(range(len(x.shape) - 1))
      mean, var = batch_moments(x, axes, self.cross_replica)  # [C], [C] float32, biased var
      one_minus = 1.0 - self.decay
      moving_var = var
      if self.unbiased_variance:
        n = _count(x, axes, self.cross_replica)
        moving_var = var * (n / tf.maximum(n - 1.0, 1.0))
      updates = [
          self.moving_mean.assign_sub((self.moving_mean - mean) * one_minus, read_value=False),
          self.moving_variance.assign_sub((self.moving_variance - moving_var) * one_minus,
                                          read_value=False),
      ]
      _register_updates(updates)
      return mean, var
    if self.inference == "batch":
      return batch_moments(x, list(range(len(x.shape) - 1)), self.cross_replica)
    return self.moving_mean, self.moving_variance

  def _scale_shift(self, x, training, gamma, beta):
    """gamma * (x - mean) / sqrt(var + eps) + beta as x * a + b (tf.nn.batch_normalization's
    form, as TF-GAN's batch norms): a = gamma / sqrt(var + eps), b = beta - mean * a are
    computed on the small [C] or [B, 1, 1, C] parameters, so the feature map sees one multiply
    and one add instead of four element-wise passes (issue #27). Equal to float rounding.
    gamma, beta: [C] or [B, 1, 1, C]."""
    mean, var = self._moments(x, training)
    a = tf.math.rsqrt(var + self.epsilon) * tf.cast(gamma, tf.float32)
    b = tf.cast(beta, tf.float32) - tf.cast(mean, tf.float32) * a
    return x * tf.cast(a, x.dtype) + tf.cast(b, x.dtype)


class BatchNorm(MovingMoments):
  """Plain batch norm with per-channel gamma (ones) and beta (zeros)."""

  def build(self, input_shape):
    c = int(input_shape[-1])
    self.gamma = self.add_weight(name="gamma", shape=(c,), initializer="ones")
    self.beta = self.add_weight(name="beta", shape=(c,), initializer="zeros")
    self._build_moments(c)
    super().build(input_shape)

  def call(self, x, training=False):
    return self._scale_shift(x, training, self.gamma, self.beta)


class ConditionalBatchNorm(MovingMoments):
  """Class-conditional batch norm: out = gamma[y] * BN(x) + beta[y].

  gamma and beta are [num_classes, C], initialised to ones and zeros (so an untrained layer is
  plain BN; never `x * gamma` with a zero-initialised gamma). SAGAN: eps 1e-3, decay 0.999.
  `labels` are class ids [B] (int), or class weights [B, num_classes] (float) that mix the
  classes' gammas and betas, sum_c w_c * gamma[c] (latent walks between classes); one-hot
  weights give exactly the class's output.
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
    labels = tf.convert_to_tensor(labels)
    if labels.dtype.is_floating:  # class weights [B, num_classes]
      weights = tf.cast(labels, self.gamma.dtype)
      gamma = tf.matmul(weights, self.gamma)[:, None, None, :]  # [B, 1, 1, C]
      beta = tf.matmul(weights, self.beta)[:, None, None, :]
    else:
      gamma = tf.gather(self.gamma, labels)[:, None, None, :]  # [B, 1, 1, C]
      beta = tf.gather(self.beta, labels)[:, None, None, :]
    return self._scale_shift(x, training, gamma, beta)  # [B, H, W, C]
