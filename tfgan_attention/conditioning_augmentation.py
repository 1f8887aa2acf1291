"""Conditioning augmentation F_ca (StackGAN, used by AttnGAN) and its KL penalty.

  x = GLU(Dense(e))             e the sentence vector [B, 256]; Dense to 4 c_dim, GLU halves it
  mu, logvar = x[:, :c], x[:, c:]                                          [B, c_dim] each
  c = mu + exp(logvar / 2) * eps,  eps ~ N(0, I)                           [B, c_dim]

As the official CA_NET: the Dense has a bias, c_dim = 100 (so 256 -> 400 -> 200 -> 2 x 100), and
a sample is drawn on every call (training and inference alike). Pass `noise` to make the draw
explicit (for example stateless per-example noise, independent of how a batch is split).
"""
import tensorflow as tf


def glu(x):
  """Gated linear unit over the last axis: first half * sigmoid(second half)."""
  a, gate = tf.split(x, 2, axis=-1)
  return a * tf.sigmoid(gate)


def kl_loss(mu, logvar):
  """KL(N(mu, exp(logvar)) || N(0, I)) per element, averaged over batch AND dimensions.

  mean(-0.5 * (1 + logvar - mu^2 - exp(logvar))), as the official KL_loss (weight 1 in G's loss).
  Args: mu, logvar: [B, c_dim].
  """
  return tf.reduce_mean(-0.5 * (1.0 + logvar - tf.square(mu) - tf.exp(logvar)))


class ConditioningAugmentation(tf.keras.layers.Layer):
  """F_ca: sentence vector -> (sampled condition c, mu, logvar).

  Args:
    condition_dim: c_dim, 100 in AttnGAN.
    kernel_initializer: of the Dense. The official generator initialises Linear layers
      orthogonally (its bias keeps PyTorch's default, here zeros).
  Call:
    sentence: [B, D] sentence features.
    noise: optional [B, condition_dim] standard-normal draws; drawn here when None.
  Returns:
    (c, mu, logvar), each [B, condition_dim].
  """

  def __init__(self, condition_dim=100, kernel_initializer="orthogonal", **kwargs):
    super().__init__(**kwargs)
    self.condition_dim = int(condition_dim)
    self.kernel_initializer = kernel_initializer

  def build(self, input_shape):
    self.fc = tf.keras.layers.Dense(4 * self.condition_dim, use_bias=True,
                                    kernel_initializer=self.kernel_initializer, name="fc")
    super().build(input_shape)

  def call(self, sentence, noise=None):
    x = glu(self.fc(sentence))  # [B, 2 c_dim]
    mu, logvar = x[:, :self.condition_dim], x[:, self.condition_dim:]  # [B, c_dim] each
    if noise is None:
      noise = tf.random.normal(tf.shape(mu), dtype=mu.dtype)
    c = mu + tf.exp(0.5 * logvar) * tf.cast(noise, mu.dtype)
    return c, mu, logvar
