"""The modes' evaluation side: train_and_eval records, best checkpoint, Inception path, watcher."""
import json
import os
import time

import numpy as np
import pytest
import tensorflow as tf

from estimators import experiment, export
from estimators.testing import tiny_config
from eval.inception import InceptionUnavailableError
from eval.standin_classifier import save_standin_module

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


def test_unreachable_inception_fails_in_seconds_before_training(tmp_path):
  cfg = tiny_config(tmp_path / "run", inception_path=str(tmp_path / "missing"))
  start = time.time()
  with pytest.raises(InceptionUnavailableError, match="inception_path"):
    experiment.run_train_and_eval(cfg)
  assert time.time() - start < 30
  assert tf.train.latest_checkpoint(cfg.model_dir) is None


def test_continuous_eval_evaluates_each_new_checkpoint_once(tmp_path):
  cfg = tiny_config(tmp_path / "run", max_steps=10, save_checkpoints_steps=5, num_eval_samples=100)
  experiment.run_train(cfg)
  records = experiment.run_continuous_eval(cfg, timeout_secs=2, log=lambda _: None)
  assert [r["step"] for r in records] == [10]  # the iterator starts at the latest checkpoint
  assert experiment.run_continuous_eval(cfg, timeout_secs=2, log=lambda _: None) == []


def test_eval_of_an_exported_saved_model_matches_its_checkpoint(run):
  cfg, _ = run
  saved_model = experiment.run_export(cfg, checkpoint=os.path.join(cfg.model_dir, "model.ckpt-20"))
  from_ckpt = experiment.run_eval(cfg, checkpoint=os.path.join(cfg.model_dir, "model.ckpt-20"))
  from_saved = experiment.run_eval(cfg, saved_model=saved_model)
  assert from_saved["step"] is None and from_saved["protocol"]["source"] == saved_model
  # Same weights, same evaluation noise: the same numbers up to float rounding.
  assert from_saved["metrics"]["digits_fid"] == pytest.approx(
      from_ckpt["metrics"]["digits_fid"], rel=1e-4)
