"""The engines' view of a model's losses: model-neutral tags and a non-finite guard.

A model's ModelSpec computes its generator and discriminator losses (every term included) and
the extra scalars it wants logged. The engines take them through here: each loss is summarised
as `loss/generator` / `loss/discriminator` and passes through `tf.debugging.check_numerics`, so
the step whose loss is NaN or Inf fails *before* its gradients are applied and the last
checkpoint stays good (`NonFiniteLossError`).
"""
import tensorflow as tf

from estimators import summaries

NONFINITE_MARKER = "NON_FINITE_GAN_LOSS"
TAGS = {"generator": "loss/generator", "discriminator": "loss/discriminator"}


class NonFiniteLossError(RuntimeError):
  """Training stopped because a loss became NaN or Inf."""


def guard(loss, which):
  return tf.debugging.check_numerics(loss, f"{NONFINITE_MARKER}: {which} loss")


def model_loss(spec, cfg, which, gan_model):
  """(guarded loss, {tag: scalar}) of `which` ('generator' or 'discriminator'), the scalars
  holding the loss under its model-neutral tag and the model's own terms."""
  fn = spec.generator_loss if which == "generator" else spec.discriminator_loss
  loss, scalars = fn(cfg, gan_model)
  loss = guard(loss, which)
  return loss, {TAGS[which]: loss, **scalars}


def tfgan_loss_fn(spec, cfg, which):
  """The loss as TF-GAN's GANEstimator calls it: fn(gan_model, add_summaries) -> scalar."""
  def loss_fn(gan_model, add_summaries=False):
    loss, scalars = model_loss(spec, cfg, which, gan_model)
    if add_summaries:
      summaries.add_scalars(scalars)
    return loss
  return loss_fn
