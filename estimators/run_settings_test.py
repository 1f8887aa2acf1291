"""A run directory's saved settings for a rerun: taken, overridden, contradicted, missing.

No training: each test writes a run_config.json record in tmp_path and feeds flag values.
"""
import json
import os

import pytest

from data.registry import parse_options, resolved_options
from estimators import run_dir, run_settings
from estimators.config import GANConfig
from estimators.models import get_model

# The flags run.py defines that these records touch (run.py passes all of its own).
FLAG_NAMES = {"model", "dataset", "data_dir", "image_size", "data_options", "batch_size", "seed",
              "max_steps", "ema_decay", "generator_lr", "model_dir", "gf_dim", "df_dim", "z_dim",
              "bn_inference", "attention_resolution", "sn_bound", "num_eval_samples"}


def _write_run(path, **changes):
  """A run_config.json as run.py writes it: a SAGAN run on image folders at 64 px."""
  hparams = get_model("sagan").hparams_class(gf_dim=8, df_dim=16, z_dim=12,
                                             attention_resolution=16)
  cfg = GANConfig(model="sagan", hparams=hparams, dataset="image_folder", data_dir="/data/faces",
                  image_size=64, num_classes=0, batch_size=8, seed=3, max_steps=100,
                  model_dir=str(path),
                  data_options=tuple(resolved_options("image_folder", ["crop_size=140"]).items()))
  cfg = cfg.replace(**changes)
  os.makedirs(path, exist_ok=True)
  run_dir.write_run_config(str(path), cfg.to_dict(), ["run.py", "--mode=train"])
  return cfg


def test_saved_flag_values_are_the_runs_flags(tmp_path):
  _write_run(tmp_path)
  record = run_settings.read_run_config(str(tmp_path))
  saved = run_settings.saved_flag_values(record, FLAG_NAMES)
  assert {k: saved[k] for k in ("model", "dataset", "data_dir", "image_size", "batch_size", "seed",
                                "max_steps", "gf_dim", "df_dim", "z_dim",
                                "attention_resolution")} == {
      "model": "sagan", "dataset": "image_folder", "data_dir": "/data/faces", "image_size": 64,
      "batch_size": 8, "seed": 3, "max_steps": 100, "gf_dim": 8, "df_dim": 16, "z_dim": 12,
      "attention_resolution": 16}
  assert "model_dir" not in saved  # where the run is comes from the command line
  assert "num_classes" not in saved and "num_heads" not in saved  # not in FLAG_NAMES
  # --data_options as key=value strings that parse back to every resolved option.
  assert "crop_size=140" in saved["data_options"]
  assert "index_dir=none" in saved["data_options"] and "cache=false" in saved["data_options"]
  assert parse_options("image_folder", saved["data_options"]) == resolved_options(
      "image_folder", ["crop_size=140"])


def test_flags_not_given_take_the_runs_values_and_given_run_settings_win(tmp_path):
  _write_run(tmp_path)
  values = run_settings.rerun_flags(
      str(tmp_path), "sample", {"mode": "sample", "model_dir": str(tmp_path), "seed": 9,
                                "data_dir": "/moved/faces", "data_options": ["cache=true"]},
      FLAG_NAMES, may_start=False)
  assert values["gf_dim"] == 8 and values["batch_size"] == 8 and values["model"] == "sagan"
  assert "seed" not in values and "data_dir" not in values  # given: the given value stands
  # Given data options are added to the saved ones, key by key (the later pair wins).
  options = parse_options("image_folder", values["data_options"])
  assert options["crop_size"] == 140 and options["cache"] is True


def test_a_network_flag_that_contradicts_the_run_is_an_error_naming_both_values(tmp_path):
  _write_run(tmp_path)
  given = {"model_dir": str(tmp_path), "gf_dim": 16, "df_dim": 16, "image_size": 128,
           "bn_inference": "batch"}  # df_dim equal: fine; bn_inference may change
  with pytest.raises(run_settings.RunSettingsError) as e:
    run_settings.rerun_flags(str(tmp_path), "train", given, FLAG_NAMES, may_start=True)
  message = str(e.value)
  assert message.startswith("--image_size=128 given, the run has --image_size=64; "
                            "--gf_dim=16 given, the run has --gf_dim=8 (")
  assert os.path.join(str(tmp_path), "run_config.json") in message
  assert "drop --image_size, --gf_dim" in message and "df_dim" not in message
  with pytest.raises(run_settings.RunSettingsError, match="--model='ylg_sagan' given, the run "
                                                          "has --model='sagan'"):
    run_settings.rerun_flags(str(tmp_path), "eval", {"model": "ylg_sagan"}, FLAG_NAMES,
                             may_start=False)
  # The same values given again are no conflict (a float given as 0 equals the saved 0.0).
  values = run_settings.rerun_flags(str(tmp_path), "train",
                                    {"gf_dim": 8, "ema_decay": 0, "max_steps": 500},
                                    FLAG_NAMES, may_start=True)
  assert values["df_dim"] == 16 and "max_steps" not in values


def test_network_flags_are_the_model_and_its_hyperparameters_but_the_changeable_ones():
  fixed = run_settings.network_flag_names("sagan")
  assert fixed == ("model", "dataset", "image_size", "ema_decay", "z_dim", "gf_dim", "df_dim",
                   "attention_resolution", "attention_type", "bn_decay", "sn_bound", "num_heads")
  attngan = run_settings.network_flag_names("attngan")
  assert "branch_num" in attngan and "lambda_damsm" in attngan
  assert not {"damsm_dir", "r_precision_damsm_dir", "r_precision_protocols", "damsm_epochs",
              "pretrain_damsm_first"} & set(attngan)
  with pytest.raises(run_settings.RunSettingsError, match="--model=gone, which this version"):
    run_settings.network_flag_names("gone")


def test_dataset_may_change_where_the_models_variables_do_not_depend_on_it(tmp_path):
  """LadaGAN's networks are the same on every dataset (unconditional, no vocabulary): a rerun
  may train or score it on another one, and the old dataset's files and options are not taken.
  SAGAN's class embeddings depend on the dataset: another one is an error."""
  assert "dataset" not in run_settings.network_flag_names("ladagan")
  assert "dataset" in run_settings.network_flag_names("sagan")
  hparams = get_model("ladagan").hparams_class()
  cfg = GANConfig(model="ladagan", hparams=hparams, dataset="image_folder",
                  data_dir="/data/faces", image_size=64, num_classes=0, model_dir=str(tmp_path),
                  data_options=tuple(resolved_options("image_folder", ["crop_size=140"]).items()))
  run_dir.write_run_config(str(tmp_path), cfg.to_dict(), ["run.py"])
  given = {"dataset": "cifar10", "data_dir": "/data/cifar"}
  values = run_settings.rerun_flags(str(tmp_path), "train", given,
                                    FLAG_NAMES | {"g_dim"}, may_start=True)
  assert "dataset" not in values and "data_dir" not in values and "data_options" not in values
  assert values["image_size"] == 64 and values["g_dim"] == hparams.g_dim
  # The same dataset again keeps the saved options and files.
  values = run_settings.rerun_flags(str(tmp_path), "sample", {"dataset": "image_folder"},
                                    FLAG_NAMES, may_start=False)
  assert values["data_dir"] == "/data/faces" and "crop_size=140" in values["data_options"]
  _write_run(tmp_path / "sagan")
  with pytest.raises(run_settings.RunSettingsError, match="--dataset='cifar10' given, the run "
                                                          "has --dataset='image_folder'"):
    run_settings.rerun_flags(str(tmp_path / "sagan"), "train", given, FLAG_NAMES,
                             may_start=True)


def test_a_directory_without_a_run(tmp_path):
  empty = str(tmp_path / "empty")
  with pytest.raises(run_settings.RunSettingsError) as e:
    run_settings.rerun_flags(empty, "sample", {}, FLAG_NAMES, may_start=False)
  assert str(e.value) == (
      f"checkpoint and run settings not found: --model_dir={empty} holds no run (no "
      "run_config.json, no checkpoint), so --mode=sample has nothing to work on. Train one "
      f"there first (python run.py --mode=train --model_dir={empty} [flags]) or point "
      "--model_dir at a run directory.")
  # A fresh train, a mode with what it needs elsewhere, a run older than run_config.json.
  assert run_settings.rerun_flags(empty, "train", {}, FLAG_NAMES, may_start=True) == {}
  assert run_settings.rerun_flags(empty, "eval", {}, FLAG_NAMES, may_start=False,
                                  needs_run=False) == {}
  (tmp_path / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-5"\n')
  assert run_settings.rerun_flags(str(tmp_path), "eval", {}, FLAG_NAMES, may_start=False) == {}


def test_a_corrupt_run_config_is_named(tmp_path):
  (tmp_path / "run_config.json").write_text('{"config": {"model": ')
  with pytest.raises(run_settings.RunSettingsError, match="run_config.json is not valid JSON"):
    run_settings.rerun_flags(str(tmp_path), "eval", {}, FLAG_NAMES, may_start=False)
  (tmp_path / "run_config.json").write_text(json.dumps({"config": {"max_steps": 3}}))
  with pytest.raises(run_settings.RunSettingsError, match="holds no run configuration"):
    run_settings.rerun_flags(str(tmp_path), "eval", {}, FLAG_NAMES, may_start=False)
