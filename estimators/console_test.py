"""The console policy and the run log, in child processes (capturing fd 2 is process-wide)."""
import logging
import os
import subprocess
import sys
import textwrap

import pytest

from estimators import console

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRAPPLER = ("2026-12-01 10:28:08.112936: E tensorflow/core/grappler/optimizers/meta_optimizer.cc:"
            "961] remapper failed: INVALID_ARGUMENT: Mutation::Apply error: fanout 'Discriminator/"
            "discriminator/Relu' exist for missing node 'Discriminator/discriminator/d_block3/add'.")
NATIVE_ERROR = ("2026-12-01 10:28:09.000001: E tensorflow/core/framework/op_kernel.cc:1827] "
                "OP_REQUIRES failed at conv_ops.cc:1068 : RESOURCE_EXHAUSTED: OOM")


def test_known_noise_is_the_grappler_pass_failure_not_any_native_error():
  assert console.is_known_noise(GRAPPLER)
  assert not console.is_known_noise(NATIVE_ERROR)
  assert console.is_known_noise(
      "2026-12-01 10:00:00.1: E external/local_xla/xla/stream_executor/cuda/cuda_dnn.cc:9261] "
      "Unable to register cuDNN factory: Attempting to register factory for plugin cuDNN when "
      "one has already been registered")


def test_project_records_are_told_from_library_records():
  def record(path, name="absl"):
    return logging.LogRecord(name, logging.WARNING, path, 1, "m", None, None)
  assert console.from_project(record(os.path.join(ROOT, "data", "bad_records.py")))
  assert not console.from_project(record(os.path.join(ROOT, "estimators", "x.py"), "tensorflow"))
  assert not console.from_project(record(
      "/usr/lib/python3.11/site-packages/tensorflow/python/util/deprecation.py"))
  assert not console.from_project(record(
      os.path.join(ROOT, ".venv", "lib", "python3.11", "site-packages", "tensorflow", "x.py")))
  warning = logging.LogRecord("py.warnings", logging.WARNING, "/usr/lib/python3.11/warnings.py",
                              1, "%s", ("/x/site-packages/tensorflow/d.py:462: UserWarning: m",),
                              None)
  assert not console.from_project(warning)
  warning.args = (os.path.join(ROOT, "data", "cub.py") + ":3: UserWarning: m",)
  assert console.from_project(warning)


def test_run_log_waits_for_its_directory_then_appends(tmp_path):
  log = console.RunLog()
  log.write("before\n")
  log.set_path(str(tmp_path / "run" / "log.txt"))
  log.write("still before\n")
  assert not os.path.exists(tmp_path / "run")  # never creates the run directory itself
  os.makedirs(tmp_path / "run")
  log.write("after\n")
  log.close()
  again = console.RunLog()
  again.set_path(str(tmp_path / "run" / "log.txt"))
  again.write("resumed\n")
  again.close()
  assert open(tmp_path / "run" / "log.txt").read() == "before\nstill before\nafter\nresumed\n"


def test_run_log_holds_a_bounded_backlog_and_skips_remote_directories(tmp_path, monkeypatch):
  monkeypatch.setattr(console.RunLog, "MAX_PENDING", 3)
  log = console.RunLog()
  for i in range(5):
    log.write(f"{i}\n")
  log.set_path(str(tmp_path / "log.txt"))
  log.close()
  assert open(tmp_path / "log.txt").read() == "2\n3\n4\n"
  remote = console.RunLog()
  remote.write("held\n")
  remote.set_path("gs://bucket/run/log.txt")
  remote.write("dropped\n")
  remote.close()
  assert remote.path is None


def test_standard_level_follows_absl():
  assert [console.standard_level(v) for v in (-3, -2, -1, 0, 1, 2)] == [
      logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO, logging.DEBUG, 9]


_SCRIPT = textwrap.dedent("""
    import logging, os, sys
    from estimators import console
    console.capture_native_stderr()
    os.write(2, b"native before install\\n")
    import time; time.sleep(0.2)
    console.install(sys.argv[1], verbosity=eval(sys.argv[2]), log_to_console=sys.argv[3] == "1",
                    argv=["run.py", "--x"])
    from data import bad_records
    tf_logger = logging.getLogger("tensorflow")
    tf_logger.info("Using config: {'_model_dir': ...}")
    tf_logger.warning("From x.py:1: f (from y) is deprecated.\\nInstructions for updating:\\nUse z.")
    tf_logger.error("a TensorFlow error")
    os.write(2, (sys.argv[4] + "\\n" + sys.argv[5] + "\\n").encode())
    bad_records.record("cub/train", "corrupt_image", "a.jpg")  # a project warning
    bad_records.log_summary()                                   # project INFO: log only
    import warnings
    warnings.warn_explicit("tf.data options", UserWarning, "/x/site-packages/tf/d.py", 462)
    print("step 0: digits_fid=1")
    import time; time.sleep(0.3)  # the native lines reach the reader thread
    raise RuntimeError("boom")
""")


def _run(tmp_path, verbosity="None", log_to_console="0"):
  os.makedirs(tmp_path / "run", exist_ok=True)
  proc = subprocess.run(
      [sys.executable, "-c", _SCRIPT, str(tmp_path / "run"), verbosity, log_to_console,
       GRAPPLER, NATIVE_ERROR], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
      capture_output=True, text=True, timeout=120)
  assert proc.returncode == 1, proc.stderr
  return proc, open(tmp_path / "run" / "log.txt").read()


def test_quiet_console_keeps_what_matters_and_the_log_keeps_everything(tmp_path):
  proc, log = _run(tmp_path)
  assert proc.stdout == "step 0: digits_fid=1\n"
  lines = proc.stderr.splitlines()
  traceback_at = lines.index("Traceback (most recent call last):")
  assert lines[-1] == "RuntimeError: boom"
  assert sorted(lines[:traceback_at]) == sorted([
      "native before install",
      "error (tensorflow): a TensorFlow error",
      NATIVE_ERROR,
      "warning: skipped record 1 (corrupt_image): cub/train: corrupt image: a.jpg",
      "warning: data: cub/train skipped 1 x corrupt_image"])
  header = [l for l in log.splitlines() if l.startswith("==== ")]
  assert len(header) == 1 and " pid " in header[0] and header[0].endswith(": run.py --x")
  for needle in ("native before install\n", "Using config: {'_model_dir': ...}",
                 "Instructions for updating:", GRAPPLER,
                 NATIVE_ERROR, "a TensorFlow error", "skipped record 1 (corrupt_image)",
                 "step 0: digits_fid=1\n", "RuntimeError: boom\n", "Traceback (most recent",
                 "/x/site-packages/tf/d.py:462: UserWarning: tf.data options"):
    assert needle in log, needle
  assert "] Using config:" in log  # with absl's prefix (time, file:line) in the log


def test_what_a_dying_process_wrote_last_still_reaches_console_and_log(tmp_path):
  """A C++ CHECK failure writes its line to fd 2 and aborts at once: the router outlives it."""
  os.makedirs(tmp_path / "run")
  script = textwrap.dedent("""
      import os, sys
      from estimators import console
      console.capture_native_stderr()
      console.install(sys.argv[1], argv=["run.py"])
      os.write(2, sys.argv[2].encode() + b"\\n")
      os.abort()
  """)
  fatal = "2026-12-01 10:00:00.000001: F tensorflow/core/framework/tensor.cc:1] Check failed: 1 == 2"
  proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "run"), fatal], cwd=ROOT,
                        env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == -6  # SIGABRT
  assert fatal + "\n" in proc.stderr  # the router's line arrives whole...
  # ...but may land between faulthandler's two writes ("Fatal Python error: " and "Aborted"),
  # which go to the saved terminal fd directly while the router thread is still relaying.
  assert "Fatal Python error: " in proc.stderr and "Aborted\n" in proc.stderr
  assert proc.stderr.replace(fatal + "\n", "").count("Fatal Python error: Aborted") == 1
  assert fatal in open(tmp_path / "run" / "log.txt").read()


@pytest.mark.slow
def test_verbosity_or_the_switch_brings_everything_back(tmp_path):
  for verbosity, switch in (("0", "0"), ("None", "1")):
    proc, log = _run(tmp_path / f"{verbosity}{switch}", verbosity, switch)
    for needle in ("native before install\n", "Using config: {'_model_dir': ...}",
                 "Instructions for updating:", GRAPPLER,
                   "a TensorFlow error", "skipped record 1 (corrupt_image)"):
      assert needle in proc.stderr, (verbosity, switch, needle)
    assert proc.stderr.count("Using config") == 1  # once: TF's own handler no longer doubles it
    assert "Using config" in log
  proc, _ = _run(tmp_path / "warning", "-1", "0")
  assert "Instructions for updating:" in proc.stderr and "Using config" not in proc.stderr
