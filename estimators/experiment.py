"""The modes behind run.py, as testable functions (TF-GAN's train_experiment style).

  run_train           estimator.train up to cfg.max_steps (resumes from the latest checkpoint)
  run_eval            quality metrics of one checkpoint or SavedModel -> metrics.jsonl, TensorBoard
  run_train_and_eval  alternate training chunks of eval_every_steps with evaluation
  run_export          SavedModel of the latest (or a given) checkpoint
  run_sample          N images to PNG from a checkpoint or SavedModel
"""
import os
import time

import numpy as np
import tensorflow as tf

from estimators import export, run_dir
from estimators.config import GANConfig
from estimators.gan_estimator import build_estimator, make_train_input_fn
from estimators.losses import NONFINITE_MARKER, NonFiniteLossError
from estimators.summaries import fixed_noise_and_labels

METRICS_FILE = "metrics.jsonl"


def run_train(cfg: GANConfig, max_steps=None, dataset_fn=None):
  """Trains to `max_steps` (default cfg.max_steps). NaN/Inf losses raise NonFiniteLossError."""
  estimator = build_estimator(cfg)
  target = max_steps or cfg.max_steps
  try:
    estimator.train(make_train_input_fn(cfg, dataset_fn), max_steps=target)
  except tf.errors.InvalidArgumentError as e:
    if NONFINITE_MARKER not in str(e):
      raise
    last = tf.train.latest_checkpoint(cfg.model_dir)
    which = "generator" if "generator loss" in str(e) else "discriminator"
    raise NonFiniteLossError(
        f"the {which} loss became NaN or Inf; training stopped before applying that step. "
        f"The last good checkpoint is {last}. Check the input data for NaN/Inf, or lower "
        "--generator_lr/--discriminator_lr, then rerun to resume from it.") from None
  return tf.train.latest_checkpoint(cfg.model_dir)


def _use_ema(cfg, checkpoint_path):
  return bool(cfg.ema_decay and cfg.use_ema_for_eval and export.has_ema(checkpoint_path))


def quality_metrics(cfg: GANConfig, image_batches):
  """(metrics, protocol) for the configured dataset."""
  if cfg.dataset == "digits":
    from eval.digits_quality import evaluate_digits  # pylint: disable=import-outside-toplevel
    return evaluate_digits(image_batches)
  raise NotImplementedError(
      f"no quality metric is wired for dataset {cfg.dataset!r} yet: Inception metrics need "
      "the evaluation issue's --inception_path support")


def write_sample_grid(cfg, generate_fn, step, tag="step"):
  noise, labels = fixed_noise_and_labels(cfg)
  images = np.asarray(generate_fn(tf.constant(noise), tf.constant(labels)))
  cols = cfg.num_classes if cfg.num_classes and len(images) % cfg.num_classes == 0 else 8
  path = os.path.join(cfg.model_dir, "samples", f"{tag}_{step:08d}.png")
  run_dir.write_png(path, run_dir.grid(images, cols))
  return path, images, cols


def run_eval(cfg: GANConfig, checkpoint=None, saved_model=None, seed=None):
  """Evaluates one checkpoint (default: latest) or SavedModel; appends to metrics.jsonl."""
  seed = cfg.seed if seed is None else seed
  if saved_model:
    generate_fn = export.generator_fn_from_saved_model(saved_model)
    step, source, ema = None, saved_model, None
  else:
    ckpt = export.resolve_checkpoint(checkpoint or cfg.model_dir)
    ema = _use_ema(cfg, ckpt)
    generate_fn = export.generator_fn_from_checkpoint(cfg, ckpt, ema)
    step, source = export.checkpoint_step(ckpt), ckpt
  t0 = time.time()
  batches = export.generate(generate_fn, cfg.num_eval_samples, cfg.z_dim, cfg.num_classes,
                            seed=seed + 1000, batch_size=cfg.eval_batch_size)
  metrics, protocol = quality_metrics(cfg, batches)
  protocol.update({"seed": seed + 1000, "ema": ema, "checkpoint_step": step, "source": source,
                   "truncation": None})
  record = {"step": step, "metrics": metrics, "protocol": protocol,
            "seconds": round(time.time() - t0, 2), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
  run_dir.append_jsonl(os.path.join(cfg.model_dir, METRICS_FILE), record)
  grid_path, images, cols = write_sample_grid(cfg, generate_fn, step or 0)
  writer = tf.summary.create_file_writer(os.path.join(cfg.model_dir, "eval"))
  with writer.as_default():
    for name, value in metrics.items():
      tf.summary.scalar(f"eval/{name}", value, step=step or 0)
    tf.summary.image("eval/fixed_noise_grid", run_dir.grid(images, cols)[None] * 0.5 + 0.5,
                     step=step or 0)
  writer.flush()
  record["sample_grid"] = grid_path
  return record


def evaluated_steps(cfg):
  return {r["step"] for r in run_dir.read_jsonl(os.path.join(cfg.model_dir, METRICS_FILE))}


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
  current = 0
  latest = tf.train.latest_checkpoint(cfg.model_dir)
  if latest:
    current = export.checkpoint_step(latest)
  while True:
    target = min(cfg.max_steps, (current // cfg.eval_every_steps + 1) * cfg.eval_every_steps)
    if current < cfg.max_steps:
      run_train(cfg, max_steps=target, dataset_fn=dataset_fn)
    for step, path in _unevaluated_checkpoints(cfg):
      record = run_eval(cfg, checkpoint=path)
      log(f"step {step}: " + ", ".join(f"{k}={v:.4g}" for k, v in record["metrics"].items()))
      records.append(record)
    current = export.checkpoint_step(tf.train.latest_checkpoint(cfg.model_dir))
    if current >= cfg.max_steps:
      return records


def run_export(cfg: GANConfig, checkpoint=None):
  ckpt = export.resolve_checkpoint(checkpoint or cfg.model_dir)
  return export.export_saved_model(cfg, ckpt, os.path.join(cfg.model_dir, "export"),
                                   use_ema=_use_ema(cfg, ckpt))


def run_sample(cfg: GANConfig, num, out_dir=None, checkpoint=None, saved_model=None, seed=0,
               truncation=None, labels=None):
  """Writes `num` PNGs (and a grid) from a checkpoint (default: latest) or a SavedModel."""
  if saved_model:
    generate_fn, tag = export.generator_fn_from_saved_model(saved_model), "savedmodel"
  else:
    ckpt = export.resolve_checkpoint(checkpoint or cfg.model_dir)
    generate_fn = export.generator_fn_from_checkpoint(cfg, ckpt, _use_ema(cfg, ckpt))
    tag = f"step{export.checkpoint_step(ckpt)}"
  out_dir = out_dir or os.path.join(cfg.model_dir, "samples", f"{tag}_seed{seed}")
  images = np.concatenate(list(export.generate(
      generate_fn, num, cfg.z_dim, cfg.num_classes, seed, cfg.eval_batch_size, truncation,
      labels)))
  for i, img in enumerate(images):
    run_dir.write_png(os.path.join(out_dir, f"{i:06d}.png"), img)
  run_dir.write_png(os.path.join(out_dir, "grid.png"),
                    run_dir.grid(images[:100], min(10, len(images))))
  return out_dir, images
