"""A run directory's saved settings as the flags of a rerun (README "The run directory").

Every mode but a fresh train reads <model_dir>/run_config.json (written by run.py before training)
and takes the run's settings from it, so `python run.py --mode=sample --model_dir=DIR` needs no
flagfile. The flags fall in three kinds:

  network    what the checkpoint's variables are and how they were trained: --model, the
             model's hyperparameters, --dataset (classes, vocabulary; a run setting for a model
             whose variables do not depend on it, ModelSpec.variables_depend_on_dataset),
             --image_size, --ema_decay
             (whether EMA variables exist). They never change: a given value that differs from
             the saved one is an error naming the flag and both values, in every mode (a train
             rerun too). Hyperparameters declared `hparam(..., may_change=True)` (an evaluation or
             sampling option such as --bn_inference, a location such as --damsm_dir) are run
             settings instead.
  run        everything else run_config.json records (data, optimisation, cadence, engines,
             devices, evaluation): the saved value unless the flag is given. A train rerun may
             change them (run_dir.write_run_config keeps the earlier record as run_config.<n>.json).
             --data_options given on a rerun are added to the saved options (key by key).
  invocation what run_config.json does not record: --mode, --model_dir, --checkpoint,
             --saved_model, the sample / figure / walk / inversion flags, the model's mode options,
             --dry_run, logging. Given or default, as always.

"Given" means on the command line or in a flagfile (absl's `Flag.present`); a default is not
given. Nothing here reads absl's global flags: run.py passes the values.
"""
import dataclasses
import json
import os
from typing import Dict, Iterable, List, Optional, Tuple

from estimators.models import get_model, names

RUN_CONFIG = "run_config.json"
# Run settings that decide which variables a checkpoint holds (with the model's hyperparameters).
NETWORK_FLAGS = ("model", "dataset", "image_size", "ema_decay")
# The saved settings of the run's dataset, not taken when a rerun gives another --dataset.
DATASET_FLAGS = ("data_dir", "data_options", "max_words", "eval_split")
# Recorded in run_config.json but never taken from it.
NOT_TAKEN = ("model_dir",)


class RunSettingsError(ValueError):
  """A rerun's flags contradict its run directory, or the directory holds no run."""


def _read_text(path: str) -> Optional[str]:
  if "://" in path:  # gs://, s3://, ...: the filesystem TensorFlow reads the run with
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    if not tf.io.gfile.exists(path):
      return None
    with tf.io.gfile.GFile(path) as f:
      return f.read()
  if not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as f:
    return f.read()


def read_run_config(model_dir: str) -> Optional[dict]:
  """The run_config.json record of `model_dir`, or None when there is none."""
  path = os.path.join(model_dir, RUN_CONFIG)
  text = _read_text(path)
  if text is None:
    return None
  try:
    record = json.loads(text)
  except json.JSONDecodeError as e:
    raise RunSettingsError(f"{path} is not valid JSON ({e}); restore it from run_config.<n>.json "
                           "or pass every flag of the run again with a fresh --model_dir") from None
  if not isinstance(record.get("config"), dict) or "name" not in record["config"].get("model", {}):
    raise RunSettingsError(f"{path} holds no run configuration (no config.model.name)")
  return record


def has_checkpoint(model_dir: str) -> bool:
  """Whether `model_dir` holds a checkpoint (TensorFlow's 'checkpoint' index file)."""
  return _read_text(os.path.join(model_dir, "checkpoint")) is not None


def _option_text(value) -> str:
  """A data option value as data.registry.parse_options reads it back."""
  if isinstance(value, bool):
    return "true" if value else "false"
  return "none" if value is None else str(value)


def saved_flag_values(record: dict, flag_names: Iterable[str]) -> Dict[str, object]:
  """{flag name: value} of the run a run_config.json record describes, for the flags in
  `flag_names` (the model's name and hyperparameters included)."""
  names = set(flag_names)
  config = record["config"]
  values = {"model": config["model"]["name"]}
  values.update({k: v for k, v in config["model"].get("hparams", {}).items() if k in names})
  for key, value in config.items():
    if key in names and key not in NOT_TAKEN and key != "model":
      values[key] = value
  if "data_options" in values:
    values["data_options"] = [f"{k}={_option_text(v)}" for k, v in values["data_options"]]
  return values


def network_flag_names(model: str) -> Tuple[str, ...]:
  """The flags that cannot change for a run of `model`: NETWORK_FLAGS (--dataset only when the
  model's variables depend on it, ModelSpec.variables_depend_on_dataset) and the model's
  hyperparameters but those declared `hparam(..., may_change=True)`."""
  if model not in names():
    raise RunSettingsError(f"the run was trained with --model={model}, which this version does "
                           f"not have (models: {', '.join(names())})")
  spec = get_model(model)
  fixed = tuple(n for n in NETWORK_FLAGS
                if n != "dataset" or spec.variables_depend_on_dataset)
  return fixed + tuple(f.name for f in dataclasses.fields(get_model(model).hparams_class)
                               if not f.metadata.get("may_change"))


def _same(given, saved) -> bool:
  if isinstance(given, (list, tuple)) and isinstance(saved, (list, tuple)):
    return list(given) == list(saved)
  if isinstance(given, float) or isinstance(saved, float):
    try:
      return float(given) == float(saved)
    except (TypeError, ValueError):
      return False
  return given == saved


def conflicts(saved: Dict[str, object], given: Dict[str, object],
              fixed: Iterable[str]) -> List[Tuple[str, object, object]]:
  """(flag, given value, saved value) for every fixed flag given with another value."""
  return [(name, given[name], saved[name]) for name in fixed
          if name in given and name in saved and not _same(given[name], saved[name])]


def no_run_message(model_dir: str, mode: str) -> str:
  return (f"checkpoint and run settings not found: --model_dir={model_dir} holds no run (no "
          f"{RUN_CONFIG}, no checkpoint), so --mode={mode} has nothing to work on. Train one "
          f"there first (python run.py --mode=train --model_dir={model_dir} [flags]) or point "
          "--model_dir at a run directory.")


def rerun_flags(model_dir: str, mode: str, given: Dict[str, object], flag_names: Iterable[str],
                *, may_start: bool, needs_run: bool = True) -> Dict[str, object]:
  """The flag values a run in `model_dir` supplies to this invocation: {flag: value}, the saved
  value of every recorded flag not given (--data_options: the saved pairs, then the given ones).

  Args:
    model_dir: the run directory.
    mode: the --mode of this invocation.
    given: {flag: value} of the flags given on the command line or in a flagfile.
    flag_names: every flag run.py defines.
    may_start: the mode may start a run in a directory that holds none (train, ...).
    needs_run: False when the mode has what it needs elsewhere (--saved_model, --checkpoint, or
      a continuous_eval waiting for a trainer to start): no run is then not an error.
  Raises:
    RunSettingsError: a network flag given with another value than the run's (all such flags
      are listed), or (needs_run, not may_start) a directory that holds no run.
  """
  record = read_run_config(model_dir)
  if record is None:
    if may_start or not needs_run or has_checkpoint(model_dir):
      return {}  # a fresh run; or a run older than run_config.json: the flags say it all
    raise RunSettingsError(no_run_message(model_dir, mode))
  saved = saved_flag_values(record, flag_names)
  clashes = conflicts(saved, given, network_flag_names(saved["model"]))
  if clashes:
    where = os.path.join(model_dir, RUN_CONFIG)
    listed = "; ".join(f"--{name}={value!r} given, the run has --{name}={was!r}"
                       for name, value, was in clashes)
    raise RunSettingsError(
        f"{listed} ({where}). A run's network cannot change: drop "
        f"{', '.join('--' + name for name, _, _ in clashes)} (the run's value is used), or use "
        "another --model_dir for a new run.")
  values = {k: v for k, v in saved.items() if k not in given}
  if "dataset" in given and not _same(given["dataset"], saved.get("dataset")):
    for name in DATASET_FLAGS:  # another dataset (the model allows it): not the old one's files
      values.pop(name, None)
  elif "data_options" in given and "data_options" in saved:
    values["data_options"] = list(saved["data_options"]) + list(given["data_options"])
  return values
