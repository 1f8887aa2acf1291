"""Builds each model's generator and discriminator once per graph (DESIGN.md trap 4).

TF-GAN calls `discriminator_fn` twice per graph (real, fake). Keras layers created inside it on
each call would make two discriminators, both trained, silently; so each graph gets exactly one
instance of each network, kept here and returned on every later call in that graph. Which
network that is, is the model's business (its ModelSpec's make_generator / make_discriminator).
"""
import weakref

import tensorflow as tf

from estimators.models import get_model
from estimators.engines.training_step import configure_batch_norm

_PER_GRAPH = weakref.WeakKeyDictionary()
KINDS = ("generator", "discriminator")


def make_network(kind: str, cfg):
  """A new generator or discriminator of cfg.model."""
  if kind not in KINDS:
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
  spec = get_model(cfg.model)
  network = spec.make_generator(cfg) if kind == "generator" else spec.make_discriminator(cfg)
  # The step's batch-norm moving-variance estimator (only training-mode calls read it).
  return configure_batch_norm(network, spec.training_step(cfg))


def make_generator(cfg):
  return make_network("generator", cfg)


def make_discriminator(cfg):
  return make_network("discriminator", cfg)


def network_for_graph(kind: str, cfg):
  """(network, created_now): the graph's single generator or discriminator."""
  graph = tf.compat.v1.get_default_graph()
  nets = _PER_GRAPH.setdefault(graph, {})
  created = kind not in nets
  if created:
    nets[kind] = make_network(kind, cfg)
  return nets[kind], created
