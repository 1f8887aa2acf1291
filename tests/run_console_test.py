"""What a person sees running run.py (issue 16): progress, results and the summary on the console,
TensorFlow's chatter in <model_dir>/log.txt, a bar on a terminal, everything with --verbosity."""
import os
import pty
import re
import select
import subprocess
import sys

import pytest

from tests import run_process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--gf_dim=8", "--df_dim=8", "--z_dim=16", "--batch_size=8", "--num_eval_samples=200"]
# Lines the console showed before issue 16 and must not show by default.
NOISE = ("Instructions for updating", "is deprecated", "INFO:tensorflow", "WARNING:tensorflow",
         "Using config:", "remapper failed", "Found untraced functions", "Calling model_fn",
         "Saving checkpoints for", "global_step/sec", "update_ops in create_train_op",
         "triggered tf.function retracing", "Assets written to")
ABSL_PREFIX = re.compile(r"^[IWE]\d{4} \d\d:\d\d:\d\d", re.M)
pytestmark = pytest.mark.slow


def run_py(*args, timeout=600):
  """run.py with stdout and stderr captured (not a terminal), as under CI or `tee` (forked from
  the preloaded server: tests/run_process.py)."""
  return run_process.run_py(*args, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
  model_dir = tmp_path_factory.mktemp("console") / "run"
  proc = run_py(f"--model_dir={model_dir}", "--max_steps=20", "--eval_every_steps=10",
                "--save_checkpoints_steps=10", *TINY)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return model_dir, proc, open(model_dir / "log.txt").read()


def test_console_shows_progress_results_and_summary_and_no_noise(short_run):
  model_dir, proc, _ = short_run
  err, out = proc.stderr, proc.stdout
  train = [l for l in err.splitlines() if l.startswith("train step ")]
  assert [l.split(" | ")[0] for l in train] == ["train step 10/20 50%", "train step 20/20 100%"]
  for line in train:
    assert re.fullmatch(r"train step \d+/20 \d+% \| [\d.]+ steps/s, [\d.]+ images/s \| "
                        r"elapsed \d+(m\d\ds)?s?, ETA \d+(m\d\ds)?s? \| "
                        r"D loss -?[\d.e+-]+, G loss -?[\d.e+-]+", line), line
  assert train[-1].split(" | ")[2].endswith("ETA 0s")
  evals = [l for l in err.splitlines() if l.startswith("eval step ")]
  assert [l.split(" | ")[0] for l in evals] == [
      f"eval step {s}: 200/200 samples 100%" for s in (0, 10, 20)]
  assert [l.split(":")[0] for l in out.splitlines() if l.startswith("step ")] == [
      "step 0", "step 10", "step 20"]
  assert "digits_fid=" in out and f"Done. Everything is in {model_dir}" in out
  assert f"  SavedModel:    {model_dir}/export/20" in out
  for noise in NOISE:
    assert noise not in err + out, noise
  assert not ABSL_PREFIX.search(err + out)
  assert len((err + out).splitlines()) < 25  # was about 125


def test_the_log_keeps_everything(short_run):
  _, proc, log = short_run
  assert log.startswith("==== ") and "run.py --model_dir=" in log.splitlines()[0]
  # (TensorFlow's C++ "remapper failed" line was a needle here until the SAGAN graph stopped
  # making grappler's remapper fail, 2026-12-07; console_test covers native stderr.)
  for needle in ("Instructions for updating", "Using config:",
                 "Calling model_fn", "Saving checkpoints for 20", "Found untraced functions"):
    assert needle in log, needle
  for line in (proc.stdout + proc.stderr).splitlines():  # and all the console showed
    assert line in log, line


def run_in_terminal(*args):
  """(exit code, everything shown) of run.py under a pseudo-terminal."""
  master, slave = pty.openpty()
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TERM="xterm", COLUMNS="160")
  proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "run.py"), *args], cwd=ROOT,
                          env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
  os.close(slave)
  chunks = []
  while select.select([master], [], [], 600)[0]:
    try:
      data = os.read(master, 65536)
    except OSError:  # the child closed the terminal
      break
    if not data:
      break
    chunks.append(data)
  proc.wait(timeout=60)
  os.close(master)
  return proc.returncode, b"".join(chunks).decode(errors="replace")


def test_a_terminal_gets_one_bar_redrawn_in_place(tmp_path):
  """Under a pseudo-terminal: carriage returns and erase-line, no plain progress lines."""
  code, screen = run_in_terminal(f"--model_dir={tmp_path}/run", "--mode=train", "--max_steps=6",
                                 "--save_checkpoints_steps=6", *TINY)
  assert code == 0, screen[-3000:]
  assert "\rtrain step 6/6 [####################] 100% | " in screen
  assert "\x1b[K" in screen
  final = [l for l in screen.replace("\r\n", "\n").split("\n") if "train step" in l]
  assert len(final) == 1  # one line, rewritten (each state after a '\r')
  assert final[0].count("\rtrain step") >= 2
  assert f"checkpoint: {tmp_path}/run/model.ckpt-6" in screen
  for noise in NOISE:
    assert noise not in screen, noise


def test_an_error_in_a_terminal_is_still_the_last_line(tmp_path):
  from data import format_writers  # pylint: disable=import-outside-toplevel
  images = tmp_path / "faces"
  format_writers.image_folder_with_a_corrupt_png(str(images))
  code, screen = run_in_terminal(f"--model_dir={tmp_path / 'run'}", "--dataset=image_folder",
                                 f"--data_dir={images}", "--mode=train", "--max_steps=2",
                                 "--strict_data", *TINY[:4])
  assert code == 1
  shown = [l.split("\r")[-1].replace("\x1b[K", "") for l in screen.split("\r\n")]
  assert [l for l in shown if l.strip()][-1].startswith(
      f"error: image_folder/train: corrupt or unreadable image: {images}/03_truncated.png."), (
          screen[-2000:])
  assert "Traceback" not in screen


@pytest.mark.parametrize("flag", ["--verbosity=1", "--log_to_console"])
def test_verbosity_or_the_switch_restores_tensorflow_info_lines(tmp_path, flag):
  proc = run_py(f"--model_dir={tmp_path}/run", "--mode=train", "--max_steps=2", *TINY, flag)
  assert proc.returncode == 0, proc.stderr[-3000:]
  for needle in ("Using config:", "Calling model_fn.", "Saving checkpoints for 2",
                 "Instructions for updating"):
    assert needle in proc.stderr, needle
  assert proc.stderr.count("Calling model_fn.") == 1  # once (TF's own handler doubled it)
  assert "train step 2/2 100%" in proc.stderr


def test_errors_stay_one_line_and_crashes_keep_their_traceback_in_both(tmp_path):
  model_dir = tmp_path / "run"
  os.makedirs(model_dir)
  proc = run_py(f"--model_dir={model_dir}", "--mode=eval", *TINY)
  assert proc.returncode == 1  # no run there: refused at flag parsing, before log.txt exists
  assert (proc.stdout, proc.stderr) == ("", (
      f"error: checkpoint and run settings not found: --model_dir={model_dir} holds no run (no "
      "run_config.json, no checkpoint), so --mode=eval has nothing to work on. Train one there "
      f"first (python run.py --mode=train --model_dir={model_dir} [flags]) or point --model_dir "
      "at a run directory.\n"))
  assert not os.path.exists(model_dir / "log.txt")
  checkpoint = model_dir / "model.ckpt-9"
  proc = run_py(f"--model_dir={model_dir}", "--mode=eval", f"--checkpoint={checkpoint}", *TINY)
  assert proc.returncode == 1
  error_line = f"error: checkpoint {checkpoint} not found (expected {checkpoint}.index)"
  assert (proc.stdout, proc.stderr) == ("", error_line + "\n")
  assert error_line in open(model_dir / "log.txt").read()
  not_a_model = tmp_path / "not_a_saved_model"
  os.makedirs(not_a_model)
  proc = run_py(f"--model_dir={model_dir}", "--mode=sample", f"--saved_model={not_a_model}",
                *TINY)
  assert proc.returncode == 1
  assert "Traceback (most recent call last):" in proc.stderr
  last = proc.stderr.strip().splitlines()[-1]
  log = open(model_dir / "log.txt").read()
  assert log.count("==== ") == 2  # appended: one header per run
  assert "Traceback (most recent call last):" in log and last in log
