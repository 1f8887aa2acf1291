"""replica_check's model-neutral parts: settings from the command line, the default dataset.

The comparisons themselves run in subprocesses (logical CPU devices must be made before
TensorFlow starts): SAGAN's in estimators/distribution_test.py, AttnGAN's in
estimators/models/attngan_test.py, LadaGAN's below.
"""
import json
import os
import subprocess
import sys

import pytest

from estimators import replica_check
from estimators.testing import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LADAGAN_TINY = ("z_dim=16", "g_dim=16,8,4", "g_mlp_dim=8", "d_enc_dim=8,8", "d_out_dim=8,8")


def test_settings_are_typed_as_the_field_they_set():
  assert replica_check.parse_settings("attngan", [
      "gf_dim=4", "lambda_damsm=2.5", "pretrain_damsm_first=true", "damsm_dir=/x",
      "batch_size=6"]) == {"gf_dim": 4, "lambda_damsm": 2.5, "pretrain_damsm_first": True,
                           "damsm_dir": "/x", "batch_size": 6}
  assert replica_check.parse_settings("ladagan", ["g_dim=16,8,4", "r1_weight=0.5"]) == {
      "g_dim": "16,8,4", "r1_weight": 0.5}
  with pytest.raises(ValueError, match="a run setting or a sagan hyperparameter"):
    replica_check.parse_settings("sagan", ["lambda_damsm=1"])  # AttnGAN's, not SAGAN's
  with pytest.raises(ValueError, match="expected NAME=VALUE"):
    replica_check.parse_settings("sagan", ["gf_dim"])
  with pytest.raises(ValueError, match="takes true or false"):
    replica_check.parse_settings("attngan", ["pretrain_damsm_first=yes"])


def test_the_default_dataset_is_the_first_embedded_one_the_model_accepts():
  def hparams(model, **given):
    return tiny_config("unused", model=model, **given).hparams
  assert replica_check.default_dataset("sagan", 32, hparams("sagan")) == "digits"
  assert replica_check.default_dataset("ladagan", 32, hparams("ladagan")) == "digits"
  assert replica_check.default_dataset("attngan", 32, hparams("attngan", branch_num=2)) == (
      "digits_captions")
  with pytest.raises(ValueError, match="pass --dataset and --image_size"):
    replica_check.default_dataset("attngan", 16, hparams("attngan"))  # 3 stages from 4 px


@pytest.mark.slow
def test_ladagan_mirrored_step_equals_one_device(tmp_path):
  """LadaGAN through replica_check: losses, first-step gradients (Adam's first slots) and BN
  statistics of 2 mirrored replicas equal one device's, with DiffAugment on (all three ops):
  each example is augmented by its own draws wherever it lands (with per-batch draws the
  first-step gradients differed by up to 1.7x their scale; measured 2026-12-07; now 1.1e-5 (G),
  8.9e-7 (D)). The weights after the step are not compared one by one: a variable
  whose gradient is zero in exact arithmetic (the attention score's bias, a constant shift
  before a softmax) gets round-off, which Adam's first step turns into +-lr either way."""
  out = tmp_path / "result.json"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("TF_CONFIG", None)
  proc = subprocess.run(
      [sys.executable, "-m", "estimators.replica_check", "--model=ladagan", "--batch_size=4",
       f"--root={tmp_path / 'runs'}", f"--json={out}",
       "--set=diffaugment=color,translation,cutout"]
      + [f"--set={s}" for s in LADAGAN_TINY],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads(out.read_text())
  one, multi = result["losses"]["one_device"], result["losses"]["multi"]
  assert set(one) == set(multi) and len(one) == 3
  for tag, value in one.items():
    assert multi[tag] == pytest.approx(value, rel=1e-5, abs=1e-5), tag
  assert not result["missing_in_multi"] and len(result["variables"]["relative"]) > 20
  for net, grads in result["gradients"].items():
    assert grads["variables"] > 10 and grads["relative"] < 1e-3, (net, grads)
  for name, stats in result["bn_moving_statistics"].items():
    assert stats["max_abs_diff"] < 1e-6, (name, stats)
