"""Hinge losses (SAGAN eq. 4) through TF-GAN, with D-output summaries and a non-finite guard.

Each loss passes through `tf.debugging.check_numerics`: the step whose loss is NaN or Inf fails
*before* its gradients are applied, so the last checkpoint stays good (`NonFiniteLossError`).
"""
import tensorflow as tf
import tensorflow_gan as tfgan

NONFINITE_MARKER = "NON_FINITE_GAN_LOSS"


class NonFiniteLossError(RuntimeError):
  """Training stopped because a loss became NaN or Inf."""


def _guard(loss, which):
  return tf.debugging.check_numerics(loss, f"{NONFINITE_MARKER}: {which} loss")


def hinge_generator_loss(gan_model, add_summaries=False):
  """L_G = -E[D(G(z), y)]."""
  loss = tfgan.losses.wargs.wasserstein_hinge_generator_loss(
      gan_model.discriminator_gen_outputs, add_summaries=add_summaries)
  return _guard(loss, "generator")


def hinge_discriminator_loss(gan_model, add_summaries=False):
  """L_D = E[relu(1 - D(x, y))] + E[relu(1 + D(G(z), y))]; logs mean D(real), D(fake)."""
  real, fake = gan_model.discriminator_real_outputs, gan_model.discriminator_gen_outputs
  loss = tfgan.losses.wargs.wasserstein_hinge_discriminator_loss(
      real, fake, add_summaries=add_summaries)
  if add_summaries:
    tf.compat.v1.summary.scalar("discriminator/mean_real_output", tf.reduce_mean(real))
    tf.compat.v1.summary.scalar("discriminator/mean_fake_output", tf.reduce_mean(fake))
  return _guard(loss, "discriminator")
