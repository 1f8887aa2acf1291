"""run.py on a run directory that exists: its run_config.json gives the flags not given.

In process (run.py's own parser and flag -> config function, no TensorFlow graph), but one slow
end-to-end test that trains, resumes and samples with nothing but --model_dir.
"""
import os
import subprocess
import sys

import pytest
from absl import flags

import run
from estimators import run_dir
from estimators.run_settings import RunSettingsError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--model=sagan", "--gf_dim=8", "--df_dim=8", "--z_dim=16", "--batch_size=8",
        "--attention_resolution=16", "--seed=3", "--data_options=shuffle_buffer_mb=64"]


@pytest.fixture
def parse():
  """Parses argv as `python run.py` does and returns the resolved GANConfig."""
  def config(*args):
    run.FLAGS.unparse_flags()
    run.FLAGS(run.rerun_argv(["run.py", *args]))
    return run.config_from_flags()
  yield config
  run.FLAGS.unparse_flags()


def _train_record(parse, model_dir, *args):
  """The run_config.json a train would write (nothing trained)."""
  cfg = parse(*args, "--mode=train", f"--model_dir={model_dir}")
  os.makedirs(model_dir, exist_ok=True)
  run_dir.write_run_config(str(model_dir), cfg.to_dict(), ["run.py"])
  return cfg


def test_a_mode_on_a_run_needs_only_the_model_dir(parse, tmp_path):
  trained = _train_record(parse, tmp_path, *TINY)
  assert trained.model == "sagan" and trained.hparams.gf_dim == 8
  sample = parse("--mode=sample", f"--model_dir={tmp_path}")
  assert sample == trained
  # Run settings may change; the rest stays the run's.
  evaluation = parse("--mode=eval", f"--model_dir={tmp_path}", "--seed=5",
                     "--num_eval_samples=10", "--bn_inference=batch")
  assert evaluation == trained.replace(seed=5, num_eval_samples=10).with_hparams(
      bn_inference="batch")


def test_a_flag_that_contradicts_the_run_is_an_error_in_every_mode(parse, tmp_path):
  _train_record(parse, tmp_path, *TINY)
  with pytest.raises(RunSettingsError, match=r"^--gf_dim=16 given, the run has --gf_dim=8 \("):
    parse("--mode=sample", f"--model_dir={tmp_path}", "--gf_dim=16")
  # A train rerun (resume) too, and through a flagfile: a forgotten or stale one is caught.
  flagfile = tmp_path / "old.cfg"
  flagfile.write_text("--model=ylg_sagan\n--image_size=32\n")
  with pytest.raises(RunSettingsError, match="--model='ylg_sagan' given, the run has "
                                             "--model='sagan'"):
    parse("--mode=train", f"--flagfile={flagfile}", f"--model_dir={tmp_path}")
  resumed = parse("--mode=train", f"--model_dir={tmp_path}", "--max_steps=3000")
  assert (resumed.max_steps, resumed.model, resumed.batch_size) == (3000, "sagan", 8)
  with pytest.raises(SystemExit, match="^error: --z_dim=4 given, the run has --z_dim=16"):
    run.parse_flags(["run.py", "--mode=export", f"--model_dir={tmp_path}", "--z_dim=4"])


def test_the_run_supplies_what_flag_validation_needs(parse, tmp_path):
  """--captions_file is checked against the model: the run's, not the flag default (sagan)."""
  trained = _train_record(parse, tmp_path, "--flagfile=configs/attngan_digits.cfg")
  captions = tmp_path / "captions.txt"
  captions.write_text("a seven\n")
  cfg = parse("--mode=sample", f"--captions_file={captions}", f"--model_dir={tmp_path}")
  assert cfg == trained and cfg.model == "attngan" and cfg.hparams.branch_num == 2


def test_a_mode_on_a_directory_without_a_run_says_what_to_do(parse, tmp_path):
  empty = tmp_path / "empty"
  captions = tmp_path / "captions.txt"
  captions.write_text("a seven\n")
  with pytest.raises(SystemExit, match=f"^error: checkpoint and run settings not found: "
                                       f"--model_dir={empty} holds no run .*--mode=train"):
    run.parse_flags(["run.py", "--model=attngan", "--mode=sample", f"--captions_file={captions}",
                     f"--model_dir={empty}"])
  assert not empty.exists()
  # Weights named elsewhere: the flags as given, nothing taken.
  argv = ["run.py", "--mode=eval", f"--model_dir={empty}", "--checkpoint=/elsewhere/model.ckpt-5"]
  assert run.rerun_argv(argv) == argv
  fresh = parse("--mode=train", f"--model_dir={empty}", *TINY)  # a fresh train: the flags
  assert fresh.hparams.z_dim == 16


def test_an_unparsable_flag_is_absls_usual_error(parse, tmp_path):
  del parse
  with pytest.raises(flags.IllegalFlagValueError):
    run.rerun_argv(["run.py", "--batch_size=many", f"--model_dir={tmp_path}"])


@pytest.mark.slow
def test_train_resume_and_sample_with_only_the_model_dir(tmp_path):
  """The console says where a rerun resumes; sampling needs no training flag again."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")

  def run_py(*args):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "run.py"), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc

  model_dir = tmp_path / "run"
  first = run_py("--mode=train", f"--model_dir={model_dir}", "--max_steps=2",
                 "--save_checkpoints_steps=2", *TINY)
  assert "resuming" not in first.stdout + first.stderr
  again = run_py("--mode=train", f"--model_dir={model_dir}", "--max_steps=3")
  assert f"resuming from step 2: {model_dir}/model.ckpt-2\n" in again.stdout
  sample = run_py("--mode=sample", f"--model_dir={model_dir}", "--num_samples=2")
  out_dir = model_dir / "samples" / "step3_seed3"  # the run's --seed: 3
  assert f"2 PNGs in {out_dir}" in sample.stdout
  assert sorted(os.listdir(out_dir)) == ["000000.png", "000001.png", "grid.png"]
