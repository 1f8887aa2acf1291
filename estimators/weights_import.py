"""--mode=import_weights: the authors' released files -> an ordinary run directory (issue #23).

The chosen model's importer (its ModelSpec's `read_release` / `import_weights`) reads the files;
this module, which names no model, does the rest:

  import_flags  at flag parsing, before any flag is validated: refuses a directory that already
                holds a run, picks the model (--model, else the one importer that accepts the
                files), and returns the flag values the files determine; a flag given with
                another value is an error naming both.
  write_run     the run: model.ckpt-<step> (+ `checkpoint`) with every variable the engines,
                eval, sample and export read, `imported.json` (each file's sha256, the release's
                facts, which source key filled which variable, what was left out and why) and
                run_config.json through run_dir.write_run_config, as training writes it.
                An importer whose files make no run (ImportResult.directory: AttnGAN's DAMSM
                alone) has written its own directory; only imported.json is added there.
"""
import hashlib
import os
from typing import Dict, Sequence, Tuple

import numpy as np
import tensorflow as tf

from estimators import run_dir, run_settings, train_from_import
from estimators.model_registry import ImportResult, ReleasedWeights, WeightsImportError
from estimators.models import get_model, names
from estimators.engines.optimizers import EMA_SUFFIX

IMPORT_MODE = "import_weights"
IMPORTED_JSON = train_from_import.IMPORTED_JSON
CHECKPOINT_NAME = "model.ckpt"  # as the estimator names its checkpoints


def importer_models() -> Tuple[str, ...]:
  return tuple(m for m in names() if get_model(m).has_importer)


def holds_run(model_dir: str) -> bool:
  return (os.path.exists(os.path.join(model_dir, run_settings.RUN_CONFIG))
          or run_settings.has_checkpoint(model_dir))


def _refuse_a_run(model_dir: str) -> None:
  if holds_run(model_dir):
    raise WeightsImportError(
        f"--model_dir={model_dir} already holds a run ({run_settings.RUN_CONFIG} or a "
        "checkpoint): released weights import into a new directory only. Give another "
        "--model_dir.")


def read_release(paths: Sequence[str], model=None) -> Tuple[str, ReleasedWeights]:
  """(model name, what its importer read). `model` None: the one importer accepting the files."""
  if not paths:
    raise WeightsImportError(f"--mode={IMPORT_MODE} needs --import_from=PATH[,PATH...]: the "
                             "released files (README 'Released weights')")
  missing = [p for p in paths if not (os.path.exists(p) or os.path.exists(p + ".index"))]
  if missing:
    raise WeightsImportError(f"--import_from: not found: {', '.join(missing)}")
  owners = importer_models()
  if model is not None:
    if model not in owners:
      raise WeightsImportError(
          f"--model={model} has no importer of released weights; models that have one: "
          f"{', '.join(owners) or 'none'}")
    return model, get_model(model).read_release(list(paths))
  accepted, refusals = [], []
  for name in owners:
    try:
      accepted.append((name, get_model(name).read_release(list(paths))))
    except WeightsImportError as e:
      refusals.append(f"--model={name}: {e}")
  if len(accepted) == 1:
    return accepted[0]
  if accepted:
    raise WeightsImportError("several importers accept these files ("
                             + ", ".join(n for n, _ in accepted) + "): give --model")
  raise WeightsImportError("no importer accepts --import_from=" + ",".join(paths) + ". "
                           + " ".join(refusals))


def import_flags(model_dir: str, paths: Sequence[str], given: Dict[str, object]):
  """The flag values an import supplies: {flag: value} of those not given (the files' values).

  Raises WeightsImportError: a run in model_dir, files no importer reads, or given flags that
  contradict the files (all listed, each with both values).
  """
  _refuse_a_run(model_dir)
  model, release = read_release(paths, given.get("model"))
  values = {"model": model, **release.flags}
  clashes = run_settings.conflicts(values, given, list(values))
  if clashes:
    listed = "; ".join(f"--{n}={v!r} given, the files have --{n}={was!r}"
                       for n, v, was in clashes)
    raise WeightsImportError(
        f"{listed} ({', '.join(release.files[:1])}). The released weights fix these: drop "
        f"{', '.join('--' + n for n, _, _ in clashes)} (the files' values are used).")
  return {k: v for k, v in values.items() if k not in given}


def expected_keys(cfg) -> Dict[str, Tuple[Tuple[str, ...], tuple]]:
  """{what: (accepted checkpoint keys, shape)} of every variable the engines and export read:
  'Generator/<var>' (+ '/ExponentialMovingAverage' of each trainable one with EMA on, of every
  one with --ema_variables=all) and
  'Discriminator/<var>' (export.checkpoint_key: keys may carry the network's name)."""
  networks = get_model(cfg.model).build_networks(cfg)
  wanted = {}
  for scope, net in (("Generator", networks["generator"]),
                     ("Discriminator", networks["discriminator"])):
    for var in net.variables:
      name = var.name.split(":")[0]
      averaged = var.trainable or cfg.ema_variables == "all"  # the step's EMA set (optimizers)
      suffixes = [""] + ([f"/{EMA_SUFFIX}"] if scope == "Generator" and cfg.ema_decay
                         and averaged else [])
      for suffix in suffixes:
        plain = f"{scope}/{name}{suffix}"
        wanted[plain] = ((plain, f"{scope}/{net.name}/{name}{suffix}"), tuple(var.shape))
  return wanted


def _check_complete(cfg, result: ImportResult) -> None:
  """Every variable a mode reads is in the result, with its shape, but those under a
  not_released prefix (training initialises them, estimators/train_from_import.py); nothing
  else is."""
  wanted = expected_keys(cfg)
  have = dict(result.variables)
  missing, shapes, used = [], [], set()
  for plain, (keys, shape) in wanted.items():
    key = next((k for k in keys if k in have), None)
    if key is None:
      if not plain.startswith(tuple(result.not_released)):
        missing.append(plain)
      continue
    used.add(key)
    if tuple(np.shape(have[key])) != shape:
      shapes.append(f"{key}: {tuple(np.shape(have[key]))} imported, {shape} built")
  extra = sorted(set(have) - used)
  if missing or shapes or extra:
    raise WeightsImportError(
        f"the {cfg.model} importer's checkpoint does not fit the network the flags build: "
        + "; ".join(filter(None, [
            f"missing {len(missing)}: {', '.join(missing)}" if missing else "",
            f"shapes: {', '.join(shapes)}" if shapes else "",
            f"not built: {', '.join(extra)}" if extra else ""])))


def sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _write_checkpoint(model_dir: str, variables, step: int) -> str:
  prefix = os.path.join(model_dir, f"{CHECKPOINT_NAME}-{step}")
  keys = sorted(variables)
  tensors = [tf.constant(np.asarray(variables[k], np.float32)) for k in keys]
  keys.append("global_step")
  tensors.append(tf.constant(step, tf.int64))
  tf.raw_ops.SaveV2(prefix=prefix, tensor_names=keys, shape_and_slices=[""] * len(keys),
                    tensors=tensors)
  return prefix


def write_run(cfg, paths: Sequence[str], argv=None) -> Dict[str, object]:
  """Imports `paths` into cfg.model_dir (which must hold no run) and returns imported.json."""
  _refuse_a_run(cfg.model_dir)
  spec = get_model(cfg.model)
  if not spec.has_importer:
    raise WeightsImportError(f"--model={cfg.model} has no importer of released weights; "
                             f"models that have one: {', '.join(importer_models()) or 'none'}")
  release = spec.read_release(list(paths))
  result = spec.import_weights(cfg, release)
  record = {
      "model": cfg.model,
      "import_from": list(paths),
      "files": [{"path": os.path.abspath(p), "bytes": os.path.getsize(p), "sha256": sha256(p)}
                for p in release.files],
      "release": dict(release.release),
      "directory": result.directory or cfg.model_dir,
      "checkpoint": None,
      "step": result.step,
      "variables": dict(sorted(result.sources.items())),
      "left_out": dict(sorted(result.left_out.items())),
      "not_released": dict(sorted(result.not_released.items())),
  }
  if result.directory:  # the importer wrote another kind of directory, no run (ImportResult)
    if result.variables:
      raise AssertionError("an ImportResult with a directory carries no run variables")
    latest = tf.train.latest_checkpoint(result.directory)
    record["checkpoint"] = os.path.basename(latest) if latest else None
    run_dir.atomic_write_json(os.path.join(result.directory, IMPORTED_JSON), record)
    return record
  _check_complete(cfg, result)
  os.makedirs(cfg.model_dir, exist_ok=True)
  prefix = _write_checkpoint(cfg.model_dir, result.variables, result.step)
  record["checkpoint"] = os.path.basename(prefix)
  run_dir.atomic_write_json(os.path.join(cfg.model_dir, IMPORTED_JSON), record)
  run_dir.write_run_config(cfg.model_dir, cfg.to_dict(), argv)
  # Last: the index that makes the checkpoint the run's latest (a kill before it leaves no run).
  run_dir.atomic_write_bytes(
      os.path.join(cfg.model_dir, "checkpoint"),
      (f'model_checkpoint_path: "{os.path.basename(prefix)}"\n'
       f'all_model_checkpoint_paths: "{os.path.basename(prefix)}"\n').encode())
  return record
