"""Every mode on a run imported from LadaGAN's released checkpoint (issue #23 item 2).

The release is written once in the official layout (ladagan_import_test.write_release: 128 px,
the tiniest widths config.json allows, values that train) and imported once; each test works on
that directory, or on a copy when it writes checkpoints (train).
"""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from estimators.models import ladagan_import_test
from tests.imported_runs import (check_trained_on, draw_every_figure, evaluate, run_mode, step_of,
                                 train_on)

pytestmark = pytest.mark.slow


@pytest.fixture(name="imported", scope="module")
def _imported(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("release") / "ffhq_128")
  ladagan_import_test.write_release(root, trainable=True)
  model_dir = str(tmp_path_factory.mktemp("imported") / "run")
  run_mode("--mode=import_weights", f"--import_from={root}", f"--model_dir={model_dir}")
  return model_dir


def test_train_continues_from_the_imported_weights_with_fresh_optimiser_state(imported,
                                                                              tmp_path):
  imported_ckpt, step, console = train_on(imported, str(tmp_path / "run"), "--batch_size=2")
  assert step == ladagan_import_test.N_IMAGES // ladagan_import_test.CONFIG["batch_size"]
  assert f"resuming from step {step}: " in console
  after, line = check_trained_on(imported_ckpt, str(tmp_path / "run"), step, console)
  # LadaGAN's release holds every network variable: only the optimiser state starts fresh.
  assert line.endswith("(written as train_start.ckpt-160; imported.json 'training_start')")
  assert "not released" not in line and "outside G and D" not in line and "other train" not in line
  record = json.load(open(tmp_path / "run" / "imported.json"))
  assert record["training_start"]["step"] == step
  assert list(record["training_start"]["fresh"]) == [
      "optimiser state (Adam's moments of every trained variable, beta powers)"]
  # The EMA generator (what eval, sample and export read) moved too.
  key = "Generator/generator/to_rgb/kernel/ExponentialMovingAverage"
  assert not np.array_equal(after.get_tensor(key),
                            tf.train.load_checkpoint(imported_ckpt).get_tensor(key))


def test_eval_sample_attention_maps_interpolate(imported, tmp_path):
  record = evaluate(imported, tmp_path)
  assert record["step"] == 160
  for name in ("inception_score", "fid", "kid_mean", "digits_fid"):
    assert np.isfinite(record["metrics"][name]), name
  draw_every_figure(imported, tmp_path)


def test_export_serves_every_signature(imported):
  out = run_mode("--mode=export", f"--model_dir={imported}")
  path = out.split("SavedModel: ", 1)[1].strip()
  assert path == os.path.join(imported, "export", "160")
  loaded = tf.saved_model.load(path)
  assert sorted(loaded.signatures) == ["attention", "serving_default"]
  noise = tf.constant(np.random.RandomState(0).standard_normal((2, 16)), tf.float32)
  images = loaded.signatures["serving_default"](noise=noise)["images"]
  assert images.shape == (2, 128, 128, 3) and np.abs(images.numpy()).max() <= 1.0
  attention = loaded.signatures["attention"](noise=noise)
  np.testing.assert_allclose(attention["images"], images, atol=1e-5)
  assert len(attention) > 1  # the maps beside the images


def test_a_rerun_may_score_it_on_another_dataset(imported, tmp_path):
  """--dataset is not a network flag of LadaGAN: the released weights may be sampled (or
  trained, scored) with another dataset than the import's."""
  out = run_mode("--mode=sample", f"--model_dir={imported}", "--dataset=digits_captions",
                 "--num_samples=2", f"--sample_dir={tmp_path / 's'}")
  assert "2 PNGs in" in out and step_of(tf.train.latest_checkpoint(imported)) == 160
