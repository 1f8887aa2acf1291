"""Adapter: TF-GAN's GANEstimator (`--engine=gan_estimator`), its own step through its hooks.

GANEstimator runs the generator hook's session.run, then the discriminator hook's (TF-GAN's
sequential train hooks), each reading a new input element, then a third for the logged loss. It
executes one step only (training_step._TFGAN_ENGINES); plan.resolve refused any other at start.
It takes the model's pieces as they are: networks, losses (with their summaries) and optimisers.
"""
from estimators import compat  # noqa: F401  (must precede TF-GAN use: trap 1)

import tensorflow as tf
import tensorflow_gan as tfgan

from estimators.engines import precision


def tfgan_kwargs(pieces):
  """The model's pieces as TF-GAN's estimators take them."""
  return dict(generator_fn=pieces.generator_fn, discriminator_fn=pieces.discriminator_fn,
              generator_loss_fn=pieces.generator_loss_fn,
              discriminator_loss_fn=pieces.discriminator_loss_fn,
              generator_optimizer=lambda: pieces.make_optimizers()[0],
              discriminator_optimizer=lambda: pieces.make_optimizers()[1])


def estimator(plan, pieces, run_kwargs):
  rewrites = plan.compute_dtype is not None or plan.xla
  config = tf.estimator.RunConfig(
      session_config=(precision.configure_session(plan.compute_dtype, plan.xla)
                      if rewrites else None),
      **run_kwargs)
  return tfgan.estimator.GANEstimator(config=config, use_loss_summaries=True,
                                      **tfgan_kwargs(pieces))
