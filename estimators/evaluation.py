"""Evaluation of a generator: quality metrics of one checkpoint or SavedModel, the best checkpoint.

  quality_metrics   one streamed pass of generated batches through every metric of the dataset
  run_eval          metrics of a checkpoint/SavedModel -> metrics.jsonl, TensorBoard, sample grid
  keep_if_best      copy the best-FID (or digits_fid) checkpoint to model_dir/best_checkpoint/
"""
import functools
import os
import shutil
import time

import numpy as np
import tensorflow as tf

import data
from estimators import export, progress, run_dir
from estimators.config import GANConfig
from estimators.engines.input_fn import load_options, prepare_run_data
from estimators.models import get_model

METRICS_FILE = "metrics.jsonl"
# Datasets whose images are the bundled digits (32 px): scored with digits_fid / digits_score.
DIGITS_IMAGE_SETS = ("digits", "digits_captions")


def use_ema(cfg, checkpoint_path):
  return bool(cfg.ema_decay and cfg.use_ema_for_eval and export.has_ema(checkpoint_path))


def inception_wanted(cfg):
  """Inception metrics run for every dataset but digits, and for digits with --inception_path."""
  return cfg.dataset not in DIGITS_IMAGE_SETS or bool(cfg.inception_path)


def load_classifier(cfg):
  """The TF-GAN Inception classifier per cfg (fails in seconds when none is reachable)."""
  from eval.inception import load_inception  # pylint: disable=import-outside-toplevel
  return load_inception(cfg.inception_path, cfg.tfhub_cache_dir,
                        allow_download=cfg.inception_download, resize_method=cfg.inception_resize)


def stackgan_score(cfg):
  """--is_classifier=stackgan_cub: StackGAN's CUB Inception score accumulator, else None. The
  classifier is loaded once per checkpoint path (train_and_eval calls this before training, so a
  missing checkpoint fails in seconds)."""
  if cfg.is_classifier != "stackgan_cub":
    return None
  from eval import stackgan_inception  # pylint: disable=import-outside-toplevel
  return stackgan_inception.StackGANInceptionScore(
      _stackgan_classifier(cfg.stackgan_inception_checkpoint), splits=cfg.is_splits,
      seed=cfg.seed)


@functools.lru_cache(maxsize=1)
def _stackgan_classifier(checkpoint):
  from eval import stackgan_inception  # pylint: disable=import-outside-toplevel
  return stackgan_inception.load(checkpoint)


def _real_eval_dataset(cfg):
  """The real reference: the eval split in a fixed shuffled order (evaluate() takes a prefix)."""
  prepare_run_data(cfg)
  ds = data.load(cfg.dataset, data_dir=cfg.data_dir, split=cfg.eval_split,
                 image_size=cfg.image_size, **load_options(cfg))
  return ds.shuffle(10_000, seed=cfg.seed, reshuffle_each_iteration=False)


def _real_stats_cache_dir(cfg):
  if cfg.real_stats_cache_dir:
    return cfg.real_stats_cache_dir
  from eval.digits_classifier import default_cache_dir  # pylint: disable=import-outside-toplevel
  return os.path.join(default_cache_dir(), "real_stats")


def quality_metrics(cfg: GANConfig, image_batches, provenance, classifier=None):
  """(metrics, protocol, timing) of generated batches, streamed once through every metric.

  digits: digits_fid and digits_score; with an Inception classifier (any dataset but digits, or
  digits with --inception_path) also IS (TF-GAN's and 10-split), FID, KID, precision/recall;
  with --is_classifier=stackgan_cub also StackGAN's CUB Inception score (stackgan_cub_is_*).
  """
  digits = None
  if cfg.dataset in DIGITS_IMAGE_SETS:
    from eval.digits_quality import DigitsQuality  # pylint: disable=import-outside-toplevel
    digits = DigitsQuality()
  stackgan = stackgan_score(cfg)  # loaded first: a missing checkpoint fails before sampling

  def tee():
    for batch in image_batches:
      for extra in (digits, stackgan):
        if extra is not None:
          extra.update(batch)
      yield batch

  metrics, protocol, timing = {}, dict(provenance), {}
  if inception_wanted(cfg):
    from eval.evaluate import evaluate  # pylint: disable=import-outside-toplevel
    classifier = classifier or load_classifier(cfg)
    result = evaluate(
        tee(), _real_eval_dataset(cfg), classifier, num_samples=cfg.num_eval_samples,
        cache_key_parts={"dataset": cfg.dataset, "split": cfg.eval_split,
                         "data_dir": os.path.abspath(cfg.data_dir) if cfg.data_dir else None,
                         "image_size": cfg.image_size, "shuffle_seed": cfg.seed,
                         "shuffle_buffer": 10_000,
                         **({"data_options": dict(cfg.data_options)} if cfg.data_options else {})},
        provenance=provenance, num_real_samples=cfg.num_real_eval_samples,
        splits=cfg.is_splits, cache_dir=_real_stats_cache_dir(cfg),
        feature_subset_size=cfg.eval_feature_subset)
    metrics.update(result.metrics)
    protocol.update(result.protocol)
    timing.update(result.timing)
  else:
    for _ in tee():
      pass
  if stackgan is not None:
    stackgan_metrics, stackgan_protocol = stackgan.result()
    metrics.update(stackgan_metrics)
    protocol.update(stackgan_protocol)
  if digits is not None:
    digits_metrics, digits_protocol = digits.result()
    metrics.update(digits_metrics)
    protocol["digits"] = digits_protocol
    protocol.setdefault("num_generated", digits_protocol["num_generated"])
  return metrics, protocol, timing


def write_sample_grid(cfg, generate_fn, step, tag="step"):
  spec = get_model(cfg.model)
  inputs = {k: tf.constant(v) for k, v in spec.fixed_inputs(cfg).items()}
  images = np.asarray(generate_fn(inputs))
  cols = spec.grid_columns(cfg, len(images))
  path = os.path.join(cfg.model_dir, "samples", f"{tag}_{step:08d}.png")
  run_dir.write_png(path, run_dir.grid(images, cols))
  return path, images, cols


def _feeding(extra, inputs, batches, batch_size):
  """The image batches, each also given to the model's extra metrics with its input rows."""
  for i, images in enumerate(batches):
    rows = {k: v[i * batch_size:(i + 1) * batch_size] for k, v in inputs.items()}
    extra.update(rows, images)
    yield images


def run_eval(cfg: GANConfig, checkpoint=None, saved_model=None, seed=None, classifier=None):
  """Evaluates one checkpoint (default: latest) or SavedModel; appends to metrics.jsonl.

  The record: {step, time, metrics, protocol, timing, source}; the same values go to TensorBoard
  under eval/ (with the protocol as text) and a fixed-noise grid to samples/.
  """
  from eval import metrics_log  # pylint: disable=import-outside-toplevel
  seed = cfg.seed if seed is None else seed
  if saved_model:
    generate_fn = export.generator_fn_from_saved_model(saved_model)
    step, source, ema = None, saved_model, None
  else:
    ckpt = export.resolve_checkpoint(checkpoint or cfg.model_dir)
    ema = use_ema(cfg, ckpt)
    generate_fn = export.generator_fn_from_checkpoint(cfg, ckpt, ema)
    step, source = export.checkpoint_step(ckpt), ckpt
  t0 = time.time()
  sample_seed = seed + 1000  # evaluation noise, apart from the training seed's streams
  inputs = get_model(cfg.model).sample_inputs(cfg, cfg.num_eval_samples, seed=sample_seed)
  batches = progress.track(export.generate(generate_fn, inputs, batch_size=cfg.eval_batch_size),
                           cfg.num_eval_samples,
                           label="eval" if step is None else f"eval step {step}")
  extra = get_model(cfg.model).extra_metrics(cfg)
  if extra is not None:
    batches = _feeding(extra, inputs, batches, cfg.eval_batch_size)
  provenance = {"seed": sample_seed, "checkpoint_step": step, "ema_weights": ema,
                "source": source, "truncation": None, "model": cfg.model}
  metrics, protocol, timing = quality_metrics(cfg, batches, provenance, classifier)
  if extra is not None:
    extra_metrics, extra_protocol = extra.result()
    metrics.update(extra_metrics)
    protocol.update(extra_protocol)
  timing["total_seconds"] = round(time.time() - t0, 2)
  record = {"step": step, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "metrics": metrics, "protocol": protocol, "timing": timing}
  metrics_log.append_jsonl(os.path.join(cfg.model_dir, METRICS_FILE), record)
  metrics_log.write_tensorboard(os.path.join(cfg.model_dir, "eval"), record)
  grid_path, images, cols = write_sample_grid(cfg, generate_fn, step or 0)
  writer = tf.summary.create_file_writer(os.path.join(cfg.model_dir, "eval"))
  with writer.as_default():
    tf.summary.image("eval/fixed_noise_grid", run_dir.grid(images, cols)[None] * 0.5 + 0.5,
                     step=step or 0)
  writer.close()
  record["sample_grid"] = grid_path
  if step is not None:
    keep_if_best(cfg, source, record)
  return record


def best_metric_name(metrics):
  """FID when Inception metrics were computed, else digits_fid (both: lower is better)."""
  return "fid" if "fid" in metrics else "digits_fid"


BEST_DIR = "best_checkpoint"


def keep_if_best(cfg, checkpoint_path, record):
  """Copies the checkpoint to model_dir/best_checkpoint/ when its FID is the best so far.

  The copy is assembled in a temporary directory and renamed into place, so the best checkpoint
  survives keep_checkpoint_max pruning and a crash never leaves it half-copied.
  """
  from eval import metrics_log  # pylint: disable=import-outside-toplevel
  name = best_metric_name(record["metrics"])
  best = metrics_log.best_record(os.path.join(cfg.model_dir, METRICS_FILE), name)
  if best is None or best["step"] != record["step"]:
    return None
  final = os.path.join(cfg.model_dir, BEST_DIR)
  tmp = f"{final}.tmp-{os.getpid()}"
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  for path in tf.io.gfile.glob(checkpoint_path + ".*"):
    if not path.endswith(".meta"):
      shutil.copy2(path, tmp)
  prefix = os.path.basename(checkpoint_path)
  tf.compat.v1.train.update_checkpoint_state(tmp, os.path.join(final, prefix),
                                   all_model_checkpoint_paths=[os.path.join(final, prefix)])
  run_dir.atomic_write_json(os.path.join(tmp, "best.json"),
                            {"metric": name, "value": record["metrics"][name],
                             "step": record["step"], "checkpoint": prefix})
  old = f"{final}.old-{os.getpid()}"
  if os.path.exists(final):
    os.replace(final, old)
  os.replace(tmp, final)
  shutil.rmtree(old, ignore_errors=True)
  return final


def evaluated_steps(cfg):
  return {r["step"] for r in run_dir.read_jsonl(os.path.join(cfg.model_dir, METRICS_FILE))}
