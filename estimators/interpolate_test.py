"""Latent walks: slerp/lerp, the frames' inputs, endpoints equal to the endpoint seeds' and
classes' samples, the GIF's frame count, the SavedModel and checkpoint paths, run.py's flags."""
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from estimators import experiment, export, figures, interpolate
from estimators.models import get_model
from estimators.networks import make_generator
from estimators.testing import tiny_config
from tests.run_process import run_py


def test_slerp_keeps_ends_exact_and_moves_along_the_great_circle():
  rng = np.random.RandomState(0)
  a, b = rng.standard_normal(16).astype(np.float32), rng.standard_normal(16).astype(np.float32)
  np.testing.assert_array_equal(interpolate.slerp(a, b, 0.0), a)
  np.testing.assert_array_equal(interpolate.slerp(a, b, 1.0), b)
  angle = lambda u, v: np.arccos(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v))
  mid = interpolate.slerp(a, b, 0.25)
  np.testing.assert_allclose(angle(a, mid), 0.25 * angle(a, b), rtol=1e-5)
  np.testing.assert_allclose(angle(mid, b), 0.75 * angle(a, b), rtol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(mid),
                             0.75 * np.linalg.norm(a) + 0.25 * np.linalg.norm(b), rtol=1e-5)
  np.testing.assert_allclose(interpolate.lerp(a, b, 0.25), 0.75 * a + 0.25 * b)
  np.testing.assert_allclose(interpolate.slerp(a, 2 * a, 0.5), 1.5 * a, rtol=1e-6)  # parallel
  assert interpolate.path_positions(3, 5) == [
      (0, 0.0), (0, 0.25), (0, 0.5), (0, 0.75), (0, 1.0), (1, 0.25), (1, 0.5), (1, 0.75),
      (1, 1.0)]


def test_walk_inputs_pass_through_the_seeds_and_classes(tmp_path):
  cfg = tiny_config(tmp_path)
  spec = get_model("sagan")
  walk = interpolate.walk_inputs(cfg, "seeds", (4, 9, 2), classes=(3, 7), num_frames=4,
                                 method="linear")
  assert walk.rows == [3, 7] and walk.points == [4, 9, 2] and len(walk.positions) == 7
  noise = walk.inputs["noise"].reshape(2, 7, 16)
  for frame, seed in ((0, 4), (3, 9), (6, 2)):  # the ends: exactly each seed's sample noise
    np.testing.assert_array_equal(noise[:, frame], np.tile(
        spec.sample_inputs(cfg, 1, seed=seed)["noise"], (2, 1)))
  np.testing.assert_allclose(noise[0, 1], (2 * noise[0, 0] + noise[0, 3]) / 3, rtol=1e-5)
  np.testing.assert_array_equal(walk.inputs["labels"], [3] * 7 + [7] * 7)
  default = interpolate.walk_inputs(cfg, "seeds", (5, 6))
  assert default.rows == [int(spec.sample_inputs(cfg, 1, seed=5)["labels"][0])]

  walk = interpolate.walk_inputs(cfg, "classes", (1, 2), classes=(0, 9), num_frames=3)
  assert walk.rows == [1, 2] and walk.points == [0, 9]
  weights = walk.inputs["class_weights"]
  np.testing.assert_array_equal(weights[:3, [0, 9]], [[1, 0], [0.5, 0.5], [0, 1]])
  assert weights.sum() == 6.0
  nearest = interpolate.walk_inputs(cfg, "classes", (1,), classes=(2, 5, 4), num_frames=3,
                                    class_mixing=False)
  np.testing.assert_array_equal(nearest.inputs["labels"], [2, 5, 5, 4, 4])
  with pytest.raises(ValueError, match="class 10 is not one of the 10 classes"):
    interpolate.walk_inputs(cfg, "classes", (1,), classes=(0, 10))
  unconditional = tiny_config(tmp_path, num_classes=0)
  with pytest.raises(ValueError, match="is unconditional: walk between seeds"):
    interpolate.walk_inputs(unconditional, "classes", (1,))


def _checkpoint(tmp_path, cfg):
  """A freshly built SAGAN generator whose CBN gammas/betas are made class-specific, written as
  the estimator writes checkpoints (keys Generator/<variable>, global_step 1, a TF1 Saver)."""
  spec = get_model(cfg.model)
  generator = make_generator(cfg)
  spec.generate(cfg, generator, {k: tf.constant(v) for k, v in
                                 spec.sample_inputs(cfg, 2, seed=0).items()}, False)
  rng = np.random.RandomState(0)
  values = {}
  for var in generator.variables:
    value = var.numpy()
    if var.name.split("/")[-1].split(":")[0] in ("gamma", "beta") and value.ndim == 2:
      value = rng.standard_normal(value.shape) * 0.5 + (1.0 if "gamma" in var.name else 0.0)
    values[export.checkpoint_key(generator, var, set())] = value.astype(np.float32)
  with tf.Graph().as_default():
    saved = {k: tf.compat.v1.Variable(v, name=f"v{i}") for i, (k, v) in enumerate(values.items())}
    saved["global_step"] = tf.compat.v1.Variable(1, dtype=tf.int64, name="global_step")
    saver = tf.compat.v1.train.Saver(saved)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      return saver.save(sess, os.path.join(cfg.model_dir, "model.ckpt"), global_step=1)


def _gif_frames(path):
  with Image.open(path) as gif:
    return gif.n_frames


def test_walks_end_at_the_samples_of_their_seeds_and_classes_and_animate(tmp_path, monkeypatch):
  cfg = tiny_config(tmp_path)
  ckpt = _checkpoint(tmp_path, cfg)
  generate = export.generator_fn_from_checkpoint(cfg, ckpt)  # what --mode=sample runs
  sample = lambda seed, label: generate({
      "noise": tf.constant(get_model("sagan").sample_inputs(cfg, 1, seed=seed)["noise"]),
      "labels": tf.constant([label])}).numpy()[0]

  out, frames = interpolate.run_interpolate(cfg, "seeds", seeds=(3, 8), classes=(1, 4),
                                            num_frames=5,
                                            out_dir=str(tmp_path / "seeds"))
  assert frames.shape == (2, 5, 32, 32, 3)
  for row, label in enumerate((1, 4)):
    np.testing.assert_allclose(frames[row, 0], sample(3, label), atol=1e-5)
    np.testing.assert_allclose(frames[row, -1], sample(8, label), atol=1e-5)
  assert np.abs(frames[0, 2] - frames[0, 0]).max() > 1e-3  # the middle differs from the ends
  assert _gif_frames(os.path.join(out, "walk.gif")) == 5
  assert np.asarray(Image.open(os.path.join(out, "grid.png"))).shape == (2 * 32, 5 * 32, 3)
  record = json.load(open(os.path.join(out, "walk.json")))
  assert (record["interpolation"], record["num_frames"], record["rows"], record["source"]) == (
      "spherical", 5, {"classes": [1, 4]}, ckpt)

  out, frames = interpolate.run_interpolate(cfg, "classes", seeds=(6,), classes=(2, 7, 0),
                                            num_frames=4,
                                            out_dir=str(tmp_path / "classes"))
  assert frames.shape == (1, 7, 32, 32, 3)
  for frame, label in ((0, 2), (3, 7), (6, 0)):  # class-embedding walk: exact at each class
    np.testing.assert_allclose(frames[0, frame], sample(6, label), atol=1e-5)
  assert np.abs(frames[0, 1] - frames[0, 0]).max() > 1e-3
  assert np.abs(frames[0, 1] - frames[0, 3]).max() > 1e-3  # a mixture, not either class
  assert _gif_frames(os.path.join(out, "walk.gif")) == 7
  assert json.load(open(os.path.join(out, "walk.json")))["class_mixing"] == "embedding"

  # The fallback of a model that cannot mix classes: the nearest class at every frame.
  monkeypatch.setattr(type(get_model("sagan")), "supports_class_mixing", False)
  out, frames = interpolate.run_interpolate(cfg, "classes", seeds=(6,), classes=(2, 7),
                                            num_frames=4,
                                            out_dir=str(tmp_path / "nearest"))
  assert json.load(open(os.path.join(out, "walk.json")))["class_mixing"] == "nearest"
  np.testing.assert_array_equal(frames[0, 1], frames[0, 0])  # t = 1/3: still class 2
  np.testing.assert_array_equal(frames[0, 2], frames[0, 3])  # t = 2/3: class 7
  np.testing.assert_allclose(frames[0, 3], sample(6, 7), atol=1e-5)
  assert _gif_frames(os.path.join(out, "walk.gif")) == 4  # the progress bar keeps all frames


def test_gif_keeps_every_frame_even_when_images_repeat():
  frames = np.zeros((40, 8, 8, 3), np.float32)  # 40 identical images, wider than 8 px bars
  with Image.open(io.BytesIO(interpolate.gif_bytes(frames, frame_ms=50))) as gif:
    assert gif.n_frames == 40 and gif.info["duration"] == 50


@pytest.mark.slow
def test_both_modes_from_a_checkpoint_and_its_saved_model_through_run_py(tmp_path):
  """Train one step, export; the CLI draws the walk from the checkpoint and the attention
  figures from the SavedModel; in-process, the other source gives the same pictures."""
  cfg = tiny_config(tmp_path / "run", max_steps=1, save_checkpoints_steps=1)
  experiment.run_train(cfg)
  saved = experiment.run_export(cfg)
  common = [f"--model_dir={cfg.model_dir}", "--gf_dim=8", "--df_dim=8", "--z_dim=16",
            "--attention_resolution=16", "--batch_size=8"]
  walk_dir = tmp_path / "walk_ckpt"
  proc = run_py(*common, "--mode=interpolate", "--interpolate_between=classes",
                "--interpolate_classes=3,5", "--num_frames=3", "--interpolate_seeds=2",
                f"--sample_dir={walk_dir}")
  assert "latent walk (1 x 3 frames)" in proc.stdout
  maps_dir = tmp_path / "maps_saved"
  run_py(*common, "--mode=attention_maps", f"--saved_model={saved}", "--num_samples=2",
         "--query_points=0.5:0.5,0:1", f"--sample_dir={maps_dir}")
  bad = run_py(*common, "--mode=interpolate", "--interpolate_classes=3,10", check=False)
  assert bad.returncode != 0 and "10 is not a class of --dataset=digits (0..9)" in bad.stderr

  _, from_saved = interpolate.run_interpolate(cfg, "classes", seeds=(2,), classes=(3, 5),
                                              num_frames=3, saved_model=saved,
                                              out_dir=str(tmp_path / "walk_saved"))
  grid = np.asarray(Image.open(walk_dir / "grid.png"), np.float64)
  np.testing.assert_allclose(grid, np.asarray(Image.open(tmp_path / "walk_saved" / "grid.png"),
                                              np.float64), atol=1)
  assert _gif_frames(walk_dir / "walk.gif") == 3
  np.testing.assert_allclose(  # the checkpoint's class-3 end is --mode=sample's image
      from_saved[0, 0], export.generator_fn_from_checkpoint(cfg, export.resolve_checkpoint(
          cfg.model_dir))({"noise": tf.constant(get_model("sagan").sample_inputs(
              cfg, 1, seed=2)["noise"]), "labels": tf.constant([3])}).numpy()[0], atol=1e-5)

  _, seeds_saved = interpolate.run_interpolate(cfg, "seeds", seeds=(4, 5), num_frames=3,
                                               method="linear", saved_model=saved,
                                               out_dir=str(tmp_path / "seeds_saved"))
  _, seeds_ckpt = interpolate.run_interpolate(cfg, "seeds", seeds=(4, 5), num_frames=3,
                                              method="linear")
  np.testing.assert_allclose(seeds_saved, seeds_ckpt, atol=1e-5)
  assert os.path.isfile(os.path.join(cfg.model_dir, "interpolations",
                                     "step1_seeds_4-5_linear_class"
                                     f"{int(get_model('sagan').sample_inputs(cfg, 1, 4)['labels'][0])}",
                                     "walk.gif"))

  from_ckpt = figures.run_attention_maps(cfg, 2, query_points=((0.5, 0.5), (0.0, 1.0)),
                                         out_dir=str(tmp_path / "maps_ckpt"))
  assert [os.path.basename(p) for p in from_ckpt] == [
      "saliency_8x8.png", "queries_16x16_00.png", "queries_16x16_01.png"]
  for path in from_ckpt:
    np.testing.assert_allclose(np.asarray(Image.open(path), np.float64),
                               np.asarray(Image.open(maps_dir / os.path.basename(path)),
                                          np.float64), atol=2)
  record = json.load(open(maps_dir / "attention_maps.json"))
  assert record["query_cells"] == {"attention_16": [[8, 8], [0, 15]]}
