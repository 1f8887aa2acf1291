"""The modes behind run.py, as testable functions (TF-GAN's train_experiment style).

Evaluation itself (metrics of one checkpoint, the best checkpoint) is estimators.evaluation.

  run_train           estimator.train up to cfg.max_steps (resumes from the latest checkpoint)
  run_eval            quality metrics of one checkpoint or SavedModel -> metrics.jsonl, TensorBoard
  run_train_and_eval  alternate training chunks of eval_every_steps with evaluation
  run_export          SavedModel of the latest (or a given) checkpoint
  run_sample          N images to PNG from a checkpoint or SavedModel
  run_continuous_eval evaluate each new checkpoint of a model_dir as it appears
"""
import os

import numpy as np
import tensorflow as tf

from data import bad_records
from estimators import export, progress, run_dir, train_from_import
from estimators.config import GANConfig
from estimators.evaluation import (evaluated_steps, inception_wanted, load_classifier, run_eval,
                                   stackgan_score, use_ema)
from estimators.engines import cluster
from estimators.engines.build import build_estimator
from estimators.engines.input_fn import make_train_input_fn, prepare_run_data
from estimators.losses import NONFINITE_MARKER, NonFiniteLossError
from estimators.models import get_model


class NoTrainingDataError(ValueError):
  """Training read no batch: the training data yielded nothing (empty, or every record bad)."""


def _latest_step(cfg):
  latest = tf.train.latest_checkpoint(cfg.model_dir)
  return export.checkpoint_step(latest) if latest else 0


def run_train(cfg: GANConfig, max_steps=None, dataset_fn=None, log=print):
  """Trains to `max_steps` (default cfg.max_steps). NaN/Inf losses raise NonFiniteLossError;
  training data that yields nothing raises NoTrainingDataError.

  Python, NumPy and TF are seeded with cfg.seed first: Keras draws its unseeded initialisers'
  seeds from Python's RNG, so without this two runs with the same --seed start from different
  weights. An imported run's first training completes its checkpoint first
  (estimators/train_from_import.py: what the release did not hold starts fresh, `log` says what).
  """
  tf.keras.utils.set_random_seed(cfg.seed)
  if dataset_fn is None:
    prepare_run_data(cfg)
  if cluster.is_chief():
    train_from_import.complete_checkpoint(cfg, dataset_fn, log)
  else:
    train_from_import.wait_for_chief(cfg.model_dir)
  estimator = build_estimator(cfg)
  target = max_steps or cfg.max_steps
  before = _latest_step(cfg)
  hooks = progress.train_hooks(cfg)  # the console's progress (chief only; none in library use)
  try:
    input_fn = make_train_input_fn(cfg, dataset_fn)
    if cfg.distribution == "multi_worker":
      # The estimator trains a TF_CONFIG cluster only through train_and_evaluate (its
      # "independent worker" mode). The EvalSpec is required by the API and used only by an
      # 'evaluator' task, if the cluster has one: it reports the GAN losses on training data.
      tf.estimator.train_and_evaluate(
          estimator, tf.estimator.TrainSpec(input_fn, max_steps=target, hooks=hooks),
          tf.estimator.EvalSpec(input_fn, steps=1))
    else:
      estimator.train(input_fn, max_steps=target, hooks=hooks)
    # The chief writes the checkpoints; another worker may return before the chief's last one.
    if before < target and cluster.is_chief() and _latest_step(cfg) <= before:
      skipped = bad_records.LOG.total()
      raise NoTrainingDataError(
          f"training made no progress (step {before}): the training data of "
          f"--dataset={cfg.dataset} yielded no example"
          + (f"; all {skipped} records read were skipped as bad (see "
             f"{bad_records.REPORT_FILENAME})" if skipped else "") + ".")
  except tf.errors.InvalidArgumentError as e:
    if NONFINITE_MARKER not in str(e):
      raise
    last = tf.train.latest_checkpoint(cfg.model_dir)
    which = "generator" if "generator loss" in str(e) else "discriminator"
    raise NonFiniteLossError(
        f"the {which} loss became NaN or Inf; training stopped before applying that step. "
        f"The last good checkpoint is {last}. Check the input data for NaN/Inf, or lower "
        "--generator_lr/--discriminator_lr, then rerun to resume from it.") from None
  finally:
    for hook in hooks:
      hook.close()
    report_bad_records(cfg)
  return tf.train.latest_checkpoint(cfg.model_dir)


def report_bad_records(cfg: GANConfig):
  """Logs and writes what this process's data pipelines skipped so far, zero included.

  The chief writes bad_records.json; other workers of a multi-worker run read other shards and
  write bad_records.<task type>_<index>.json. Nothing is written into a run directory that does
  not exist (a run that failed before it started).
  """
  bad_records.log_summary()
  if not tf.io.gfile.isdir(cfg.model_dir):
    return None
  filename = bad_records.REPORT_FILENAME
  if not cluster.is_chief():
    filename = f"bad_records.{cluster.task_name()}.json"
  return bad_records.write_report(cfg.model_dir, filename=filename)


def _unevaluated_checkpoints(cfg):
  state = tf.train.get_checkpoint_state(cfg.model_dir)
  if state is None:
    return []
  done = evaluated_steps(cfg)
  pending = []
  for path in state.all_model_checkpoint_paths:
    if not tf.io.gfile.exists(path + ".index"):
      continue
    step = export.checkpoint_step(path)
    if step not in done and (step % cfg.eval_every_steps == 0 or step == cfg.max_steps):
      pending.append((step, path))
  return sorted(pending)


def run_train_and_eval(cfg: GANConfig, dataset_fn=None, log=print):
  """Alternates training chunks and evaluation; the untrained step-0 checkpoint is evaluated too.

  Resumable: a rerun trains on from the latest checkpoint and evaluates only checkpoints whose
  step is not yet in metrics.jsonl.
  """
  records = []
  # Load Inception before training, so an unreachable one fails in seconds, not after a chunk.
  classifier = load_classifier(cfg) if inception_wanted(cfg) else None
  stackgan_score(cfg)  # --is_classifier=stackgan_cub: its checkpoint too
  current = 0
  latest = tf.train.latest_checkpoint(cfg.model_dir)
  if latest:
    current = export.checkpoint_step(latest)
  while True:
    target = min(cfg.max_steps, (current // cfg.eval_every_steps + 1) * cfg.eval_every_steps)
    if current < cfg.max_steps:
      run_train(cfg, max_steps=target, dataset_fn=dataset_fn, log=log)
    for step, path in _unevaluated_checkpoints(cfg):
      record = run_eval(cfg, checkpoint=path, classifier=classifier)
      log(f"step {step}: " + ", ".join(f"{k}={v:.4g}" for k, v in record["metrics"].items()
                                       if v is not None))
      records.append(record)
    report_bad_records(cfg)  # with what evaluation's real images skipped
    current = export.checkpoint_step(tf.train.latest_checkpoint(cfg.model_dir))
    if current >= cfg.max_steps:
      return records


def run_continuous_eval(cfg: GANConfig, timeout_secs=None, log=print):
  """Evaluates every new checkpoint in model_dir until one at max_steps or a timeout.

  Checkpoints already in metrics.jsonl are skipped, so a restarted watcher does not repeat work.
  The classifier and the real statistics are loaded once.
  """
  classifier = load_classifier(cfg) if inception_wanted(cfg) else None
  stackgan_score(cfg)
  timeout = cfg.eval_timeout_secs if timeout_secs is None else timeout_secs
  records = []
  for path in tf.train.checkpoints_iterator(cfg.model_dir, min_interval_secs=1, timeout=timeout):
    step = export.checkpoint_step(path)
    if step not in evaluated_steps(cfg):
      record = run_eval(cfg, checkpoint=path, classifier=classifier)
      log(f"step {step}: " + ", ".join(f"{k}={v:.4g}" for k, v in record["metrics"].items()
                                       if v is not None))
      records.append(record)
      report_bad_records(cfg)  # the real images evaluation read may have skipped some
    if step >= cfg.max_steps:
      break
  return records


def run_export(cfg: GANConfig, checkpoint=None):
  ckpt = export.resolve_checkpoint(checkpoint or cfg.model_dir)
  return export.export_saved_model(cfg, ckpt, os.path.join(cfg.model_dir, "export"),
                                   use_ema=use_ema(cfg, ckpt))


def run_sample(cfg: GANConfig, num, out_dir=None, checkpoint=None, saved_model=None, seed=0,
               truncation=None, labels=None):
  """Writes `num` PNGs (and a grid) from a checkpoint (default: latest) or a SavedModel."""
  if saved_model:
    generate_fn, tag = export.generator_fn_from_saved_model(saved_model), "savedmodel"
  else:
    ckpt = export.resolve_checkpoint(checkpoint or cfg.model_dir)
    generate_fn = export.generator_fn_from_checkpoint(cfg, ckpt, use_ema(cfg, ckpt))
    tag = f"step{export.checkpoint_step(ckpt)}"
  out_dir = out_dir or os.path.join(cfg.model_dir, "samples", f"{tag}_seed{seed}")
  inputs = get_model(cfg.model).sample_inputs(cfg, num, seed, truncation=truncation,
                                              labels=labels)
  images = np.concatenate(list(progress.track(export.generate(generate_fn, inputs,
                                                               cfg.eval_batch_size),
                                              num, label=f"sample {tag}")))
  for i, img in enumerate(images):
    run_dir.write_png(os.path.join(out_dir, f"{i:06d}.png"), img)
  run_dir.write_png(os.path.join(out_dir, "grid.png"),
                    run_dir.grid(images[:100], min(10, len(images))))
  return out_dir, images
