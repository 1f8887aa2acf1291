"""Adam with TTUR (SAGAN sec. 4.2) and an optional exponential moving average of the generator.

The EMA is applied right after each generator update, inside the generator's train op, so the
estimator graph needs nothing else. Shadow variables are initialised from the generator's initial
weights (LadaGAN's official TF code forgot to do this) and are checkpointed as
`<variable>/ExponentialMovingAverage`, which is what sampling and export read with EMA on.
"""
import tensorflow as tf

from estimators import precision

EMA_SUFFIX = "ExponentialMovingAverage"


class AdamWithEMA(tf.compat.v1.train.AdamOptimizer):
  """Adam that also updates an EMA of the variables it trains."""

  def __init__(self, ema_decay, **kwargs):
    super().__init__(**kwargs)
    if not 0.0 < ema_decay < 1.0:
      raise ValueError(f"ema_decay must be in (0, 1), got {ema_decay}")
    self._ema = tf.train.ExponentialMovingAverage(decay=ema_decay, name=EMA_SUFFIX)

  def apply_gradients(self, grads_and_vars, global_step=None, name=None):
    grads_and_vars = list(grads_and_vars)
    step = super().apply_gradients(grads_and_vars, global_step=global_step, name=name)
    with tf.control_dependencies([step]):
      return self._ema.apply([v for g, v in grads_and_vars if g is not None])


def make_optimizers(cfg):
  """(generator optimizer, discriminator optimizer) for the GANEstimator."""
  g_kwargs = dict(learning_rate=cfg.generator_lr, beta1=cfg.beta1, beta2=cfg.beta2)
  d_kwargs = dict(learning_rate=cfg.discriminator_lr, beta1=cfg.beta1, beta2=cfg.beta2)
  if cfg.ema_decay:
    g_opt = AdamWithEMA(cfg.ema_decay, name="generator_adam", **g_kwargs)
  else:
    g_opt = tf.compat.v1.train.AdamOptimizer(name="generator_adam", **g_kwargs)
  d_opt = tf.compat.v1.train.AdamOptimizer(name="discriminator_adam", **d_kwargs)
  return precision.wrap_optimizer(g_opt, cfg), precision.wrap_optimizer(d_opt, cfg)
