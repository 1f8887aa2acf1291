"""The modes' evaluation side: train_and_eval records, best checkpoint, Inception path, watcher."""
import json
import os
import threading
import time

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.training import checkpoint_utils  # pylint: disable=g-direct-tensorflow-import

from estimators import experiment, export
from estimators.testing import tiny_config
from eval.inception import InceptionUnavailableError
from eval.metrics_log import read_jsonl
from eval.standin_classifier import save_standin_module
from tests.run_process import run_py

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  cfg = tiny_config(tmp_path_factory.mktemp("exp") / "run")
  records = experiment.run_train_and_eval(cfg, log=lambda _: None)
  return cfg, records


def test_train_and_eval_records_every_interval_and_keeps_the_best(run):
  cfg, records = run
  assert [r["step"] for r in records] == [0, 10, 20]
  lines = [json.loads(l) for l in open(os.path.join(cfg.model_dir, "metrics.jsonl"))]
  assert [l["metrics"]["digits_fid"] for l in lines] == [r["metrics"]["digits_fid"] for r in records]
  assert lines[0]["protocol"]["ema_weights"] is False and lines[0]["protocol"]["seed"] == 1000
  best = json.load(open(os.path.join(cfg.model_dir, "best_checkpoint", "best.json")))
  fids = {l["step"]: l["metrics"]["digits_fid"] for l in lines}
  assert best["metric"] == "digits_fid" and best["step"] == min(fids, key=fids.get)
  assert best["value"] == fids[best["step"]]
  ckpt = tf.train.latest_checkpoint(os.path.join(cfg.model_dir, "best_checkpoint"))
  assert export.checkpoint_step(ckpt) == best["step"]
  export.restore_generator(cfg, ckpt)  # a complete, loadable checkpoint


def test_inception_metrics_next_to_digits_metrics_with_cached_real_stats(run, tmp_path):
  cfg, _ = run
  module = save_standin_module(str(tmp_path / "standin_inception"))
  cfg = cfg.replace(inception_path=module, num_eval_samples=100, num_real_eval_samples=120,
                    eval_feature_subset=50, real_stats_cache_dir=str(tmp_path / "real_stats"))
  first = experiment.run_eval(cfg, checkpoint=os.path.join(cfg.model_dir, "model.ckpt-20"))
  for name in ("digits_fid", "digits_score", "fid", "inception_score",
               "inception_score_10split_mean", "inception_score_10split_std", "kid_mean",
               "precision_k3", "recall_k3"):
    assert first["metrics"][name] is not None and np.isfinite(first["metrics"][name]), name
  protocol = first["protocol"]
  assert protocol["num_generated"] == 100 and protocol["num_real"] == 120
  assert protocol["checkpoint_step"] == 20 and protocol["real_split"] == "train"
  assert protocol["is_splits"] == 10 and protocol["real_stats_cached"] is False
  assert protocol["digits"]["num_generated"] == 100
  second = experiment.run_eval(cfg, checkpoint=os.path.join(cfg.model_dir, "model.ckpt-20"))
  assert second["protocol"]["real_stats_cached"] is True
  assert second["metrics"]["fid"] == pytest.approx(first["metrics"]["fid"], rel=1e-9)


def test_unreachable_inception_fails_before_training(tmp_path, monkeypatch):
  cfg = tiny_config(tmp_path / "run", inception_path=str(tmp_path / "missing"))
  trained = []
  monkeypatch.setattr(experiment, "run_train", lambda *args, **kwargs: trained.append(args))
  with pytest.raises(InceptionUnavailableError, match="inception_path"):
    experiment.run_train_and_eval(cfg)
  assert trained == []  # not a single training chunk before the failure
  assert tf.train.latest_checkpoint(cfg.model_dir) is None


def test_missing_stackgan_inception_fails_before_training(tmp_path, monkeypatch):
  from eval.stackgan_inception import StackGANInceptionUnavailableError  # pylint: disable=import-outside-toplevel
  cfg = tiny_config(tmp_path / "run", is_classifier="stackgan_cub",
                    stackgan_inception_checkpoint=str(tmp_path / "model.ckpt-5000"))
  trained = []
  monkeypatch.setattr(experiment, "run_train", lambda *args, **kwargs: trained.append(args))
  with pytest.raises(StackGANInceptionUnavailableError, match="model.ckpt-5000.index"):
    experiment.run_train_and_eval(cfg)
  assert trained == []


class _FakeClock:
  """time.time / time.sleep for tf.train.checkpoints_iterator: sleeping advances the clock."""

  def __init__(self):
    self.now, self.sleeps = 1000.0, []

  def time(self):
    return self.now

  def sleep(self, seconds):
    self.sleeps.append(seconds)
    self.now += seconds


def _fake_checkpoint_clock(monkeypatch):
  clock = _FakeClock()
  monkeypatch.setattr(checkpoint_utils, "time", clock)  # the module's only clock and sleep
  return clock


def test_continuous_eval_evaluates_each_new_checkpoint_once(tmp_path, monkeypatch):
  """The watcher starts before any checkpoint exists and training writes them while it runs
  (run.py in a process of its own: step 5, then, once the watcher has evaluated it, step 10; Keras layers
  cannot be built in graph mode in one thread while another uses them eagerly); a restarted
  watcher repeats nothing and stops after the timeout when no checkpoint comes."""
  cfg = tiny_config(tmp_path / "run", max_steps=10, save_checkpoints_steps=5,
                    num_eval_samples=100, eval_timeout_secs=300)
  metrics_file = os.path.join(cfg.model_dir, "metrics.jsonl")
  trainer_error = []

  def train_to(step):
    proc = run_py(f"--model_dir={cfg.model_dir}", "--mode=train", f"--max_steps={step}",
                  "--save_checkpoints_steps=5", "--gf_dim=8", "--df_dim=8", "--z_dim=16",
                  "--batch_size=8", "--attention_resolution=16", timeout=300, check=False)
    if proc.returncode:
      trainer_error.append(proc.stderr[-3000:])

  def train():
    train_to(5)
    deadline = time.time() + 200
    while time.time() < deadline and 5 not in {r["step"] for r in read_jsonl(metrics_file)}:
      time.sleep(0.5)
    train_to(10)
  trainer = threading.Thread(target=train)
  trainer.start()
  records = experiment.run_continuous_eval(cfg, log=lambda _: None)
  trainer.join()
  assert not trainer_error, trainer_error
  steps = [r["step"] for r in records]
  # Checkpoints 0 and 5 come from one chunk: the watcher may or may not see 0 before 5.
  assert steps in ([5, 10], [0, 5, 10]), steps
  assert [r["step"] for r in read_jsonl(metrics_file)] == steps  # each evaluated once

  clock = _fake_checkpoint_clock(monkeypatch)
  again = experiment.run_continuous_eval(cfg.replace(max_steps=20), timeout_secs=3,
                                         log=lambda _: None)
  # The checkpoint already seen is yielded (not evaluated again), the 1 s minimum interval
  # passes, then 1 s polls until the next would pass the 3 s timeout.
  assert again == [] and clock.sleeps == [1, 1, 1, 1], (again, clock.sleeps)
  assert [r["step"] for r in read_jsonl(metrics_file)] == steps


def test_continuous_eval_stops_at_the_timeout_when_no_checkpoint_appears(tmp_path, monkeypatch):
  cfg = tiny_config(tmp_path / "run", eval_timeout_secs=3)
  clock = _fake_checkpoint_clock(monkeypatch)
  assert experiment.run_continuous_eval(cfg, log=lambda _: None) == []
  assert clock.sleeps == [1, 1, 1]  # polls at 0, 1, 2, 3 s; the one at 4 s would pass the timeout


def test_truncated_samples_stay_within_the_threshold_and_repeat_with_the_seed(run, monkeypatch):
  cfg, _ = run
  drawn = []
  real_generate = export.generate

  def generate(generate_fn, inputs, batch_size=100):
    drawn.append(inputs)
    return real_generate(generate_fn, inputs, batch_size)
  monkeypatch.setattr(export, "generate", generate)
  out = os.path.join(cfg.model_dir, "truncated")
  _, first = experiment.run_sample(cfg, 40, out_dir=out + "_a", seed=5, truncation=0.5)
  _, again = experiment.run_sample(cfg, 40, out_dir=out + "_b", seed=5, truncation=0.5)
  _, other = experiment.run_sample(cfg, 40, out_dir=out + "_c", seed=6, truncation=0.5)
  noise = drawn[0]["noise"]
  assert noise.shape == (40, cfg.hparams.z_dim)
  assert np.abs(noise).max() <= 0.5
  # Resampled, not clipped: clipping would pile ~62% of the entries on +/-0.5 exactly; a normal
  # truncated at 0.5 has std 0.28 and ~2% of its mass within 0.01 of the bounds.
  assert np.mean(np.abs(noise) > 0.49) < 0.06
  assert 0.25 < noise.std() < 0.31
  np.testing.assert_array_equal(drawn[1]["noise"], noise)
  np.testing.assert_array_equal(drawn[1]["labels"], drawn[0]["labels"])
  np.testing.assert_array_equal(again, first)
  assert np.abs(other - first).max() > 1e-3  # images of a barely trained G: small
  _, untruncated = experiment.run_sample(cfg, 40, out_dir=out + "_d", seed=5)
  assert np.abs(drawn[3]["noise"]).max() > 1.5  # without --truncation the tails are kept


def test_eval_of_an_exported_saved_model_matches_its_checkpoint(run):
  cfg, _ = run
  saved_model = experiment.run_export(cfg, checkpoint=os.path.join(cfg.model_dir, "model.ckpt-20"))
  from_ckpt = experiment.run_eval(cfg, checkpoint=os.path.join(cfg.model_dir, "model.ckpt-20"))
  from_saved = experiment.run_eval(cfg, saved_model=saved_model)
  assert from_saved["step"] is None and from_saved["protocol"]["source"] == saved_model
  # Same weights, same evaluation noise: the same numbers up to float rounding.
  assert from_saved["metrics"]["digits_fid"] == pytest.approx(
      from_ckpt["metrics"]["digits_fid"], rel=1e-4)
