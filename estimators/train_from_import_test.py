"""train_from_import's rules without training: which variables start fresh, in which group, and
what is an error (the end-to-end runs are in estimators/models/*_imported_run_test.py)."""
import json

import pytest
import tensorflow as tf

from estimators import train_from_import
from estimators.model_registry import WeightsImportError
from estimators.train_from_import import OPTIMISER_STATE, OTHER_FROZEN, OTHER_TRAINABLE

KEYS = ["Generator/g/dense/kernel", "Generator/g/dense/kernel/generator_adam",
        "Generator/g/dense/kernel/generator_adam_1",
        "Generator/g/dense/kernel/ExponentialMovingAverage", "generator_train/beta1_power",
        "generator_train/beta2_power", "Discriminator/d/conv/kernel",
        "Discriminator/d/conv/kernel/discriminator_adam", "damsm/image/conv/kernel",
        "global_step"]


def test_fresh_groups_name_the_optimiser_state_what_was_not_released_and_other_state():
  missing = [k for k in KEYS + ["extra/scale"] if k not in (
      "Generator/g/dense/kernel", "global_step",
      "Generator/g/dense/kernel/ExponentialMovingAverage")]
  groups = train_from_import.fresh_groups(missing, KEYS, {"Discriminator/": "no netD*.pth"},
                                          trainable={"extra/scale"})
  assert groups == {
      OPTIMISER_STATE: ["Discriminator/d/conv/kernel/discriminator_adam",
                        "Generator/g/dense/kernel/generator_adam",
                        "Generator/g/dense/kernel/generator_adam_1",
                        "generator_train/beta1_power", "generator_train/beta2_power"],
      "Discriminator (not released: no netD*.pth)": ["Discriminator/d/conv/kernel"],
      OTHER_FROZEN: ["damsm/image/conv/kernel"], OTHER_TRAINABLE: ["extra/scale"]}
  assert train_from_import.describe(groups) == (
      f"{OPTIMISER_STATE} (5 variables); Discriminator (not released: no netD*.pth) "
      f"(1 variable); {OTHER_FROZEN} (1 variable: damsm); {OTHER_TRAINABLE} (1 variable: "
      "extra)")
  many = {OTHER_FROZEN: [f"scope{i}/v" for i in range(5)]}
  assert train_from_import.describe(many) == (
      f"{OTHER_FROZEN} (5 variables: scope0, scope1, scope2 and 2 more)")


def test_a_network_variable_the_import_did_not_fill_is_an_error():
  with pytest.raises(WeightsImportError, match=r"lacks 2 network variables .*: "
                     r"Discriminator/d/conv/kernel, Generator/g/dense/kernel/"
                     r"ExponentialMovingAverage\. Import the release again"):
    train_from_import.fresh_groups(
        ["Discriminator/d/conv/kernel", "Generator/g/dense/kernel/ExponentialMovingAverage",
         "Generator/g/dense/kernel/generator_adam"], KEYS, {})


def _latest(model_dir, name):
  """model_dir's latest checkpoint: <name> (holding only global_step 7)."""
  tf.raw_ops.SaveV2(prefix=str(model_dir / name), tensor_names=["global_step"],
                    shape_and_slices=[""], tensors=[tf.constant(7, tf.int64)])
  (model_dir / "checkpoint").write_text(f'model_checkpoint_path: "{name}"\n')


def test_only_an_imported_run_whose_latest_checkpoint_is_the_import_is_completed(tmp_path):
  assert train_from_import.imported_record(str(tmp_path)) is None  # nothing there
  _latest(tmp_path, "model.ckpt-7")
  assert train_from_import.imported_record(str(tmp_path)) is None  # a run of its own
  (tmp_path / "imported.json").write_text(json.dumps({"checkpoint": "model.ckpt-7"}))
  assert train_from_import.imported_record(str(tmp_path)) == {"checkpoint": "model.ckpt-7"}
  _latest(tmp_path, "train_start.ckpt-7")
  assert train_from_import.imported_record(str(tmp_path)) is None  # completed already


def test_a_worker_waits_for_the_chief_to_complete_the_checkpoint(tmp_path):
  _latest(tmp_path, "model.ckpt-7")
  (tmp_path / "imported.json").write_text(json.dumps({"checkpoint": "model.ckpt-7"}))
  with pytest.raises(WeightsImportError, match="still holds the imported checkpoint after 0 s"):
    train_from_import.wait_for_chief(str(tmp_path), timeout_secs=0, poll_secs=0)
  (tmp_path / "imported.json").write_text(json.dumps({"checkpoint": "model.ckpt-3"}))
  train_from_import.wait_for_chief(str(tmp_path), timeout_secs=0)  # completed: returns
