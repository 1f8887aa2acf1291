"""--mode=invert on a run directory (SAGAN, YLG-SAGAN): the networks restored from a checkpoint,
the inversion of estimators/models/sagan_inversion.py run by its three methods, and the outputs
(inversion.json, the images, every restart, the saliency of each head drawn over the target).
"""
import dataclasses
import json
import os
import time

import numpy as np
import tensorflow as tf

from estimators import run_dir, summaries
from estimators.models.sagan_inversion import (
    METHODS, RESULT_FILE, InversionInputError, InversionOptions, InversionSettings, digits_image,
    image_scores, invert, read_image, real_reference, resolve_settings, saliency,
    truncated_starts)

# This module is imported by the model module (sagan.py), which the model package imports, so it
# restores the networks itself: estimators.export / evaluation import that package (a cycle).
# Finding the checkpoint is shared with every mode (estimators.run_dir.resolve_checkpoint).
SCOPES = {"generator": "Generator", "discriminator": "Discriminator"}  # TF-GAN's scopes


latest_checkpoint = run_dir.resolve_checkpoint


def _ema_wanted(cfg, available):
  """The EMA generator when the run keeps one and evaluates with it (evaluation.use_ema)."""
  from estimators.engines.optimizers import EMA_SUFFIX  # pylint: disable=import-outside-toplevel
  return bool(cfg.ema_decay and cfg.use_ema_for_eval
              and any(n.endswith("/" + EMA_SUFFIX) for n in available))


def inference_config(cfg):
  """cfg with D's spectral-norm u vectors frozen outside training: a run trained with the
  official-D quirk --sn_update_in_eval would otherwise refresh them at every inversion step."""
  if not getattr(cfg.hparams, "sn_update_in_eval", False):
    return cfg
  return dataclasses.replace(cfg, hparams=dataclasses.replace(cfg.hparams,
                                                              sn_update_in_eval=False))


def restore_networks(cfg, spec, checkpoint_path):
  """(generator, discriminator, used EMA): built eagerly, the checkpoint's weights loaded (the
  generator's trainable ones from their EMA shadows when the run evaluates with EMA)."""
  from estimators.engines.optimizers import EMA_SUFFIX  # pylint: disable=import-outside-toplevel
  reader = tf.train.load_checkpoint(checkpoint_path)
  available = reader.get_variable_to_shape_map()
  ema = _ema_wanted(cfg, available)
  generator, discriminator = spec.make_generator(cfg), spec.make_discriminator(cfg)
  inputs = {k: tf.constant(v) for k, v in spec.sample_inputs(cfg, 1, seed=0).items()}
  outputs = spec.generate(cfg, generator, inputs, training=False)  # create the variables
  spec.discriminate(cfg, discriminator, outputs, inputs, training=False)
  for kind, network in (("generator", generator), ("discriminator", discriminator)):
    missing = []
    for var in network.variables:
      name = var.name.split(":")[0]
      suffix = f"/{EMA_SUFFIX}" if ema and kind == "generator" and var.trainable else ""
      key = f"{SCOPES[kind]}/{name}{suffix}"
      if key not in available:  # a functional/Sequential model is named only in the graph
        key = f"{SCOPES[kind]}/{network.name}/{name}{suffix}"
      if key not in available:
        missing.append(key)
        continue
      var.assign(reader.get_tensor(key))
    if missing:
      raise ValueError(f"checkpoint {checkpoint_path} does not match the configured {kind}; "
                       f"missing {len(missing)} keys, e.g. {missing[:3]}. Check that "
                       f"--image_size, --dataset and the {cfg.model} hyperparameters match the "
                       "run (its run_config.json lists them).")
  return generator, discriminator, ema


def _rounded(array, digits=6):
  return [float(f"{v:.{digits}g}") for v in np.asarray(array).ravel()]


def _check_inputs(cfg, spec, options):
  """The class to invert with (None for unconditional runs), or InversionInputError."""
  if cfg.hparams.attention_type != "self_attention":
    raise InversionInputError("--mode=invert weights D0 by the discriminator's attention; this "
                              f"run has --attention_type={cfg.hparams.attention_type}")
  num_classes = spec.num_classes(cfg)
  label = options.invert_label
  if num_classes and label is None:
    raise InversionInputError("--mode=invert on a class-conditional run needs "
                              f"--invert_label=CLASS (0..{num_classes - 1})")
  if num_classes and label >= num_classes:
    raise InversionInputError(f"--invert_label={label} is not a class of {cfg.dataset} "
                              f"(0..{num_classes - 1})")
  if not num_classes and label is not None:
    raise InversionInputError(f"--invert_label: {cfg.dataset} has no classes (the run is "
                              "unconditional)")
  return label if num_classes else None


def run_inversion(cfg, options: InversionOptions, checkpoint=None, seed=0, out_dir=None):
  """--mode=invert: inverts options.invert_image with both methods from one checkpoint of
  cfg's run and writes the outputs (atomically) under out_dir; returns out_dir."""
  # pylint: disable=import-outside-toplevel
  from absl import logging
  from estimators import progress
  from estimators.model_registry import get_model
  # pylint: enable=import-outside-toplevel
  spec = get_model(cfg.model)
  from_digits = digits_image(options.invert_image, cfg.image_size)
  if from_digits is not None:
    if cfg.dataset != "digits":
      raise InversionInputError(f"--invert_image={options.invert_image} is a digits image; this "
                                f"run's --dataset is {cfg.dataset}")
    if options.invert_label is None:  # the test image's own class
      options = dataclasses.replace(options, invert_label=from_digits[1])
  label = _check_inputs(cfg, spec, options)
  settings = resolve_settings(options, spec.heads(cfg.hparams))
  target = from_digits[0] if from_digits is not None else read_image(
      options.invert_image, cfg.image_size, settings.preprocess)  # all checked before any network
  ckpt = latest_checkpoint(checkpoint or cfg.model_dir)
  reader = tf.train.load_checkpoint(ckpt)
  step = int(reader.get_tensor("global_step"))
  stem = (options.invert_image.replace(":", "_") if from_digits is not None
          else os.path.splitext(os.path.basename(options.invert_image))[0])
  tag = "" if label is None else f"_label{label}"
  out_dir = out_dir or os.path.join(cfg.model_dir, "inversions",
                                    f"{stem}{tag}_step{step}_{settings.recipe}_seed{seed}")
  record_settings = {
      **dataclasses.asdict(settings), "image": (options.invert_image if from_digits is not None
                                                else os.path.abspath(options.invert_image)),
      "label": label, "checkpoint": ckpt, "step": step, "seed": seed, "model": cfg.model,
      "image_size": cfg.image_size, "bn_inference": cfg.hparams.bn_inference,
      "ema_generator": _ema_wanted(cfg, reader.get_variable_to_shape_map())}
  result_path = os.path.join(out_dir, RESULT_FILE)
  if os.path.exists(result_path):
    with open(result_path, encoding="utf-8") as f:
      if json.load(f).get("settings") == json.loads(json.dumps(record_settings, default=str)):
        print(f"inversion already done: {out_dir}")
        return out_dir

  generator, discriminator, _ = restore_networks(inference_config(cfg), spec, ckpt)
  if cfg.hparams.bn_inference == "batch" and settings.restarts > 1:
    logging.warning("--bn_inference=batch: G normalises with the statistics of the %d restarts "
                    "optimised together, so each inversion depends on the others (as in the "
                    "official script).", settings.restarts)
  labels = tf.fill([settings.restarts], label or 0)  # ignored by unconditional runs

  def generate(z):
    return spec.images(spec.generate(cfg, generator, {"noise": z, "labels": labels},
                                     training=False))

  def d0(images, training):
    return discriminator.attention_features(images, training=training,
                                            return_attention=False)[0]

  def d0_attention(images, training):
    return discriminator.attention_features(images, training=training)

  # Every head's saliency from the real image's attention (inference mode, before any descent),
  # on D0's grid: written out; the losses take the chosen heads' from `reference`.
  every_head = dataclasses.replace(settings, heads=tuple(range(spec.heads(cfg.hparams))))
  _, grids, sal = (t.numpy() for t in real_reference(d0_attention, target[None],
                                                     every_head)(False))
  reference = real_reference(d0_attention, target[None], settings)

  z0 = truncated_starts(settings.restarts, spec.z_dim(cfg), seed)
  started = time.time()
  results = invert(generate, d0, target, reference, z0, settings,
                   lambda method, steps: progress.track(
                       steps, settings.steps, f"invert ({method} loss)", unit="steps",
                       count=lambda _: 1))
  record = {"settings": record_settings, "seconds": round(time.time() - started, 2)}
  _write_outputs(out_dir, record, target, generate, z0, results, grids, sal, settings)
  att, pix, wpx = (record["methods"][m] for m in ("attention", "pixel", "weighted_pixel"))
  print(f"inversion ({settings.recipe}): PSNR attention {att['psnr']:.2f} dB / pixel "
        f"{pix['psnr']:.2f} dB / weighted pixel {wpx['psnr']:.2f} dB, SSIM {att['ssim']:.3f} / "
        f"{pix['ssim']:.3f} / {wpx['ssim']:.3f}; written to {out_dir}")
  return out_dir


def method_sources(settings: InversionSettings):
  """{method: where its loss comes from}: the official script only optimises eq. 3 (and prints
  ||G(z) - x||, inverse_image.py:49, 171); under its recipe the other two are this project's
  extrapolation of the script's settings."""
  paper = {"attention": "YLG eq. 3 (sec. 5, app. 9.1.1 Solution 1)",
           "pixel": "YLG eq. 1 (sec. 5; the standard method it compares with)",
           "weighted_pixel": "YLG eq. 4 (app. 9.4.1, Fig. 11c)"}
  if settings.recipe == "paper":
    return paper
  extrapolated = ("this project's extrapolation: ylg/inverse_image.py optimises eq. 3 only and "
                  "prints ||G(z) - x|| (lines 49, 171); here {} runs with the script's settings")
  return {"attention": "ylg/inverse_image.py (eq. 3 as the script computes it)",
          "pixel": extrapolated.format("eq. 1"), "weighted_pixel": extrapolated.format("eq. 4")}


def _write_outputs(out_dir, record, target, generate, z0, results, grids, sal, settings):
  """The PNGs, then inversion.json (last: its presence means the inversion is complete)."""
  start_images = generate(tf.constant(z0)).numpy()  # [R, S, S, 3]
  record["methods"], images = {}, {}
  sources = method_sources(settings)
  for method, res in results.items():
    finals = generate(tf.constant(res["z"])).numpy()  # [R, S, S, 3]
    psnr, ssim = image_scores(finals, target)
    best = res["best"]
    images[method] = finals[best]
    run_dir.write_png(os.path.join(out_dir, f"restarts_{method}.png"),
                      run_dir.grid(finals, min(8, len(finals))))
    record["methods"][method] = {
        "equation": METHODS[method], "source": sources[method],
        "best_restart": best, "final_losses": _rounded(res["final_losses"]),
        "final_pixel_rms": _rounded(res["final_pixel_rms"]),
        "psnr": float(psnr[best]), "ssim": float(ssim[best]),
        "psnr_per_restart": _rounded(psnr), "ssim_per_restart": _rounded(ssim),
        "losses_per_step": [_rounded(row) for row in res["losses"]],
        "pixel_rms_per_step": [_rounded(row) for row in res["pixel_rms"]]}
  start_psnr, start_ssim = image_scores(start_images, target)
  record["start"] = {"psnr_per_restart": _rounded(start_psnr),
                     "ssim_per_restart": _rounded(start_ssim)}
  record["saliency_heads"] = {
      str(h): {"used": h in settings.heads, "max": float(grids[h].max()),
               "sum": float(sal[h].sum())} for h in range(grids.shape[0])}
  run_dir.write_png(os.path.join(out_dir, "original.png"), target)
  for method in METHODS:
    run_dir.write_png(os.path.join(out_dir, f"inversion_{method}.png"), images[method])
  start = start_images[results["attention"]["best"]]
  run_dir.write_png(os.path.join(out_dir, "comparison.png"), run_dir.grid(
      np.stack([target, start, images["pixel"], images["weighted_pixel"],
                images["attention"]]), 5))
  tiles = summaries.attention_tiles(np.repeat(target[None], grids.shape[0], axis=0),
                                    grids.reshape(grids.shape[0], -1),
                                    summaries.tile_size(target.shape[0])).numpy()
  for h, tile in enumerate(tiles):  # the saliency drawn as every attention map of the suite is
    run_dir.write_png(os.path.join(out_dir, f"saliency_head{h}.png"),
                      np.round(tile * 255.0).astype(np.uint8))
  run_dir.atomic_write_json(os.path.join(out_dir, RESULT_FILE), record)


def invert_mode(cfg, options):
  """run.py's --mode=invert: options holds the run-wide mode flags and 'mode_options' (an
  InversionOptions). A bad input (image, label, heads) ends the run with 'error: ...'."""
  try:
    return run_inversion(cfg, options["mode_options"], checkpoint=options.get("checkpoint"),
                         seed=options.get("seed") or 0, out_dir=options.get("sample_dir"))
  except InversionInputError as e:
    raise SystemExit(f"error: {e}") from e
