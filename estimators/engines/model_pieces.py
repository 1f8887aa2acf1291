"""A registered model as the functions TF-GAN's pieces call, bundled once per run (`GANPieces`).

  generator_fn          features (the model's generator inputs) -> the model's outputs
                        ({'images' [B, S, S, 3], ...}); one network per graph
  discriminator_fn      real or generated data -> the model's logits (any structure)
  model_loss            (which, gan_model) -> (guarded loss, {tag: scalar}) (estimators.losses)
  generator_loss_fn,    the same losses as TF-GAN's estimators call them (fn(gan_model,
  discriminator_loss_fn add_summaries))
  make_optimizers       () -> (G, D) optimisers of the run's step, built in the caller's graph

Every engine adapter hands these to its estimator; the shared train op (train_op.py) calls them.
What each does is the model's (its ModelSpec in estimators/models/); nothing here names one.
"""
import functools
import typing
import weakref

import tensorflow as tf

from estimators import losses
from estimators.engines import cluster, optimizers
from estimators.models import get_model
from estimators.networks import network_for_graph


class GANPieces(typing.NamedTuple):
  generator_fn: typing.Callable
  discriminator_fn: typing.Callable
  model_loss: typing.Callable
  generator_loss_fn: typing.Callable
  discriminator_loss_fn: typing.Callable
  make_optimizers: typing.Callable


_SUMMARISED = weakref.WeakKeyDictionary()  # graph -> kinds whose summaries it has


def first_summary_call(kind):
  """True once per graph and network kind, in replica 0: the in-graph step calls each network
  twice and every replica calls it; its summaries are added once."""
  done = _SUMMARISED.setdefault(tf.compat.v1.get_default_graph(), set())
  if kind in done or not cluster.is_first_replica():
    return False
  done.add(kind)
  return True


def _without_autograph(fn, *args):
  """fn(*args) with Keras's AutoGraph conversion of the layers it calls off.

  In a TF1 graph Keras runs each subclassed layer's `call` through AutoGraph unless told not
  to. The networks use no tensor-dependent Python control flow (an `if` on a tensor fails
  loudly without AutoGraph, it never changes silently), so the conversion only cost set-up
  time: the same ops, built faster."""
  return tf.autograph.experimental.do_not_convert(fn)(*args)


def make_generator_fn(cfg):
  spec = get_model(cfg.model)

  def generator_fn(features, mode):  # (TF-GAN reads these argument names)
    return _without_autograph(build, features, mode)

  def build(features, mode):
    generator, _ = network_for_graph("generator", cfg)
    training = mode == tf.estimator.ModeKeys.TRAIN
    outputs = spec.generate(cfg, generator, features, training=training)
    if training and not cfg.use_tpu and first_summary_call("generator"):
      spec.generator_summaries(cfg, generator)
    return outputs
  return generator_fn


def make_discriminator_fn(cfg):
  spec = get_model(cfg.model)

  def discriminator_fn(data_dict, generator_inputs, mode):
    return _without_autograph(build, data_dict, generator_inputs, mode)

  def build(data_dict, generator_inputs, mode):
    discriminator, _ = network_for_graph("discriminator", cfg)
    training = mode == tf.estimator.ModeKeys.TRAIN
    logits = spec.discriminate(cfg, discriminator, data_dict, generator_inputs, training=training)
    if training and not cfg.use_tpu and first_summary_call("discriminator"):
      spec.discriminator_summaries(cfg, discriminator)
    return logits
  return discriminator_fn


def _generator_state(cfg):
  """G's variables beyond the trained ones (its BN moving statistics) in the current graph."""
  return network_for_graph("generator", cfg)[0].non_trainable_variables


def make_pieces(plan):
  """The GANPieces of `plan` (plan.resolve(cfg)): its model, step and compute dtype."""
  cfg, spec = plan.cfg, get_model(plan.cfg.model)
  return GANPieces(
      generator_fn=make_generator_fn(cfg),
      discriminator_fn=make_discriminator_fn(cfg),
      model_loss=functools.partial(losses.model_loss, spec, cfg),
      generator_loss_fn=losses.tfgan_loss_fn(spec, cfg, "generator"),
      discriminator_loss_fn=losses.tfgan_loss_fn(spec, cfg, "discriminator"),
      # Optimisers as a callable: each estimator graph builds its own.
      make_optimizers=functools.partial(optimizers.make_optimizers, cfg, plan.step,
                                        functools.partial(_generator_state, cfg),
                                        plan.compute_dtype))
