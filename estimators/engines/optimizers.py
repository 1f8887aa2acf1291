"""Adam with TTUR (SAGAN sec. 4.2) and an optional exponential moving average of the generator,
with the constants of the model's training step (training_step.py): Adam's epsilon,
where it is added, and what the EMA averages.

The EMA is applied right after each generator update, inside the generator's train op, so the
estimator graph needs nothing else. Shadow variables are initialised from the generator's initial
weights (LadaGAN's official TF code forgot to do this) and are checkpointed as
`<variable>/ExponentialMovingAverage`, which is what sampling and export read with EMA on.
"""
import tensorflow as tf

from estimators.engines import precision

EMA_SUFFIX = "ExponentialMovingAverage"


class Adam(tf.compat.v1.train.AdamOptimizer):
  """TF1 Adam (its fused kernels), with PyTorch's placement of epsilon as an option and an
  optional EMA of the variables it trains (plus `ema_extra()`, e.g. BN moving statistics).

  TF1 and Keras Adam step lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps); PyTorch's
  lr / (1 - b1^t) m / (sqrt(v) / sqrt(1 - b2^t) + eps): the same update with TF's epsilon set
  to eps sqrt(1 - b2^t), which is what epsilon_form='pytorch' feeds the kernels each step.
  """

  def __init__(self, epsilon_form="tf", ema_decay=0.0, ema_extra=None, **kwargs):
    super().__init__(**kwargs)
    if epsilon_form not in ("tf", "pytorch"):
      raise ValueError(f"epsilon_form must be 'tf' or 'pytorch', got {epsilon_form!r}")
    if ema_decay and not 0.0 < ema_decay < 1.0:
      raise ValueError(f"ema_decay must be in (0, 1), got {ema_decay}")
    self._epsilon_form = epsilon_form
    self._ema = (tf.train.ExponentialMovingAverage(decay=ema_decay, name=EMA_SUFFIX)
                 if ema_decay else None)
    self._ema_extra = ema_extra or (lambda: [])

  def _prepare(self):
    super()._prepare()
    if self._epsilon_form == "pytorch":
      _, beta2_power = self._get_beta_accumulators()  # b2^t of this step
      self._epsilon_t = self._epsilon_t * tf.sqrt(1.0 - tf.cast(beta2_power, tf.float32))

  def apply_gradients(self, grads_and_vars, global_step=None, name=None):
    grads_and_vars = list(grads_and_vars)
    step = super().apply_gradients(grads_and_vars, global_step=global_step, name=name)
    if self._ema is None:
      return step
    trained = [v for g, v in grads_and_vars if g is not None]
    known = {id(v) for v in trained}
    extra = [v for v in self._ema_extra() if id(v) not in known]
    with tf.control_dependencies([step]):
      return self._ema.apply(trained + extra)


def make_optimizers(cfg, step, generator_state=None, compute_dtype=None):
  """(generator optimizer, discriminator optimizer) of the run's training step `step` (a
  training_step.TrainingStep). `generator_state()`: G's variables beyond the trained ones (its BN
  moving statistics), which the EMA also averages when the step says `ema_variables='all'`.
  `compute_dtype` (precision.compute_dtype's answer): float16 adds loss scaling."""
  common = dict(beta1=cfg.beta1, beta2=cfg.beta2, epsilon=step.adam_epsilon,
                epsilon_form=step.adam_epsilon_form)
  ema_extra = None
  if step.ema_variables == "all":  # G's BN moving statistics (and any other state) too
    if generator_state is None:
      raise ValueError("the training step's EMA averages all of G's variables: pass "
                       "generator_state")
    ema_extra = generator_state
  g_opt = Adam(learning_rate=cfg.generator_lr, ema_decay=cfg.ema_decay, ema_extra=ema_extra,
               name="generator_adam", **common)
  d_opt = Adam(learning_rate=cfg.discriminator_lr, name="discriminator_adam", **common)
  return (precision.wrap_optimizer(g_opt, compute_dtype),
          precision.wrap_optimizer(d_opt, compute_dtype))
