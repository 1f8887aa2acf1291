"""Every mode on runs imported from TF-GAN's SAGAN and the YLG code's checkpoints (issue #23).

The checkpoints are written once per module by sagan_import_test.write_checkpoint (TF-GAN's own
example networks at 128 px, tiny widths; YLG's graph with the widths its 8 heads need) and
imported once; each test works on those directories, or on a copy when it trains.
"""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from estimators.models import sagan_import_test
from tests.imported_runs import check_trained_on, draw_every_figure, evaluate, run_mode, train_on

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:`tf.layers")]
STEP = sagan_import_test.STEP


def _import(tmp_path_factory, name, **kwargs):
  root = str(tmp_path_factory.mktemp("release") / name)
  sagan_import_test.write_checkpoint(root, **kwargs)
  model_dir = str(tmp_path_factory.mktemp("imported") / name)
  run_mode("--mode=import_weights", f"--import_from={root}", f"--model_dir={model_dir}")
  return model_dir


@pytest.fixture(name="sagan", scope="module")
def _sagan(tmp_path_factory):
  return _import(tmp_path_factory, "tfgan")


@pytest.fixture(name="ylg", scope="module")
def _ylg(tmp_path_factory):
  return _import(tmp_path_factory, "ylg", gf=16, df=32, ylg=True)


def test_train_continues_from_the_imported_weights_with_fresh_optimiser_state(sagan, tmp_path):
  model_dir = str(tmp_path / "run")
  imported, step, console = train_on(sagan, model_dir, "--batch_size=2")
  assert step == STEP and f"resuming from step {STEP}: " in console
  _, line = check_trained_on(imported, model_dir, step, console)
  assert "not released" not in line and "outside G and D" not in line and "other train" not in line
  record = json.load(open(os.path.join(model_dir, "imported.json")))
  assert record["training_start"]["checkpoint"] == f"train_start.ckpt-{STEP}"
  # A second rerun resumes from the run's own checkpoint: nothing is completed again.
  console = run_mode("--mode=train", f"--model_dir={model_dir}", f"--max_steps={STEP + 3}")
  assert "training on from the imported" not in console
  assert f"resuming from step {STEP + 2}: " in console


def test_eval_sample_attention_maps_interpolate_export(sagan, tmp_path):
  record = evaluate(sagan, tmp_path)
  assert record["step"] == STEP
  for name in ("inception_score", "fid", "kid_mean", "digits_fid"):
    assert np.isfinite(record["metrics"][name]), name
  draw_every_figure(sagan, tmp_path, "--interpolate_between=classes")
  path = run_mode("--mode=export", f"--model_dir={sagan}").split("SavedModel: ", 1)[1].strip()
  loaded = tf.saved_model.load(path)
  assert sorted(loaded.signatures) == ["attention", "class_mixture", "serving_default"]
  noise = tf.constant(np.random.RandomState(0).standard_normal((2, sagan_import_test.Z)),
                      tf.float32)
  labels = tf.constant([3, 7])
  images = loaded.signatures["serving_default"](noise=noise, labels=labels)["images"]
  assert images.shape == (2, 128, 128, 3)
  np.testing.assert_allclose(loaded.signatures["attention"](noise=noise, labels=labels)["images"],
                             images, atol=1e-5)
  mixed = loaded.signatures["class_mixture"](noise=noise,
                                             class_weights=tf.one_hot(labels, 10))["images"]
  np.testing.assert_allclose(mixed, images, atol=1e-5)


@pytest.mark.parametrize("recipe", ["paper", "official"])
def test_ylg_inverts_with_either_recipe(ylg, tmp_path, recipe):
  out_dir = tmp_path / recipe
  run_mode("--mode=invert", f"--model_dir={ylg}", "--invert_image=digits:test:0",
           f"--invert_recipe={recipe}", "--invert_steps=2", "--invert_restarts=1",
           f"--sample_dir={out_dir}")
  record = json.load(open(out_dir / "inversion.json"))
  assert record["settings"]["recipe"] == recipe and record["settings"]["step"] == STEP
  assert record["settings"]["model"] == "ylg_sagan"
  for method in ("attention", "pixel", "weighted_pixel"):
    assert os.path.isfile(out_dir / f"inversion_{method}.png"), method


def test_ylg_attention_maps(ylg, tmp_path):
  out = run_mode("--mode=attention_maps", f"--model_dir={ylg}", "--num_samples=1",
                 f"--sample_dir={tmp_path / 'maps'}")
  assert out.startswith("attention maps: ") and os.listdir(tmp_path / "maps")
