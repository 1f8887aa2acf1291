"""Generator out of the estimator: eager restore from a checkpoint, SavedModel export, sampling.

What the generator takes and which output is the image are the model's (its ModelSpec): export
serves `serving_signature` -> {'images'}, and sampling feeds `sample_inputs`.

The estimator's checkpoint keys are the Keras variable names under the 'Generator/' scope, so an
eagerly built generator maps onto them one to one; with EMA, trainable weights are read from
their `/ExponentialMovingAverage` shadows (and so are other variables that have one: --ema_variables=all). Any missing key is an error (never a silent partial
restore). Exports are written to a temporary directory and renamed into place, so a crash never
leaves a half-written SavedModel under its final name.
"""
import os
import shutil

import numpy as np
import tensorflow as tf

from estimators import run_dir
from estimators.config import GANConfig
from estimators.models import get_model
from estimators.networks import make_generator
from estimators.engines.optimizers import EMA_SUFFIX

GENERATOR_SCOPE = "Generator"


def checkpoint_step(checkpoint_path):
  return int(tf.train.load_checkpoint(checkpoint_path).get_tensor("global_step"))


resolve_checkpoint = run_dir.resolve_checkpoint  # where every mode finds its checkpoint


def has_ema(checkpoint_path):
  names = tf.train.load_checkpoint(checkpoint_path).get_variable_to_shape_map()
  return any(n.endswith("/" + EMA_SUFFIX) for n in names)


def checkpoint_key(generator, var, available, ema=False):
  """The estimator checkpoint's key of an eagerly built generator's variable.

  In the estimator graph every variable sits under TF-GAN's 'Generator/' scope. A subclassed
  Keras model names its variables '<model name>/...' eagerly too; a Sequential or functional
  model does so only in a graph, so the key may carry the model's name where the eager variable
  does not.
  """
  name = var.name.split(":")[0]
  suffix = f"/{EMA_SUFFIX}" if ema else ""
  plain = f"{GENERATOR_SCOPE}/{name}{suffix}"
  prefixed = f"{GENERATOR_SCOPE}/{generator.name}/{name}{suffix}"
  if plain not in available and prefixed in available:
    return prefixed
  return plain


def restore_generator(cfg: GANConfig, checkpoint_path, use_ema=False):
  """Builds the generator eagerly and loads the checkpoint's (or its EMA's) weights."""
  spec = get_model(cfg.model)
  generator = make_generator(cfg)
  inputs = {k: tf.constant(v) for k, v in spec.build_inputs(cfg, 1).items()}
  spec.generate(cfg, generator, inputs, training=False)  # create variables
  reader = tf.train.load_checkpoint(checkpoint_path)
  available = reader.get_variable_to_shape_map()
  missing = []
  for var in generator.variables:
    # With EMA on: the shadow of every trainable weight, and of the other variables the run
    # averaged too (--ema_variables=all: BN moving statistics).
    ema = use_ema and (var.trainable or checkpoint_key(generator, var, available, True)
                       in available)
    key = checkpoint_key(generator, var, available, ema)
    if key not in available:
      missing.append(key)
      continue
    var.assign(reader.get_tensor(key))
  if missing:
    hint = " (was the run trained with --ema_decay > 0?)" if use_ema else ""
    raise ValueError(f"checkpoint {checkpoint_path} does not match the configured generator"
                     f"{hint}; missing {len(missing)} keys, e.g. {missing[:3]}. Check that "
                     f"--image_size, --dataset and the {cfg.model} hyperparameters match the run "
                     "(its run_config.json lists them).")
  return generator


class ServingModule(tf.Module):
  """serving_default: the model's serving inputs (SAGAN: noise [N, z] float32 (+ labels [N]
  int32)) -> {'images': [N, H, W, 3] float32 in [-1, 1]}."""

  def __init__(self, generator, cfg: GANConfig):
    super().__init__()
    self.generator = generator
    spec = get_model(cfg.model)
    signature = spec.serving_signature(cfg)
    names = list(signature)

    def serve(*args):
      inputs = dict(zip(names, args))
      return spec.serving_outputs(cfg, spec.generate(cfg, self.generator, inputs, training=False))
    self.serve = tf.function(serve, input_signature=list(signature.values()))
    self.extra_signatures = spec.extra_signatures(cfg, generator)  # tracked: saved with it


def export_saved_model(cfg: GANConfig, checkpoint_path, export_root, use_ema=False):
  """Writes export_root/<step>/ (a SavedModel) atomically and returns its path."""
  generator = restore_generator(cfg, checkpoint_path, use_ema)
  module = ServingModule(generator, cfg)
  step = checkpoint_step(checkpoint_path)
  final = os.path.join(export_root, str(step))
  tmp = os.path.join(export_root, f".tmp-{step}-{os.getpid()}")
  old = os.path.join(export_root, f".old-{step}-{os.getpid()}")
  shutil.rmtree(tmp, ignore_errors=True)
  tf.io.gfile.makedirs(export_root)
  try:
    tf.saved_model.save(module, tmp, signatures={"serving_default": module.serve,
                                                 **module.extra_signatures})
    notes = get_model(cfg.model).serving_notes(cfg)
    if notes:
      with open(os.path.join(tmp, "serving_notes.txt"), "w", encoding="utf-8") as f:
        f.write(notes.rstrip() + "\n")
    # A rename cannot replace a non-empty directory: move the previous export aside first (never
    # delete it in place, where a crash would leave it half-deleted), then rename the new one in.
    if os.path.exists(final):
      os.replace(final, old)
    os.replace(tmp, final)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    if os.path.exists(old) and not os.path.exists(final):
      os.replace(old, final)  # the previous export back in place
    raise
  shutil.rmtree(old, ignore_errors=True)
  return final


def generate(generate_fn, inputs, batch_size=100):
  """Yields image batches [b, H, W, 3] in [-1, 1] from `generate_fn(inputs)`, `inputs` a dict of
  numpy arrays of N rows (a ModelSpec's sample_inputs), taken batch_size rows at a time."""
  num = len(next(iter(inputs.values())))
  for start in range(0, num, batch_size):
    batch = {k: tf.constant(v[start:start + batch_size]) for k, v in inputs.items()}
    yield np.asarray(generate_fn(batch))


def generator_fn_from_checkpoint(cfg, checkpoint_path, use_ema=False):
  """fn(inputs dict) -> images, the restored generator in inference mode."""
  spec = get_model(cfg.model)
  generator = restore_generator(cfg, checkpoint_path, use_ema)
  return tf.function(
      lambda inputs: spec.images(spec.generate(cfg, generator, inputs, training=False)))


def generator_fn_from_saved_model(path):
  """fn(inputs dict) -> images through a SavedModel's serving_default. Inputs it does not take
  are left out (labels for an unconditional model); one it takes that `inputs` lacks is an
  error."""
  loaded = tf.saved_model.load(path)
  serve = loaded.signatures["serving_default"]
  takes = set(serve.structured_input_signature[1])

  def call(inputs):
    missing = takes - set(inputs)
    if missing:
      raise ValueError(f"SavedModel {path} takes {sorted(takes)}; missing {sorted(missing)}")
    return serve(**{k: v for k, v in inputs.items() if k in takes})["images"]
  call.loaded = loaded  # keep the SavedModel alive
  return call
