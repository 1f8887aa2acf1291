"""Builds each model's generator and discriminator once per graph (DESIGN.md trap 4).

TF-GAN calls `discriminator_fn` twice per graph (real, fake). Keras layers created inside it on
each call would make two discriminators, both trained, silently; so each graph gets exactly one
instance of each network, kept here and returned on every later call in that graph.
"""
import weakref

import tensorflow as tf

from estimators.config import GANConfig
from estimators.models.sagan_networks import Discriminator, Generator
from tfgan_attention import YLGAttention

MODELS = ("sagan", "ylg_sagan")

_PER_GRAPH = weakref.WeakKeyDictionary()


def attention_layer_fn(cfg: GANConfig, update_u_in_eval=False):
  """None for SAGAN's SelfAttention; for YLG-SAGAN a factory of YLGAttention layers."""
  if cfg.model == "sagan":
    return None
  if cfg.model != "ylg_sagan":
    raise ValueError(f"unknown model {cfg.model!r}; choose one of {MODELS}")
  return lambda name: YLGAttention(
      layout=cfg.ylg_layout, esa=cfg.ylg_esa, nonsquare=cfg.ylg_nonsquare,
      implementation=cfg.ylg_implementation, update_u_in_eval=update_u_in_eval, name=name)


def make_generator(cfg: GANConfig) -> Generator:
  return Generator(cfg.image_size, cfg.gf_dim, cfg.num_classes,
                   attention_resolution=cfg.attention_resolution,
                   attention_type=cfg.attention_type, num_heads=cfg.num_heads,
                   attention_layer_fn=attention_layer_fn(cfg), bn_decay=cfg.bn_decay,
                   cross_replica_bn=cfg.cross_replica_bn)


def make_discriminator(cfg: GANConfig) -> Discriminator:
  return Discriminator(cfg.image_size, cfg.df_dim, cfg.num_classes,
                       attention_resolution=cfg.attention_resolution,
                       attention_type=cfg.attention_type, num_heads=cfg.num_heads,
                       update_u_in_eval=cfg.sn_update_in_eval,
                       attention_layer_fn=attention_layer_fn(cfg, cfg.sn_update_in_eval))


def network_for_graph(kind: str, cfg: GANConfig):
  """(network, created_now): the graph's single generator or discriminator.

  Args:
    kind: 'generator' or 'discriminator'.
  """
  graph = tf.compat.v1.get_default_graph()
  nets = _PER_GRAPH.setdefault(graph, {})
  created = kind not in nets
  if created:
    nets[kind] = {"generator": make_generator, "discriminator": make_discriminator}[kind](cfg)
  return nets[kind], created
