"""run.py end to end, as a user runs it: flag validation, the full cycle, kill -9 and resume."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.run_process import run_py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--gf_dim=8", "--df_dim=8", "--z_dim=16", "--batch_size=8", "--num_eval_samples=200",
        "--save_summary_steps=10"]


def python_run_py(*args, timeout=600):
  """`python run.py *args` in a new interpreter, exactly as a user types it (run_py forks the
  same __main__ from a server that imported run.py once; this proves the two agree)."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "run.py"), *args], cwd=ROOT,
                        env=env, capture_output=True, text=True, timeout=timeout)
  assert proc.returncode == 0, f"run.py {args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
  return proc


def dry_run_config(proc):
  """The resolved configuration --dry_run prints first (a parameter table follows it)."""
  config, _ = json.JSONDecoder().raw_decode(proc.stdout)
  return config


@pytest.mark.parametrize("args,message", [
    (["--dataset=nope"], "unknown dataset 'nope'"),
    (["--batch_size=0"], "--batch_size must be a positive integer"),
    (["--max_steps=-3"], "--max_steps must be a positive integer"),
    (["--attention_resolution=32"], "choose one of (8, 16)"),
    (["--image_size=48"], "--image_size must be one of [32, 64, 128]"),
    (["--data_dir=/nonexistent/dir"], "does not exist"),
    (["--data_dir=ram://nonexistent/dir"], "does not exist"),  # remote paths: tf.io.gfile
    (["--ema_decay=1.5"], "--ema_decay must be in [0, 1)"),
    (["--inception_path=/nonexistent"], "--inception_path must be a directory holding"),
    (["--model=ylg_sagan"], "8 head(s) need multiples of 64"),
    (["--mode=eval"], "error: checkpoint"),  # nothing trained yet: a message, not a traceback
    (["--distribution=multi_worker"], "--distribution=multi_worker trains (--mode=train"),
    (["--use_tpu", "--distribution=mirrored"], "takes no --distribution"),
    (["--num_devices=2"], "--num_devices applies to --distribution=mirrored only"),
    (["--mode=train", "--distribution=mirrored", "--num_devices=64"],
     "error: --num_devices=64 but only"),
    (["--mode=train", "--distribution=multi_worker"], "error: --distribution=multi_worker needs "
                                                      "TF_CONFIG"),
    (["--mode=train", "--engine=gan_estimator", "--distribution=one_device"],
     "error: --engine=gan_estimator trains on one device"),
    # A training step the engine cannot run, or that is no step (estimators/engines/training_step.py)
    (["--mode=train", "--use_tpu"], "error: --use_tpu: TF-GAN's tpu_gan_estimator cannot run "
                                    "this model's training step: --step_order=generator_first"),
    (["--step_fakes=shared"], "error: --step_fakes=shared is AttnGAN's step"),
    (["--adam_epsilon=0"], "--adam_epsilon must be positive"),
])
def test_bad_flags_fail_at_start_with_a_clear_message(tmp_path, args, message):
  proc = run_py(f"--model_dir={tmp_path}/run", *args, check=False, timeout=300)  # hang guard
  assert proc.returncode != 0
  assert message in proc.stderr + proc.stdout
  assert not os.path.exists(tmp_path / "run")  # nothing built, nothing written


def test_data_options_are_typed_checked_at_start_and_recorded(tmp_path):
  common = ["--dataset=image_folder", f"--data_dir={tmp_path}", f"--model_dir={tmp_path}/run"]
  proc = run_py(*common, "--data_options=crop_size=140,resize_method=area,"
                "jpeg_downscale=false", "--dry_run")
  config = json.loads(proc.stdout)  # stdout is the JSON alone; the parameter table is on stderr
  assert "| generator | 373,892 | 376,503 |" in proc.stderr  # unconditional: image folders
  # Every option with its resolved value, defaults included.
  assert config["data_options"] == [
      ["cache", False], ["crop_size", 140], ["index_dir", None], ["jpeg_downscale", False],
      ["resize_method", "area"], ["resize_to_square", False], ["shuffle", None],
      ["shuffle_buffer_mb", 512]]
  for options, message in [
      ("crop_size=big", "--data_options: dataset option crop_size='big': expected int or none"),
      ("source=tfds", "--data_options: dataset 'image_folder' takes no option 'source'; its own "
                      "options: cache, crop_size, index_dir, jpeg_downscale, resize_method, "
                      "resize_to_square, shuffle"),
      ("crop_size", "--data_options takes key=value pairs, got 'crop_size'")]:
    proc = run_py(*common, f"--data_options={options}", check=False, timeout=120)
    assert proc.returncode != 0 and message in proc.stderr, (options, proc.stderr[-500:])
  assert not os.path.exists(tmp_path / "run")


def test_default_flagfile_matches_the_builtin_defaults():
  with_file = dry_run_config(run_py("--flagfile=configs/digits.cfg", "--dry_run"))
  builtin = dry_run_config(run_py("--dry_run"))
  typed = python_run_py("--dry_run")  # the same command in an interpreter of its own
  assert with_file == builtin == dry_run_config(typed)
  assert typed.stderr.splitlines()[-4:] == run_py("--dry_run").stderr.splitlines()[-4:]  # table
  assert builtin["dataset"] == "digits" and builtin["num_classes"] == 10


def _flagfile_values(path):
  """{flag name: value} of a flagfile's --name=value lines, values typed as absl parses them."""
  values = {}
  for line in open(path, encoding="utf-8"):
    line = line.strip()
    if not line or line.startswith("#"):
      continue
    name, _, text = line[2:].partition("=")
    if text in ("true", "false"):
      values[name] = text == "true"
    else:
      for kind in (int, float, str):
        try:
          values[name] = kind(text)
          break
        except ValueError:
          pass
  return values


CONFIGS = sorted(f for f in os.listdir(os.path.join(ROOT, "configs")) if f.endswith(".cfg"))


def test_configs_directory_holds_the_paper_configs():
  assert {"digits.cfg", "sagan_imagenet128.cfg", "ylg_sagan_imagenet128.cfg"} <= set(CONFIGS)


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_parses_validates_and_resolves_to_its_own_values(tmp_path, name):
  """A renamed or retyped flag, or a value validation now refuses, breaks the config here."""
  path = os.path.join("configs", name)
  values = _flagfile_values(os.path.join(ROOT, path))
  proc = run_py(f"--flagfile={path}", f"--data_dir={tmp_path}", "--dry_run", check=False,
                timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  resolved = dry_run_config(proc)
  assert resolved["model"]["name"] == values.pop("model")
  values.pop("mode")  # a run.py flag, not part of the run's configuration
  assert len(values) > 15
  given_options = values.pop("data_options", "")
  resolved_options = dict(resolved["data_options"])  # every loader option, defaults included
  for pair in filter(None, given_options.split(",")):
    key, _, text = pair.partition("=")
    value = {"true": True, "false": False}.get(text, text)
    assert resolved_options[key] == value, (name, key, resolved_options[key], value)
  for flag, value in values.items():
    where = resolved if flag in resolved else resolved["model"]["hparams"]
    assert flag in where, f"{name}: --{flag} is not in the resolved configuration"
    assert where[flag] == value, (name, flag, where[flag], value)


@pytest.mark.slow
def test_train_eval_export_reload_sample_cycle(tmp_path):
  model_dir = tmp_path / "run"
  proc = run_py(f"--model_dir={model_dir}", "--max_steps=20", "--eval_every_steps=10",
                "--save_checkpoints_steps=10", *TINY)
  assert "SavedModel:" in proc.stdout and "digits_fid" in proc.stdout
  records = [json.loads(l) for l in open(model_dir / "metrics.jsonl")]
  assert [r["step"] for r in records] == [0, 10, 20]
  for r in records:
    assert np.isfinite(r["metrics"]["digits_fid"]) and r["metrics"]["digits_fid"] > 0
    assert r["metrics"]["digits_score"] >= 1.0
    assert r["protocol"]["num_generated"] == 200 and r["protocol"]["checkpoint_step"] == r["step"]
  config = json.load(open(model_dir / "run_config.json"))
  assert config["config"]["model"] == {"name": "sagan", "hparams": {
      "z_dim": 16, "gf_dim": 8, "df_dim": 8, "attention_resolution": 16,
      "attention_type": "self_attention", "bn_decay": 0.99, "sn_update_in_eval": False,
      "bn_inference": "moving", "sn_bound": "paper", "num_heads": 1}}
  assert "tensorflow-gan" in config["versions"]
  assert json.load(open(model_dir / "bad_records.json"))["total_skipped"] == 0  # said, not implied
  assert sorted(os.listdir(model_dir / "samples")) == [
      "step_00000000.png", "step_00000010.png", "step_00000020.png"]
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(model_dir))
  export_dir = model_dir / "export" / "20"
  assert (export_dir / "saved_model.pb").exists()

  cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
  shown = subprocess.run([cli, "show", "--all", "--dir", str(export_dir)], capture_output=True,
                         text=True, check=True).stdout
  for needle in ("serving_default", "noise", "labels", "images", "(-1, 16)", "(-1, 32, 32, 3)"):
    assert needle in shown

  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from estimators.experiment import run_sample  # pylint: disable=import-outside-toplevel
  from estimators import export  # pylint: disable=import-outside-toplevel
  from estimators.config import GANConfig  # pylint: disable=import-outside-toplevel
  serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
  noise = tf.random.stateless_normal([5, 16], seed=[1, 2])
  labels = tf.constant([0, 3, 5, 7, 9])
  images = serve(noise=noise, labels=labels)["images"].numpy()
  assert images.shape == (5, 32, 32, 3) and np.abs(images).max() <= 1.0
  from estimators.models.sagan import SAGANHParams  # pylint: disable=import-outside-toplevel
  cfg = GANConfig(model_dir=str(model_dir), image_size=32, hparams=SAGANHParams(
      gf_dim=8, df_dim=8, z_dim=16, attention_resolution=16, bn_decay=0.99))
  eager = export.restore_generator(cfg, str(model_dir / "model.ckpt-20"))
  np.testing.assert_allclose(eager(noise, labels).numpy(), images, atol=1e-5)

  out = tmp_path / "samples"
  run_py(f"--model_dir={model_dir}", "--mode=sample", f"--saved_model={export_dir}",
         "--num_samples=7", f"--sample_dir={out}", "--truncation=1.0", *TINY)
  assert len([f for f in os.listdir(out) if f.endswith(".png")]) == 8  # 7 + grid
  again, _ = run_sample(cfg, 7, out_dir=str(tmp_path / "again"), saved_model=str(export_dir),
                        truncation=1.0)
  from PIL import Image  # pylint: disable=import-outside-toplevel
  np.testing.assert_array_equal(np.asarray(Image.open(out / "000003.png")),
                                np.asarray(Image.open(os.path.join(again, "000003.png"))))


# run.py in a process that SIGKILLs itself inside the estimator's save of step 10: after the
# checkpoint's data and index are written, before the `checkpoint` file names it.
KILLED_IN_SAVE = """
import os, runpy, signal, sys
from tensorflow.python.checkpoint import checkpoint_management as cm
real_update = cm.update_checkpoint_state_internal
def update(*args, **kwargs):
  if kwargs["model_checkpoint_path"].endswith("-10"):
    os.kill(os.getpid(), signal.SIGKILL)
  return real_update(*args, **kwargs)
cm.update_checkpoint_state_internal = update
sys.argv = ["run.py"] + sys.argv[1:]
runpy.run_path("run.py", run_name="__main__")
"""


def _weights(checkpoint):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  reader = tf.train.load_checkpoint(checkpoint)
  return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
          if n.startswith(("Generator/", "Discriminator/"))}


@pytest.mark.slow
@pytest.mark.parametrize("kill_point", ["mid_step", "checkpoint_save"])
def test_sigkill_mid_training_then_rerun_resumes_from_last_checkpoint(tmp_path, kill_point):
  """SIGKILL at a random point of training, or inside a checkpoint save; the same command then
  restores the last checkpoint the `checkpoint` file names (its step in the log, its weights
  at restore), trains on from it, and no partial file is left behind or read."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  model_dir = tmp_path / "run"
  args = [f"--model_dir={model_dir}", "--mode=train", "--save_checkpoints_steps=5", *TINY]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  log = open(tmp_path / "killed_run.log", "w")
  command = ([sys.executable, "run.py"] if kill_point == "mid_step"
             else [sys.executable, "-c", KILLED_IN_SAVE])
  proc = subprocess.Popen([*command, *args, "--max_steps=100000"], cwd=ROOT, env=env,
                          stdout=log, stderr=subprocess.STDOUT)
  deadline = time.time() + 400
  step = 0
  while time.time() < deadline and step < 10 and proc.poll() is None:
    time.sleep(0.5)
    latest = tf.train.latest_checkpoint(str(model_dir))
    if latest:
      step = int(latest.rsplit("-", 1)[1])
  if kill_point == "mid_step":
    exited_early = proc.poll()
    proc.send_signal(signal.SIGKILL)
  else:
    exited_early = None
    proc.wait(timeout=max(1, deadline - time.time()))
  proc.wait()
  log.close()
  output = open(tmp_path / "killed_run.log").read()[-3000:]
  assert exited_early is None and proc.returncode == -signal.SIGKILL, (proc.returncode, output)
  killed_at = int(tf.train.latest_checkpoint(str(model_dir)).rsplit("-", 1)[1])
  if kill_point == "mid_step":
    assert step >= 10 and killed_at >= 10, (step, output)
  else:  # step 10's files were written, but the checkpoint file still names step 5
    assert killed_at == 5 and os.path.exists(model_dir / "model.ckpt-10.index"), output
  assert json.load(open(model_dir / "run_config.json"))["config"]["max_steps"] == 100000
  before = _weights(str(model_dir / f"model.ckpt-{killed_at}"))
  assert len(before) > 20

  target = killed_at + 5
  rerun = run_py(*args, f"--max_steps={target}", "--verbosity=0")
  restored = {line.rsplit(" ", 1)[-1] for line in (rerun.stderr + rerun.stdout).splitlines()
              if "Restoring parameters from" in line}  # (logged by TF and again by absl)
  assert restored == {f"{model_dir}/model.ckpt-{killed_at}"}, restored
  # The rerun's saver writes the restored weights again at its first step: they are the ones
  # the checkpoint held before the kill.
  after_restore = _weights(str(model_dir / f"model.ckpt-{killed_at}"))
  assert sorted(after_restore) == sorted(before)
  for name, value in before.items():
    np.testing.assert_array_equal(after_restore[name], value, err_msg=name)
  latest = tf.train.latest_checkpoint(str(model_dir))
  reader = tf.train.load_checkpoint(latest)
  assert int(reader.get_tensor("global_step")) == target  # continued, did not restart at 0
  moved = _weights(latest)
  assert max(np.abs(moved[n] - before[n]).max() for n in before) > 1e-4  # and trained on
  assert os.path.exists(model_dir / "run_config.1.json")  # the earlier config is kept
  for root, dirs, files in os.walk(model_dir):  # no temporary of TF's saver or of ours
    for name in dirs + files:
      assert "_temp" not in name and not name.endswith(".tmp"), os.path.join(root, name)


@pytest.mark.slow
def test_image_folder_run_with_corrupt_file_and_standin_inception(tmp_path):
  """Unconditional SAGAN on files: one corrupt PNG is skipped and reported; Inception metrics
  come from a stand-in module given as --inception_path (its numbers mean nothing)."""
  from data import format_writers  # pylint: disable=import-outside-toplevel
  from eval.standin_classifier import save_standin_module  # pylint: disable=import-outside-toplevel
  images = tmp_path / "faces"
  for i in range(12):
    format_writers.write_bytes(str(images / f"{i:02d}.png"),
                               format_writers.png_bytes(format_writers.smooth_image(40, 48, i)))
  format_writers.write_bytes(str(images / "99_truncated.png"), b"\x89PNG\r\n\x1a\n broken")
  module = save_standin_module(str(tmp_path / "inception"))
  model_dir = tmp_path / "run"
  proc = run_py(f"--model_dir={model_dir}", "--dataset=image_folder", f"--data_dir={images}",
                "--max_steps=4", "--eval_every_steps=4", "--save_checkpoints_steps=4",
                f"--inception_path={module}", "--num_eval_samples=20",
                "--num_real_eval_samples=12", "--eval_feature_subset=10", "--eval_batch_size=10",
                f"--real_stats_cache_dir={tmp_path / 'stats'}", "--data_options=crop_size=36",
                *TINY[:4])
  assert "SavedModel:" in proc.stdout
  report = json.load(open(model_dir / "bad_records.json"))
  assert report["total_skipped"] == 1
  records = [json.loads(l) for l in open(model_dir / "metrics.jsonl")]
  assert [r["step"] for r in records] == [0, 4]
  assert "digits_fid" not in records[-1]["metrics"]
  assert np.isfinite(records[-1]["metrics"]["fid"])
  assert records[-1]["protocol"]["num_real"] == 12  # the corrupt file is not among them
  assert records[-1]["protocol"]["classifier_source"].startswith("inception_path:")
  (stats_file,) = [f for f in os.listdir(tmp_path / "stats") if f.endswith(".npz")]
  key = json.loads(str(np.load(tmp_path / "stats" / stats_file)["key_json"]))
  assert key["data_options"] == {"crop_size": 36}   # what shapes the real images keys their stats
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  serve = tf.saved_model.load(str(model_dir / "export" / "4")).signatures["serving_default"]
  assert list(serve.structured_input_signature[1]) == ["noise"]  # unconditional: no labels
  assert serve(noise=tf.zeros([2, 16]))["images"].shape == (2, 32, 32, 3)


@pytest.mark.slow
def test_strict_data_stops_at_the_corrupt_file_with_one_error_line(tmp_path):
  from data import format_writers  # pylint: disable=import-outside-toplevel
  images = tmp_path / "faces"
  format_writers.image_folder_with_a_corrupt_png(str(images))
  proc = run_py(f"--model_dir={tmp_path / 'run'}", "--dataset=image_folder",
                f"--data_dir={images}", "--mode=train", "--max_steps=2", "--strict_data",
                *TINY[:4], check=False)
  assert proc.returncode != 0
  last = proc.stderr.strip().splitlines()[-1]
  assert last == (f"error: image_folder/train: corrupt or unreadable image: {images}/"
                  "03_truncated.png. Strict data mode (--strict_data) stops at the first bad "
                  "record; without it such records are skipped, counted and reported in "
                  "bad_records.json."), last
  assert "Traceback" not in proc.stderr
