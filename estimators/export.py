"""Generator out of the estimator: eager restore from a checkpoint, SavedModel export, sampling.

The estimator's checkpoint keys are the Keras variable names under the 'Generator/' scope, so an
eagerly built generator maps onto them one to one; with EMA, trainable weights are read from
their `/ExponentialMovingAverage` shadows. Any missing key is an error (never a silent partial
restore). Exports are written to a temporary directory and renamed into place, so a crash never
leaves a half-written SavedModel under its final name.
"""
import os
import shutil

import numpy as np
import tensorflow as tf

from estimators.config import GANConfig
from estimators.networks import make_generator
from estimators.optimizers import EMA_SUFFIX

GENERATOR_SCOPE = "Generator"


def checkpoint_step(checkpoint_path):
  return int(tf.train.load_checkpoint(checkpoint_path).get_tensor("global_step"))


def resolve_checkpoint(model_dir_or_path):
  """A checkpoint prefix from a prefix or a model_dir (its latest); clear error if none."""
  if tf.io.gfile.isdir(model_dir_or_path):
    path = tf.train.latest_checkpoint(model_dir_or_path)
    if path is None:
      raise FileNotFoundError(f"no checkpoint in {model_dir_or_path}: train first "
                              "(--mode=train) or pass --checkpoint=PATH")
    return path
  if not tf.io.gfile.exists(model_dir_or_path + ".index"):
    raise FileNotFoundError(f"checkpoint {model_dir_or_path} not found (expected "
                            f"{model_dir_or_path}.index)")
  return model_dir_or_path


def has_ema(checkpoint_path):
  names = tf.train.load_checkpoint(checkpoint_path).get_variable_to_shape_map()
  return any(n.endswith("/" + EMA_SUFFIX) for n in names)


def restore_generator(cfg: GANConfig, checkpoint_path, use_ema=False):
  """Builds the generator eagerly and loads the checkpoint's (or its EMA's) weights."""
  generator = make_generator(cfg)
  z = tf.zeros([1, cfg.z_dim])
  generator(z, tf.zeros([1], tf.int32) if cfg.num_classes else None)  # create variables
  reader = tf.train.load_checkpoint(checkpoint_path)
  available = reader.get_variable_to_shape_map()
  missing = []
  for var in generator.variables:
    key = f"{GENERATOR_SCOPE}/{var.name.split(':')[0]}"
    if use_ema and var.trainable:
      key = f"{key}/{EMA_SUFFIX}"
    if key not in available:
      missing.append(key)
      continue
    var.assign(reader.get_tensor(key))
  if missing:
    hint = " (was the run trained with --ema_decay > 0?)" if use_ema else ""
    raise ValueError(f"checkpoint {checkpoint_path} does not match the configured generator"
                     f"{hint}; missing {len(missing)} keys, e.g. {missing[:3]}. Check that "
                     "--image_size, --gf_dim, --attention_* and --num_classes match the run.")
  return generator


class ServingModule(tf.Module):
  """serving_default: noise [N, z] float32 (+ labels [N] int32) -> images [N, H, W, 3] in [-1, 1]."""

  def __init__(self, generator, cfg: GANConfig):
    super().__init__()
    self.generator = generator
    noise_spec = tf.TensorSpec([None, cfg.z_dim], tf.float32, name="noise")
    if cfg.num_classes:
      self.serve = tf.function(
          lambda noise, labels: {"images": self.generator(noise, labels, training=False)},
          input_signature=[noise_spec, tf.TensorSpec([None], tf.int32, name="labels")])
    else:
      self.serve = tf.function(
          lambda noise: {"images": self.generator(noise, None, training=False)},
          input_signature=[noise_spec])


def export_saved_model(cfg: GANConfig, checkpoint_path, export_root, use_ema=False):
  """Writes export_root/<step>/ (a SavedModel) atomically and returns its path."""
  generator = restore_generator(cfg, checkpoint_path, use_ema)
  module = ServingModule(generator, cfg)
  step = checkpoint_step(checkpoint_path)
  final = os.path.join(export_root, str(step))
  tmp = os.path.join(export_root, f".tmp-{step}-{os.getpid()}")
  shutil.rmtree(tmp, ignore_errors=True)
  tf.io.gfile.makedirs(export_root)
  tf.saved_model.save(module, tmp, signatures={"serving_default": module.serve})
  if os.path.exists(final):
    shutil.rmtree(final)
  os.replace(tmp, final)
  return final


def truncated_noise(num, z_dim, seed, truncation=None):
  """Standard normal noise; with `truncation` t, entries beyond +/- t are resampled."""
  rng = np.random.RandomState(seed)
  z = rng.standard_normal((num, z_dim))
  if truncation:
    if truncation <= 0:
      raise ValueError(f"truncation must be positive, got {truncation}")
    bad = np.abs(z) > truncation
    while bad.any():
      z[bad] = rng.standard_normal(bad.sum())
      bad = np.abs(z) > truncation
  return z.astype(np.float32)


def generate(generate_fn, num, z_dim, num_classes, seed, batch_size=100, truncation=None,
             labels=None):
  """Yields image batches [b, H, W, 3] in [-1, 1] from `generate_fn(noise, labels)`."""
  noise = truncated_noise(num, z_dim, seed, truncation)
  if labels is None:
    labels = (np.random.RandomState(seed + 1).randint(0, max(num_classes, 1), num)
              .astype(np.int32))
  for start in range(0, num, batch_size):
    z = noise[start:start + batch_size]
    y = labels[start:start + batch_size]
    yield np.asarray(generate_fn(tf.constant(z), tf.constant(y)))


def generator_fn_from_checkpoint(cfg, checkpoint_path, use_ema=False):
  generator = restore_generator(cfg, checkpoint_path, use_ema)
  conditional = bool(cfg.num_classes)
  call = tf.function(lambda z, y: generator(z, y if conditional else None, training=False))
  return call


def generator_fn_from_saved_model(path):
  loaded = tf.saved_model.load(path)
  serve = loaded.signatures["serving_default"]
  takes_labels = "labels" in serve.structured_input_signature[1]

  def call(z, y):
    out = serve(noise=z, labels=y) if takes_labels else serve(noise=z)
    return out["images"]
  call.loaded = loaded  # keep the SavedModel alive
  return call
