"""YLG attention-guided inversion (--mode=invert): a tiny model inverts its own sample, Lookahead
steps, saliency against numpy, spectral-norm vectors left alone, losses against numpy, image
reading, recipe resolution, the mode's flags, and the mode end to end through run.py."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import data
from estimators import model_flags
from estimators.models import get_model
from estimators.models import sagan_inversion as si
from estimators.testing import tiny_config
from tfgan_attention import YLGAttention, densify_attention

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LABEL = 3


def _settings(**changes):
  base = si.resolve_settings(si.InversionOptions(), num_heads=1)
  return dataclasses.replace(base, **changes)


@pytest.fixture(scope="module")
def tiny():
  """A tiny random SAGAN (32 px, attention at 16x16: D0 16x16x16, keys 8x8), its sample from a
  known z as the target, and the real image's saliency."""
  tf.keras.utils.set_random_seed(0)  # the same random networks on every run
  cfg = tiny_config("/unused")
  spec = get_model("sagan")
  generator, discriminator = spec.make_generator(cfg), spec.make_discriminator(cfg)

  def generate(z):
    labels = tf.fill([tf.shape(z)[0]], LABEL)
    return spec.images(spec.generate(cfg, generator, {"noise": z, "labels": labels},
                                     training=False))

  def d0(images, training):
    return discriminator.attention_features(images, training=training, return_attention=False)[0]

  z_true = si.truncated_starts(1, 16, seed=99)
  target = generate(tf.constant(z_true)).numpy()[0]
  discriminator(tf.constant(target[None]), tf.constant([LABEL]))  # build every layer
  features, attention = discriminator.attention_features(tf.constant(target[None]))
  weights = si.saliency_on_grid(si.saliency(attention)[0], int(features.shape[1])).numpy()
  return dict(cfg=cfg, generator=generator, discriminator=discriminator, generate=generate,
              d0=d0, target=target, weights=weights, features=features)


def test_d0_is_the_attention_layer_input_and_its_attention_the_layers_own(tiny):
  d = tiny["discriminator"]
  x = tf.constant(tiny["target"][None])
  features, attention = d.attention_features(x)
  expected = d.blocks[0](x)  # attention at 16x16 sits after the first block at 32 px
  np.testing.assert_allclose(features, expected, rtol=1e-6)
  assert features.shape == (1, 16, 16, 16) and attention.shape == (1, 1, 256, 64)
  _, own = d.attention(expected, return_attention=True)
  np.testing.assert_allclose(attention, own, rtol=1e-6)
  np.testing.assert_allclose(tf.reduce_sum(attention, -1), 1.0, rtol=1e-5)
  residual = get_model("sagan").make_discriminator(tiny_config("/unused",
                                                               attention_type="residual"))
  with pytest.raises(ValueError, match="needs an attention layer"):
    residual.attention_features(x)


def _u_vectors(*networks):
  return {v.name: v.numpy().copy() for n in networks for v in n.variables if "sn_u" in v.name}


@pytest.fixture(scope="module")
def inverted(tiny):
  """One paper-recipe inversion of the tiny model's own sample (60 steps, 2 restarts)."""
  before = _u_vectors(tiny["generator"], tiny["discriminator"])
  z0 = si.truncated_starts(2, 16, seed=0)
  settings = _settings(steps=60, restarts=2)
  result = si.invert(tiny["generate"], tiny["d0"], tiny["target"], tiny["weights"], z0, settings)
  return dict(result=result, z0=z0, u_before=before)


def test_inverting_its_own_sample_cuts_the_attention_loss_tenfold_and_gets_closer(tiny, inverted):
  res = inverted["result"]["attention"]
  assert res["losses"].shape == (60, 2)
  best = res["best"]
  assert best == int(np.argmin(res["final_losses"]))
  assert res["final_losses"][best] * 10 <= res["losses"][0][best]
  start = tiny["generate"](tf.constant(inverted["z0"])).numpy()
  final = tiny["generate"](tf.constant(res["z"])).numpy()
  psnr_start, _ = si.image_scores(start, tiny["target"])
  psnr_final, ssim_final = si.image_scores(final, tiny["target"])
  assert psnr_final[best] > psnr_start[best] + 3.0  # dB
  assert -1.0 <= ssim_final[best] <= 1.0
  # The pixel baseline ran from the same starts and moved too.
  pixel = inverted["result"]["pixel"]
  assert pixel["losses"].shape == (60, 2)
  assert pixel["final_losses"].min() < pixel["losses"][0].min()


def test_spectral_norm_vectors_do_not_change_during_inversion(tiny, inverted):
  after = _u_vectors(tiny["generator"], tiny["discriminator"])
  assert after.keys() == inverted["u_before"].keys() and len(after) > 10
  for name, u in inverted["u_before"].items():
    np.testing.assert_array_equal(after[name], u, err_msg=name)


def test_the_official_recipe_refreshes_the_d0_spectral_norm_vectors(tiny):
  d_before = _u_vectors(tiny["discriminator"])
  g_before = _u_vectors(tiny["generator"])
  settings = _settings(steps=2, restarts=2, lookahead=False, squared=False, update_sn=True,
                       saliency_normalisation="nonzero")
  loss = si.attention_loss_fn(tiny["generate"], tiny["d0"], tiny["target"][None],
                              tiny["weights"], settings)
  si.descend(loss, si.truncated_starts(2, 16, seed=1), settings)
  d_after = _u_vectors(tiny["discriminator"])
  changed = {n for n in d_before if not np.array_equal(d_before[n], d_after[n])}
  d0_blocks = {n for n in d_before if "d_optimized_block1" in n}
  assert d0_blocks and changed == d0_blocks  # D0's blocks only: the rest of D never runs
  for name, u in g_before.items():
    np.testing.assert_array_equal(_u_vectors(tiny["generator"])[name], u)
  for name, u in d_before.items():  # put them back for the other tests
    next(v for v in tiny["discriminator"].variables if v.name == name).assign(u)


def test_a_run_trained_with_the_sn_update_in_eval_quirk_still_keeps_d0_vectors_fixed(tiny):
  quirk = tiny_config("/unused", sn_update_in_eval=True)
  assert si.inference_config(quirk).hparams == dataclasses.replace(quirk.hparams,
                                                                   sn_update_in_eval=False)
  assert si.inference_config(tiny["cfg"]) is tiny["cfg"]
  x = tf.constant(tiny["target"][None])
  for cfg, moves in ((quirk, True), (si.inference_config(quirk), False)):
    d = get_model("sagan").make_discriminator(cfg)
    d.attention_features(x, return_attention=False)
    before = _u_vectors(d)
    d.attention_features(x, return_attention=False)
    after = _u_vectors(d)
    assert any(not np.array_equal(before[n], after[n]) for n in before) == moves


def test_lookahead_slow_weights_move_at_every_kth_step_and_only_then(tiny):
  k = 3
  settings = _settings(lookahead_k=k, lookahead_alpha=0.5)
  loss = si.attention_loss_fn(tiny["generate"], tiny["d0"], tiny["target"][None],
                              tiny["weights"], settings)
  descent = si.LatentDescent(loss, si.truncated_starts(2, 16, seed=2), settings)
  assert descent.slow_weights() is None  # created by the first step
  z0 = descent.z.numpy()
  slow, fast = [], []
  for _ in range(2 * k + 1):
    descent.step()
    slow.append(descent.slow_weights())
    fast.append(descent.z.numpy())
  np.testing.assert_array_equal(slow[0], z0)  # the slot starts as z
  for i in range(2 * k + 1):  # slow[i], fast[i]: after i + 1 updates
    sync = (i + 1) % k == 0
    if i:
      assert (not np.array_equal(slow[i], slow[i - 1])) == sync, i
    # At a sync the fast weights are reset onto the (moved) slow ones; between syncs they differ.
    assert np.array_equal(fast[i], slow[i]) == sync, i


def test_plain_adam_when_the_recipe_has_no_lookahead():
  assert isinstance(si.make_optimizer(_settings(lookahead=False)),
                    tf.keras.optimizers.legacy.Adam)
  assert type(si.make_optimizer(_settings())).__name__ == "Lookahead"


def _numpy_saliency(attention, normalisation):
  """attention [heads, Nq, Nk] -> [heads, Nk]."""
  total = attention.sum(axis=1)
  if normalisation == "mean":
    return total / attention.shape[1]
  count = (attention != 0).sum(axis=1)
  return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def test_saliency_of_ylg_heads_matches_numpy_for_both_normalisations():
  tf.keras.utils.set_random_seed(1)
  layer = YLGAttention(name="d_ops")
  x = tf.random.stateless_normal([1, 16, 16, 64], seed=[4, 5])
  _, compact = layer(x, return_attention=True)
  dense = si.dense_attention(compact, 64)  # [1, 8, 256, 64]
  np.testing.assert_allclose(dense, densify_attention(compact, 64))
  a = dense.numpy()[0]
  assert (a == 0).any()  # masked pairs: the two normalisations differ
  for normalisation in ("mean", "nonzero"):
    got = si.saliency(dense, normalisation).numpy()[0]
    np.testing.assert_allclose(got, _numpy_saliency(a, normalisation), rtol=1e-5, atol=1e-9)
  mean, nonzero = (si.saliency(dense, n).numpy()[0] for n in ("mean", "nonzero"))
  np.testing.assert_allclose(mean.sum(axis=1), 1.0, rtol=1e-5)  # each head: a distribution
  assert (nonzero >= mean - 1e-9).all() and (nonzero > mean * 1.5).any()


def test_saliency_with_a_key_nobody_attends_and_its_grid():
  a = np.array([[[0.5, 0.5, 0.0, 0.0], [0.25, 0.75, 0.0, 0.0], [0.0, 0.2, 0.0, 0.8]]],
               np.float32)  # [1 head, 3 queries, 4 keys], key 2 never attended
  np.testing.assert_allclose(si.saliency(a[None], "mean").numpy()[0],
                             [[0.25, 1.45 / 3, 0.0, 0.8 / 3]], rtol=1e-6)
  np.testing.assert_allclose(si.saliency(a[None], "nonzero").numpy()[0],
                             [[0.375, 1.45 / 3, 0.0, 0.8]], rtol=1e-6)
  grid = si.saliency_on_grid(np.array([[[1.0, 2.0, 3.0, 4.0]]]), 4).numpy()[0, 0]
  np.testing.assert_array_equal(grid, np.kron([[1.0, 2.0], [3.0, 4.0]], np.ones((2, 2))))


def test_losses_against_numpy():
  rng = np.random.RandomState(0)
  fake, real = rng.randn(3, 4, 4, 2).astype(np.float32), rng.randn(1, 4, 4, 2).astype(np.float32)
  w = rng.rand(2, 4, 4).astype(np.float32)
  weighted = (fake - real)[:, None] * w[None, :, :, :, None]  # [3, 2, 4, 4, 2]
  per, total = si.attention_losses(fake, real, w, squared=True)
  expected = (weighted ** 2).sum(axis=(1, 2, 3, 4))
  np.testing.assert_allclose(per, expected, rtol=1e-5)
  np.testing.assert_allclose(total, expected.sum(), rtol=1e-5)
  per, total = si.attention_losses(fake, real, w, squared=False)
  np.testing.assert_allclose(per, np.sqrt((weighted ** 2).sum(axis=(2, 3, 4))).sum(1), rtol=1e-5)
  official = sum(np.linalg.norm(weighted[:, h].ravel()) for h in range(2))  # tf.norm per head
  np.testing.assert_allclose(total, official, rtol=1e-5)
  images, x = rng.rand(3, 5, 5, 3).astype(np.float32), rng.rand(5, 5, 3).astype(np.float32)
  per, total = si.pixel_losses(images, x[None], squared=False)
  np.testing.assert_allclose(total, np.linalg.norm((images - x).ravel()), rtol=1e-5)


def test_truncated_starts_stay_within_two_std():
  z = si.truncated_starts(64, 128, seed=0)
  assert z.shape == (64, 128) and np.abs(z).max() <= 2.0 and 0.7 < z.std() < 0.95
  np.testing.assert_array_equal(z, si.truncated_starts(64, 128, seed=0))


def test_png_and_jpeg_of_any_size_read_to_the_model_size_in_minus_one_to_one(tmp_path):
  pixels = np.zeros((32, 72, 3), np.uint8)
  pixels[:, :, 0] = 255  # red everywhere; the central 32x32 square (columns 20..51) is kept
  pixels[:, :16] = 0  # a black band outside it (JPEG blocks of 16 keep it from bleeding in)
  Image.fromarray(pixels).save(tmp_path / "a.png")
  Image.fromarray(pixels).convert("RGBA").save(tmp_path / "rgba.png")
  Image.fromarray(pixels).save(tmp_path / "a.jpg", quality=95)
  for name, atol in (("a.png", 1e-6), ("rgba.png", 1e-6), ("a.jpg", 0.05)):
    image = si.read_image(str(tmp_path / name), 32)
    assert image.shape == (32, 32, 3) and image.dtype == np.float32
    np.testing.assert_allclose(image[..., 0], 1.0, atol=atol)
    np.testing.assert_allclose(image[..., 1:], -1.0, atol=atol)
  (tmp_path / "x.gif").write_bytes(b"GIF89a" + bytes(20))
  with pytest.raises(ValueError, match="neither a JPEG nor a PNG"):
    si.read_image(str(tmp_path / "x.gif"), 32)
  with pytest.raises(FileNotFoundError, match="does not exist"):
    si.read_image(str(tmp_path / "missing.png"), 32)


def test_recipes_resolve_to_the_paper_and_the_official_script():
  paper = si.resolve_settings(si.InversionOptions(), num_heads=8)
  assert (paper.lr, paper.steps, paper.restarts, paper.heads) == (0.05, 1500, 4, tuple(range(8)))
  assert paper.lookahead and paper.squared and not paper.update_sn
  assert paper.saliency_normalisation == "mean"
  official = si.resolve_settings(si.InversionOptions(invert_recipe="official"), num_heads=8)
  assert (official.lr, official.steps, official.restarts, official.heads) == (
      0.07, 1000, 8, (0, 1, 2, 3))
  assert not official.lookahead and not official.squared and official.update_sn
  assert official.saliency_normalisation == "nonzero"
  assert si.resolve_settings(si.InversionOptions(invert_recipe="official"), 1).heads == (0,)
  mine = si.resolve_settings(si.InversionOptions(invert_lr=0.01, invert_steps=7,
                                                 invert_restarts=2, invert_heads="5,1"), 8)
  assert (mine.lr, mine.steps, mine.restarts, mine.heads) == (0.01, 7, 2, (5, 1))
  with pytest.raises(ValueError, match="has 1 head"):
    si.resolve_settings(si.InversionOptions(invert_heads="0,2"), 1)


def test_the_mode_flags_belong_to_the_invert_mode(tmp_path):
  from absl import flags  # pylint: disable=import-outside-toplevel
  values = flags.FlagValues()
  model_flags.define_flags(values)
  values(["prog", "--invert_lr=0.1", "--invert_heads=0,1"])
  assert "--mode=invert option" in values["invert_lr"].help
  digits = data.get_spec("digits")
  image = str(tmp_path / "x.png")
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
  base = {"model": "ylg_sagan", "image_size": 32, "mode": "invert", "df_dim": 32,
          "invert_lr": 0.1, "invert_heads": "0,1", "invert_image": image}
  assert model_flags.problem(base, digits, present={"invert_lr", "invert_heads"}) is None
  options = model_flags.mode_options_of("ylg_sagan", "invert", base)
  assert options == si.InversionOptions(invert_lr=0.1, invert_heads="0,1", invert_image=image)
  assert model_flags.problem({**base, "invert_image": None}, digits) == (
      "--invert_image='' must name an existing JPEG or PNG file.")
  assert model_flags.problem({**base, "mode": "train"}, digits, present={"invert_lr"}) == (
      "--invert_lr is an option of --mode=invert; it does nothing with --mode=train.")
  assert model_flags.problem({**base, "invert_lr": -1.0}, digits, present={"invert_lr"}) == (
      "--invert_lr=-1.0 must be positive.")
  assert model_flags.problem({**base, "invert_heads": "a"}, digits).startswith(
      "--invert_heads='a' must be")
  assert model_flags.problem({**base, "model": "ladagan"}, digits).startswith(
      "--mode=invert belongs to --model=sagan/ylg_sagan")


@pytest.mark.slow
def test_invert_mode_through_run_py_writes_every_output(tmp_path, capsys):
  """Train a 2-head SAGAN with EMA for 2 steps, then --mode=invert on a non-square JPEG."""
  model_dir = str(tmp_path / "run")
  hparams = dict(gf_dim=8, df_dim=8, z_dim=16, attention_resolution=16, num_heads=2)
  common = [sys.executable, os.path.join(ROOT, "run.py"), "--model=sagan", "--ema_decay=0.99",
            f"--model_dir={model_dir}"] + [f"--{k}={v}" for k, v in hparams.items()]
  env = {**os.environ, "PYTHONPATH": ROOT}
  subprocess.run(common + ["--mode=train", "--max_steps=2", "--batch_size=4",
                           "--save_checkpoints_steps=2"], check=True, env=env, cwd=ROOT,
                 capture_output=True, timeout=600)
  image = tmp_path / "bird.jpg"
  Image.fromarray((np.random.RandomState(0).rand(40, 64, 3) * 255).astype(np.uint8)).save(image)
  invert = common + ["--mode=invert", f"--invert_image={image}", "--invert_label=2",
                     "--invert_steps=4", "--invert_restarts=2", "--invert_heads=1"]
  out = subprocess.run(invert, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  out_dir = os.path.join(model_dir, "inversions", "bird_label2_step2_paper_seed0")
  expected = {"original.png", "inversion_attention.png", "inversion_pixel.png", "comparison.png",
              "restarts_attention.png", "restarts_pixel.png", "inversion.json",
              "saliency_head0.png", "saliency_head1.png"}
  assert set(os.listdir(out_dir)) == expected
  with open(os.path.join(out_dir, "inversion.json"), encoding="utf-8") as f:
    record = json.load(f)
  s = record["settings"]
  assert (s["steps"], s["restarts"], s["heads"], s["lr"], s["lookahead"]) == (
      4, 2, [1], 0.05, True)
  assert s["ema_generator"] is True and s["step"] == 2 and s["label"] == 2
  assert record["saliency_heads"]["1"]["used"] and not record["saliency_heads"]["0"]["used"]
  for method in ("attention", "pixel"):
    m = record["methods"][method]
    assert len(m["losses_per_step"]) == 4 and len(m["losses_per_step"][0]) == 2
    assert np.isfinite(m["psnr"]) and -1.0 <= m["ssim"] <= 1.0
    assert m["best_restart"] == int(np.argmin(m["final_losses"]))
  with Image.open(os.path.join(out_dir, "original.png")) as png:
    assert png.size == (32, 32)
  # In process: a rerun with the same settings finds the finished inversion; a bad label fails
  # before any network is built.
  cfg = tiny_config(model_dir, ema_decay=0.99, **hparams)
  options = si.InversionOptions(invert_image=str(image), invert_label=2, invert_steps=4,
                                invert_restarts=2, invert_heads="1")
  assert si.run_inversion(cfg, options) == out_dir
  assert "inversion already done" in capsys.readouterr().out
  with pytest.raises(si.InversionInputError, match="--invert_label=10 is not a class of digits"):
    si.run_inversion(cfg, dataclasses.replace(options, invert_label=10))
  # The networks it restores are the run's: G as export restores it (EMA), D's every variable.
  from estimators import export  # pylint: disable=import-outside-toplevel
  ckpt = si.latest_checkpoint(model_dir)
  generator, discriminator, ema = si.restore_networks(cfg, get_model("sagan"), ckpt)
  reference = export.restore_generator(cfg, ckpt, use_ema=True)
  assert ema and len(generator.variables) == len(reference.variables)
  for mine, theirs in zip(generator.variables, reference.variables):
    np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
  reader = tf.train.load_checkpoint(ckpt)
  for var in discriminator.variables:
    np.testing.assert_array_equal(var.numpy(), reader.get_tensor(
        "Discriminator/" + var.name.split(":")[0]))
