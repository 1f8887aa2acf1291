"""Training on from imported weights (issue #23): what the released files did not hold, fresh.

An imported run's checkpoint (estimators/weights_import.py) holds what the released files filled:
no optimiser slots, and no networks the authors did not release (ImportResult.not_released,
e.g. AttnGAN's discriminators). The estimator restores a checkpoint whole, so before the first
training of such a run `complete_checkpoint` writes one checkpoint more, at the imported step:

  1. the run's own train graph is built once (its estimator's model_fn on one device: the
     variables a run trains do not depend on the devices it trains on);
  2. every variable is initialised as a new run initialises it (seeded by --seed), then every
     imported one restored over it, the global step included;
  3. `train_start.ckpt-<step>` is written and made the run's latest (the `checkpoint` index,
     last, so a kill leaves the run as it was); imported.json records what was fresh.

The imported `model.ckpt-<step>` is left alone here (a kill at any point leaves a run that
resumes); the estimator's own first save, at the same step, then rewrites it with the same
imported values plus the fresh state. A variable of a network scope that the import did not
fill and did not declare not released is an error, never a silent fresh value. The console line
names each group that starts fresh, with its size. On a multi-worker run the chief completes
the checkpoint and the other workers wait for it (`wait_for_chief`).
"""
import dataclasses
import json
import os
import time
from typing import Dict, List, Optional

import tensorflow as tf

from estimators import run_dir
from estimators.export import GENERATOR_SCOPE
from estimators.model_registry import WeightsImportError
from estimators.engines.optimizers import EMA_SUFFIX

IMPORTED_JSON = "imported.json"  # weights_import.IMPORTED_JSON (that module imports this one)
START_NAME = "train_start.ckpt"
NETWORK_SCOPES = (GENERATOR_SCOPE, "Discriminator")  # TF-GAN's variable scopes
# The run-wide optimiser is Adam (estimators/engines/optimizers.py): its state is a slot pair per
# trained variable ('<variable>/<optimiser name>', '..._1') and the beta powers
# ('<scope>/beta1_power').
OPTIMISER_STATE = "optimiser state (Adam's moments of every trained variable, beta powers)"
ADAM_POWERS = ("beta1_power", "beta2_power")
OTHER_FROZEN = ("frozen variables outside G and D, set up as in a new run (e.g. a pretrained "
                "part the model loads from its own checkpoint)")
OTHER_TRAINABLE = "other trainable variables"


def imported_record(model_dir: str) -> Optional[dict]:
  """imported.json of `model_dir` when its latest checkpoint is still the imported one, else
  None (not an imported run, or training has started from it already)."""
  path = os.path.join(model_dir, IMPORTED_JSON)
  latest = tf.train.latest_checkpoint(model_dir)
  if latest is None or not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as f:
    record = json.load(f)
  return record if record.get("checkpoint") == os.path.basename(latest) else None


def _train_graph_variables(cfg, dataset_fn):
  """(graph, {checkpoint key: variable}) of the run's train graph, built on one device."""
  # pylint: disable=import-outside-toplevel  (the engines import TF-GAN; import lazily)
  from estimators.engines.build import build_estimator
  from estimators.engines.input_fn import make_train_input_fn
  one_device = dataclasses.replace(
      cfg, use_tpu=False, tpu=None, num_devices=0, distribution="none",
      engine=cfg.engine if cfg.distribution == "none" and not cfg.use_tpu else "in_graph")
  estimator = build_estimator(one_device)
  graph = tf.Graph()
  with graph.as_default():
    tf.compat.v1.set_random_seed(cfg.seed)  # the estimator's tf_random_seed
    tf.compat.v1.train.get_or_create_global_step()
    dataset = make_train_input_fn(one_device, dataset_fn)()
    features, labels = tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()
    estimator.model_fn(features, labels, tf.estimator.ModeKeys.TRAIN, estimator.config)
    variables = {v.op.name: v for v in tf.compat.v1.global_variables()}
  return graph, variables


def _count(keys) -> str:
  return f"{len(keys)} variable{'s' * (len(keys) != 1)}"


def fresh_groups(missing: List[str], keys: List[str], not_released: Dict[str, str],
                 trainable=()):
  """{group: [keys]} of the variables that start as in a new run: the optimiser state, each
  not-released prefix, and the rest outside the networks, split into frozen ones (a pretrained
  part the model loads, e.g. from its own checkpoint) and trainable ones (`trainable`: keys).
  Raises WeightsImportError for a network variable the import neither filled nor declared not
  released."""
  groups, unfilled = {}, []
  for key in sorted(missing):
    owner = key.rsplit("/", 1)[0]
    prefix = next((p for p in not_released if key.startswith(p)), None)
    if ((owner in keys and not key.endswith("/" + EMA_SUFFIX))
        or key.rsplit("/", 1)[-1] in ADAM_POWERS):
      group = OPTIMISER_STATE
    elif prefix is not None:
      group = f"{prefix.rstrip('/')} (not released: {not_released[prefix]})"
    elif key.split("/", 1)[0] in NETWORK_SCOPES:
      unfilled.append(key)
      continue
    else:
      group = OTHER_TRAINABLE if key in trainable else OTHER_FROZEN
    groups.setdefault(group, []).append(key)
  if unfilled:
    raise WeightsImportError(
        f"the imported checkpoint lacks {len(unfilled)} network variables the train graph has "
        f"and imported.json does not declare not released: {', '.join(unfilled[:8])}"
        + (" ..." if len(unfilled) > 8 else "") + ". Import the release again with this "
        "version (--mode=import_weights into a new --model_dir).")
  return groups


def describe(groups: Dict[str, List[str]]) -> str:
  """'optimiser state (...) (12 variables); ... (1 variable)', optimiser state first; the groups
  outside the networks with their first top-level scopes."""
  order = lambda g: (g != OPTIMISER_STATE, g in (OTHER_FROZEN, OTHER_TRAINABLE), g)
  parts = []
  for group in sorted(groups, key=order):
    keys = groups[group]
    if group in (OTHER_FROZEN, OTHER_TRAINABLE):
      scopes = sorted({k.split("/", 1)[0] for k in keys})
      listed = ", ".join(scopes[:3]) + (f" and {len(scopes) - 3} more" if len(scopes) > 3 else "")
      parts.append(f"{group} ({_count(keys)}: {listed})")
    else:
      parts.append(f"{group} ({_count(keys)})")
  return "; ".join(parts)


def complete_checkpoint(cfg, dataset_fn=None, log=print) -> Optional[str]:
  """Before the first training of an imported run: writes train_start.ckpt-<step> (the imported
  variables, everything else fresh), makes it the latest, logs what is fresh and returns its
  prefix. None (nothing done) for any other run directory."""
  record = imported_record(cfg.model_dir)
  if record is None:
    return None
  imported = os.path.join(cfg.model_dir, record["checkpoint"])
  reader = tf.train.load_checkpoint(imported)
  have = reader.get_variable_to_shape_map()
  graph, variables = _train_graph_variables(cfg, dataset_fn)
  not_built = sorted(set(have) - set(variables))
  shapes = [f"{k}: {have[k]} imported, {variables[k].shape.as_list()} built" for k in sorted(have)
            if k in variables and list(have[k]) != variables[k].shape.as_list()]
  if not_built or shapes:
    raise WeightsImportError(
        f"{imported} does not fit the train graph of --model={cfg.model} with this run's "
        "flags: " + "; ".join(filter(None, [
            f"not in the graph: {', '.join(not_built[:8])}" if not_built else "",
            f"shapes: {', '.join(shapes[:8])}" if shapes else ""])))
  missing = sorted(set(variables) - set(have))
  with graph.as_default():
    trainable = {v.op.name for v in tf.compat.v1.trainable_variables()}
  groups = fresh_groups(missing, list(variables), record.get("not_released", {}), trainable)
  step = int(reader.get_tensor("global_step"))
  prefix = os.path.join(cfg.model_dir, f"{START_NAME}-{step}")
  with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
    sess.run([tf.compat.v1.global_variables_initializer(),
              tf.compat.v1.local_variables_initializer(), tf.compat.v1.tables_initializer()])
    tf.compat.v1.train.Saver({k: variables[k] for k in have}).restore(sess, imported)
    tf.compat.v1.train.Saver(variables).save(sess, prefix, write_meta_graph=False,
                                             write_state=False)
  record["training_start"] = {"checkpoint": os.path.basename(prefix), "step": step,
                              "restored": len(have),
                              "fresh": {g: len(k) for g, k in groups.items()}}
  run_dir.atomic_write_json(os.path.join(cfg.model_dir, IMPORTED_JSON), record)
  name = os.path.basename(prefix)
  run_dir.atomic_write_bytes(os.path.join(cfg.model_dir, "checkpoint"), (
      f'model_checkpoint_path: "{name}"\nall_model_checkpoint_paths: "{name}"\n').encode())
  log(f"training on from the imported weights ({record['checkpoint']}, step {step}): "
      f"{len(have)} variables restored; initialised as a new run initialises them: "
      f"{describe(groups) or 'nothing'} "
      f"(written as {name}; imported.json 'training_start')")
  return prefix


def wait_for_chief(model_dir: str, timeout_secs: float = 1800, poll_secs: float = 2) -> None:
  """A worker that is not the chief, on an imported run: waits until the chief has completed
  the checkpoint (the estimator would otherwise restore the incomplete import and fail)."""
  deadline = time.time() + timeout_secs
  while imported_record(model_dir) is not None:
    if time.time() > deadline:
      raise WeightsImportError(
          f"{model_dir} still holds the imported checkpoint after {timeout_secs:.0f} s: the "
          "chief completes it before training starts; is the chief running?")
    time.sleep(poll_secs)
