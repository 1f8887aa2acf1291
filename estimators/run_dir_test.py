"""Every file a run writes is committed atomically (README, "The run directory").

Each writer is made to fail at its commit (`os.replace` / `os.rename` raise, as if the process
died after writing its temporary and before renaming it): the run directory must then hold
exactly what it held before, byte for byte: the old file (or none), no torn file, no temporary
left behind. A writer that bypassed the temporary-and-rename path would change the target and
fail these tests.
"""
import os

import numpy as np
import pytest

from data import bad_records
from estimators import experiment, export, run_dir
from estimators.testing import tiny_config
from eval import metrics_log, real_stats_cache


def _snapshot(directory):
  """{relative path: bytes} of every file under `directory`, hidden ones included."""
  files = {}
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        files[os.path.relpath(path, directory)] = f.read()
  return files


@pytest.fixture
def commit_fails(monkeypatch):
  """Makes every rename raise; returns the targets whose commit was attempted."""
  attempted = []

  def fail(src, dst, *args, **kwargs):
    del src, args, kwargs
    attempted.append(os.path.basename(os.path.normpath(dst)))
    raise OSError("injected: the process died before the rename")

  def arm():
    monkeypatch.setattr(os, "replace", fail)
    monkeypatch.setattr(os, "rename", fail)
    return attempted
  return arm


def test_run_config_is_old_or_new_never_torn(tmp_path, commit_fails):
  run_dir.write_run_config(str(tmp_path), {"max_steps": 10})
  before = _snapshot(tmp_path)
  attempted = commit_fails()
  with pytest.raises(OSError, match="injected"):
    run_dir.write_run_config(str(tmp_path), {"max_steps": 20})  # keeps the old as run_config.1
  assert attempted == ["run_config.1.json"]
  assert _snapshot(tmp_path) == before


def test_metrics_jsonl_keeps_its_old_lines_when_an_append_fails(tmp_path, commit_fails):
  path = str(tmp_path / "metrics.jsonl")
  metrics_log.append_jsonl(path, {"step": 0, "metrics": {"fid": 3.0}})
  metrics_log.append_jsonl(path, {"step": 10, "metrics": {"fid": 2.0}})
  before = _snapshot(tmp_path)
  attempted = commit_fails()
  with pytest.raises(OSError, match="injected"):
    metrics_log.append_jsonl(path, {"step": 20, "metrics": {"fid": 1.0}})
  assert attempted == ["metrics.jsonl"]
  assert _snapshot(tmp_path) == before
  assert [r["step"] for r in metrics_log.read_jsonl(path)] == [0, 10]


def test_sample_png_is_old_or_new_never_torn(tmp_path, commit_fails):
  path = str(tmp_path / "samples" / "step_00000010.png")
  run_dir.write_png(path, np.zeros([8, 8, 3], np.float32))
  before = _snapshot(tmp_path)
  attempted = commit_fails()
  with pytest.raises(OSError, match="injected"):
    run_dir.write_png(path, np.ones([8, 8, 3], np.float32))
  assert attempted == ["step_00000010.png"]
  assert _snapshot(tmp_path) == before


def test_bad_records_report_is_old_or_new_never_torn(tmp_path, commit_fails):
  bad_records.write_report(str(tmp_path), counts={})
  before = _snapshot(tmp_path)
  attempted = commit_fails()
  with pytest.raises(OSError, match="injected"):
    bad_records.write_report(str(tmp_path), counts={"digits": {"corrupt image": 2}},
                             examples={})
  assert attempted == ["bad_records.json"]
  assert _snapshot(tmp_path) == before


def _stats():
  rng = np.random.RandomState(0)
  return real_stats_cache.RealStats(5, rng.normal(size=3), np.eye(3),
                                    rng.normal(size=(4, 3)).astype(np.float32))


def test_real_stats_cache_is_whole_or_absent(tmp_path, commit_fails):
  key = {"dataset": "toy", "split": "train", "num_real_samples_requested": 5}
  attempted = commit_fails()
  with pytest.raises(OSError, match="injected"):
    real_stats_cache.load_or_compute(str(tmp_path), key, _stats)
  assert attempted == [os.path.basename(real_stats_cache.cache_path(str(tmp_path), key))]
  assert _snapshot(tmp_path) == {}
  # A torn file left by some older crash is recomputed, not read: real_stats_cache_test.


@pytest.mark.slow
def test_export_keeps_the_old_saved_model_whole_when_a_new_export_fails(tmp_path, commit_fails,
                                                                       monkeypatch):
  cfg = tiny_config(tmp_path / "run", max_steps=1, save_checkpoints_steps=1)
  ckpt = experiment.run_train(cfg)
  root = str(tmp_path / "run" / "export")
  first = export.export_saved_model(cfg, ckpt, root)
  before = _snapshot(root)
  assert "1/saved_model.pb" in before
  attempted = commit_fails()
  with pytest.raises(OSError, match="injected"):
    export.export_saved_model(cfg, ckpt, root)
  assert attempted  # the new export got as far as its commit
  assert _snapshot(root) == before  # the old SavedModel, every file of it; no temporary
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  serve = tf.saved_model.load(first).signatures["serving_default"]
  assert serve(noise=tf.zeros([1, 16]), labels=tf.constant([3]))["images"].shape == (1, 32, 32, 3)
  monkeypatch.undo()  # renames work again: re-exporting the same step replaces it cleanly
  assert export.export_saved_model(cfg, ckpt, root) == first
  assert sorted(os.listdir(root)) == ["1"]


def test_resume_point_is_the_latest_checkpoints_global_step(tmp_path):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  assert run_dir.resume_point(str(tmp_path)) is None
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    saver = tf.compat.v1.train.Saver()
    with tf.compat.v1.Session() as sess:
      sess.run(step.initializer)
      sess.run(step.assign(7))
      saver.save(sess, str(tmp_path / "model.ckpt"), global_step=5)  # the name says 5
  assert run_dir.resume_point(str(tmp_path)) == (7, str(tmp_path / "model.ckpt-5"))
