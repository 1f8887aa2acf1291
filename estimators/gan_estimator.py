"""SAGAN wired into TF-GAN's GANEstimator / TPUGANEstimator, with every DESIGN.md trap handled.

  input_fn        -> features {'noise' [B, z]}, labels = real data {'images', 'labels'}
  generator_fn    -> {'images' [B, S, S, 3], 'labels' [B]}; fake labels are sampled uniformly
                     inside the generator (TF-GAN's SAGAN) unless features carry 'labels'.
  discriminator_fn-> logits [B] for either dict; one network per graph (trap 4).
Losses: hinge; optimisers: Adam TTUR (+ optional G EMA); one D step per G step.
"""
from estimators import compat  # noqa: F401  (must precede TF-GAN use: trap 1)

import os

import tensorflow as tf
import tensorflow_gan as tfgan

import data
from estimators import losses, summaries
from estimators.config import GANConfig
from estimators.networks import network_for_graph
from estimators.optimizers import make_optimizers


def _sample_labels(batch_size, num_classes):
  logits = tf.zeros([batch_size, num_classes])
  return tf.cast(tf.random.categorical(logits, 1)[:, 0], tf.int32)  # uniform [B]


def make_generator_fn(cfg: GANConfig):
  def generator_fn(features, mode):
    generator, _ = network_for_graph("generator", cfg)
    training = mode == tf.estimator.ModeKeys.TRAIN
    noise = features["noise"] if isinstance(features, dict) else features  # [B, z]
    batch = tf.shape(noise)[0]
    if not cfg.num_classes:
      labels = tf.zeros([batch], tf.int32)
    elif isinstance(features, dict) and "labels" in features:
      labels = tf.cast(features["labels"], tf.int32)
    else:
      labels = _sample_labels(batch, cfg.num_classes)
    images = generator(noise, labels if cfg.num_classes else None, training=training)
    if training and not cfg.use_tpu:
      summaries.add_generator_summaries(generator, cfg)
    return {"images": images, "labels": labels}
  return generator_fn


def make_discriminator_fn(cfg: GANConfig):
  def discriminator_fn(data_dict, unused_generator_inputs, mode):
    discriminator, first_call = network_for_graph("discriminator", cfg)
    labels = data_dict.get("labels") if cfg.num_classes else None
    logits = discriminator(data_dict["images"], labels,
                           training=mode == tf.estimator.ModeKeys.TRAIN)
    if first_call and mode == tf.estimator.ModeKeys.TRAIN and not cfg.use_tpu:
      summaries.add_discriminator_summaries(discriminator)
    return logits
  return discriminator_fn


def vocabulary_path(cfg: GANConfig):
  return os.path.join(cfg.model_dir, "vocab.txt")


def load_options(cfg: GANConfig, input_context=None):
  """data.load keyword options for this run: seed, strictness, sharding, caption settings.

  Caption sets read their vocabulary from the run's vocab.txt (written by `prepare_run_data`
  before training) so training, evaluation and export use the same word ids.
  """
  options = dict(seed=cfg.seed, strict=cfg.strict_data, input_context=input_context)
  if data.get_spec(cfg.dataset).has_captions:
    options["vocabulary"] = vocabulary_path(cfg)
    if cfg.max_words:
      options["max_words"] = cfg.max_words
  elif cfg.max_words:
    raise ValueError(f"--max_words applies to caption datasets; {cfg.dataset} has none")
  return options


def prepare_run_data(cfg: GANConfig):
  """Writes what the data pipelines need into the run directory (caption vocabulary)."""
  spec = data.get_spec(cfg.dataset)
  if spec.has_captions and not os.path.exists(vocabulary_path(cfg)):
    spec.vocabulary(cfg.data_dir).save(vocabulary_path(cfg))


def make_train_input_fn(cfg: GANConfig, dataset_fn=None):
  """input_fn for training; `dataset_fn()` (unbatched dict elements, built in the estimator's
  graph) replaces data.load when given. Multi-worker input is sharded by `input_context`."""
  def input_fn(params=None, input_context=None):
    batch_size = (params or {}).get("batch_size", cfg.batch_size)
    ds = dataset_fn() if dataset_fn is not None else data.load(
        cfg.dataset, data_dir=cfg.data_dir, split="train", image_size=cfg.image_size,
        **load_options(cfg, input_context))
    ds = data.batch_pipeline(ds, batch_size, training=True, seed=cfg.seed)

    def add_noise(real):
      labels = (tf.cast(real["labels"], tf.int32) if "labels" in real
                else tf.zeros([batch_size], tf.int32))  # unconditional sets: unused zeros
      return ({"noise": tf.random.normal([batch_size, cfg.z_dim])},
              {"images": real["images"], "labels": labels})
    return ds.map(add_noise, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)
  return input_fn


def run_config_kwargs(cfg: GANConfig):
  """Arguments shared by tf.estimator.RunConfig and its TPU variant."""
  return dict(model_dir=cfg.model_dir, tf_random_seed=cfg.seed,
              save_checkpoints_steps=cfg.save_checkpoints_steps,
              save_summary_steps=cfg.save_summary_steps,
              keep_checkpoint_max=cfg.keep_checkpoint_max,
              log_step_count_steps=cfg.save_summary_steps)  # steps/sec at the summary cadence


def build_estimator(cfg: GANConfig):
  """A GANEstimator (or TPUGANEstimator when cfg.use_tpu) for the configured model."""
  # Optimisers as callables: TF-GAN builds them inside each estimator graph.
  kwargs = dict(generator_fn=make_generator_fn(cfg),
                discriminator_fn=make_discriminator_fn(cfg),
                generator_loss_fn=losses.hinge_generator_loss,
                discriminator_loss_fn=losses.hinge_discriminator_loss,
                generator_optimizer=lambda: make_optimizers(cfg)[0],
                discriminator_optimizer=lambda: make_optimizers(cfg)[1])
  run_kwargs = run_config_kwargs(cfg)
  if cfg.use_tpu:
    cluster = (tf.distribute.cluster_resolver.TPUClusterResolver(tpu=cfg.tpu)
               if cfg.tpu else None)
    config = tf.compat.v1.estimator.tpu.RunConfig(
        cluster=cluster, **run_kwargs,
        tpu_config=tf.compat.v1.estimator.tpu.TPUConfig(iterations_per_loop=cfg.save_summary_steps))
    return tfgan.estimator.TPUGANEstimator(
        config=config, use_tpu=bool(cfg.tpu), train_batch_size=cfg.batch_size,
        eval_batch_size=cfg.batch_size, predict_batch_size=cfg.batch_size, **kwargs)
  config = tf.estimator.RunConfig(**run_kwargs)
  return tfgan.estimator.GANEstimator(config=config, use_loss_summaries=True, **kwargs)
