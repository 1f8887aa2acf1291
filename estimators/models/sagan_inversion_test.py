"""YLG attention-guided inversion (--mode=invert): a tiny model inverts its own sample, Lookahead
steps, saliency against numpy, spectral-norm vectors left alone, losses against numpy, image
reading, recipe resolution, the mode's flags, and the mode end to end through run.py."""
import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import data
from estimators import model_flags
from estimators.models import get_model
from estimators.models import sagan_inversion as si
from estimators.models import sagan_inversion_mode as mode
from estimators.testing import tiny_config
from tests.run_process import run_py
from tfgan_attention import YLGAttention, patterns

LABEL = 3


def _settings(**changes):
  base = si.resolve_settings(si.InversionOptions(), num_heads=1)
  return dataclasses.replace(base, **changes)


@pytest.fixture(scope="module")
def tiny():
  """A tiny random SAGAN (32 px, attention at 16x16: D0 16x16x16, keys 8x8), its sample from a
  known z as the target, and the real image's saliency."""
  tf.keras.utils.set_random_seed(0)  # the same random networks on every run
  cfg = tiny_config("/unused", num_heads=2)
  spec = get_model("sagan")
  generator, discriminator = spec.make_generator(cfg), spec.make_discriminator(cfg)

  def generate(z):
    labels = tf.fill([tf.shape(z)[0]], LABEL)
    return spec.images(spec.generate(cfg, generator, {"noise": z, "labels": labels},
                                     training=False))

  def d0(images, training):
    return discriminator.attention_features(images, training=training, return_attention=False)[0]

  def d0_attention(images, training):
    return discriminator.attention_features(images, training=training)

  z_true = si.truncated_starts(1, 16, seed=99)
  target = generate(tf.constant(z_true)).numpy()[0]
  discriminator(tf.constant(target[None]), tf.constant([LABEL]))  # build every layer
  features, attention = discriminator.attention_features(tf.constant(target[None]))
  weights = si.saliency_on_grid(si.saliency(attention)[0], int(features.shape[1])).numpy()
  reference = si.real_reference(d0_attention, target[None], _settings(heads=(0, 1)))
  return dict(cfg=cfg, spec=spec, generator=generator, discriminator=discriminator,
              generate=generate, d0=d0, d0_attention=d0_attention, target=target,
              weights=weights, features=features, reference=reference, z_true=z_true)


def test_d0_is_the_attention_layer_input_and_its_attention_the_layers_own(tiny):
  d = tiny["discriminator"]
  x = tf.constant(tiny["target"][None])
  features, attention = d.attention_features(x)
  expected = d.blocks[0](x)  # attention at 16x16 sits after the first block at 32 px
  np.testing.assert_allclose(features, expected, rtol=1e-6)
  assert features.shape == (1, 16, 16, 16) and attention.shape == (1, 2, 256, 64)
  _, own = d.attention(expected, return_attention=True)
  np.testing.assert_allclose(attention, own, rtol=1e-6)
  np.testing.assert_allclose(tf.reduce_sum(attention, -1), 1.0, rtol=1e-5)
  residual = get_model("sagan").make_discriminator(tiny_config("/unused",
                                                               attention_type="residual"))
  with pytest.raises(ValueError, match="needs an attention layer"):
    residual.attention_features(x)


def _u_vectors(*networks):
  return {v.name: v.numpy().copy() for n in networks for v in n.variables if "sn_u" in v.name}


def _sn_layers(network):
  return [l for l in network._flatten_layers() if hasattr(l, "u") and hasattr(l, "kernel")]  # pylint: disable=protected-access


@pytest.fixture(scope="module")
def inverted(tiny):
  """One paper-recipe inversion of the tiny model's own sample (60 steps, 2 restarts)."""
  before = _u_vectors(tiny["generator"], tiny["discriminator"])
  z0 = si.truncated_starts(2, 16, seed=0)
  settings = _settings(steps=60, restarts=2)
  result = si.invert(tiny["generate"], tiny["d0"], tiny["target"], tiny["reference"], z0,
                     settings)
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
  psnr_final, _ = si.image_scores(final, tiny["target"])
  assert psnr_final[best] > psnr_start[best] + 3.0  # dB
  # Eqs. 1 and 4 ran from the same starts (equal PSNR at step 0: same z0) and moved too.
  for method in ("pixel", "weighted_pixel"):
    res = inverted["result"][method]
    assert res["losses"].shape == (60, 2)
    assert res["final_losses"].min() < res["losses"][0].min()
  np.testing.assert_allclose(inverted["result"]["pixel"]["pixel_rms"][0],
                             inverted["result"]["weighted_pixel"]["pixel_rms"][0], rtol=1e-6)


def _numpy_ssim(a, b, max_val=1.0, size=11, sigma=1.5, k1=0.01, k2=0.03):
  """Wang et al. 2004 SSIM of [H, W, C] images: Gaussian window (size, sigma), 'valid' filtering,
  the map averaged over positions and channels (tf.image.ssim's definition)."""
  x = np.arange(size) - (size - 1) / 2.0
  g = np.exp(-x ** 2 / (2 * sigma ** 2))
  g /= g.sum()

  def blur(img):  # [H, W, C] -> valid-filtered [H-size+1, W-size+1, C]
    rows = np.stack([np.tensordot(img[i:i + size], g, axes=([0], [0]))
                     for i in range(img.shape[0] - size + 1)])
    return np.stack([np.tensordot(rows[:, j:j + size], g, axes=([1], [0]))
                     for j in range(img.shape[1] - size + 1)], axis=1)
  c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
  mu_a, mu_b = blur(a), blur(b)
  var_a, var_b = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2
  cov = blur(a * b) - mu_a * mu_b
  ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
      (mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
  return ssim_map.mean()


def test_psnr_and_ssim_against_numpy_on_zero_one_pixels():
  rng = np.random.RandomState(3)
  target = rng.uniform(-1, 1, (16, 16, 3)).astype(np.float32)
  images = np.clip(target + rng.normal(0, [[[[0.1]]], [[[0.5]]]], (2, 16, 16, 3)),
                   -1, 1).astype(np.float32)
  psnr, ssim = si.image_scores(images, target)
  a, b = (images.astype(np.float64) + 1) / 2, (target.astype(np.float64) + 1) / 2
  mse = ((a - b) ** 2).mean(axis=(1, 2, 3))
  np.testing.assert_allclose(psnr, 10 * np.log10(1.0 / mse), rtol=1e-5)
  np.testing.assert_allclose(ssim, [_numpy_ssim(a[i], b) for i in range(2)], rtol=1e-4)
  assert ssim[0] > ssim[1] + 0.1  # the noisier image scores lower
  # Below 11 px the window is the image (7x7: one position).
  small = si.image_scores(images[:, :7, :7], target[:7, :7])[1]
  np.testing.assert_allclose(small, [_numpy_ssim(a[i, :7, :7], b[:7, :7], size=7)
                                     for i in range(2)], rtol=1e-4)


def test_spectral_norm_vectors_do_not_change_during_inversion(tiny, inverted):
  after = _u_vectors(tiny["generator"], tiny["discriminator"])
  assert after.keys() == inverted["u_before"].keys() and len(after) > 10
  for name, u in inverted["u_before"].items():
    np.testing.assert_array_equal(after[name], u, err_msg=name)


def _power_iterations(kernel, u, times):
  """numpy: `times` rounds of u <- normalise(normalise(u W^T) W), W = kernel as [-1, C_out]."""
  w = kernel.reshape(-1, kernel.shape[-1]).astype(np.float64)
  u = u.astype(np.float64)
  for _ in range(times):
    v = u @ w.T
    v /= np.linalg.norm(v)
    u = v @ w
    u /= np.linalg.norm(u)
  return u


def test_the_official_recipe_advances_u_at_every_d_call_and_reads_x_at_every_step(tiny):
  """One official step = the printed loss's pass and the update's pass (inverse_image.py:171-
  173), each running D on x (D0(x) and the saliency recomputed) and on G(z): D0's u vectors
  advance 4 power iterations, the attention layer's (run on x only) 2; G's stay."""
  d = tiny["discriminator"]
  d_before, g_before = _u_vectors(d), _u_vectors(tiny["generator"])
  settings = _settings(steps=1, restarts=2, lookahead=False, squared=False, update_sn=True,
                       real_every_step=True, saliency_normalisation="nonzero", heads=(0, 1))
  reference = si.real_reference(tiny["d0_attention"], tiny["target"][None], settings)
  loss = si.attention_loss_fn(tiny["generate"], tiny["d0"], tiny["target"][None], reference,
                              settings)
  si.LatentDescent(loss, si.truncated_starts(2, 16, seed=1), settings).step()
  d_after = _u_vectors(d)
  layers = {l.u.name: l for l in _sn_layers(d)}
  d0_names = {n for n in d_before if "d_optimized_block1" in n}
  attention_names = {n for n in d_before if "attention" in n or "d_ops" in n}
  assert d0_names and attention_names
  for name in d_before:
    calls = 4 if name in d0_names else 2 if name in attention_names else 0
    if not calls:  # the rest of D never runs
      np.testing.assert_array_equal(d_after[name], d_before[name], err_msg=name)
      continue
    expected = _power_iterations(layers[name].kernel.numpy(), d_before[name], calls)
    np.testing.assert_allclose(d_after[name], expected, rtol=1e-4, atol=1e-6, err_msg=name)
  for name, u in g_before.items():
    np.testing.assert_array_equal(_u_vectors(tiny["generator"])[name], u)
  for name, u in d_before.items():  # put them back for the other tests
    next(v for v in d.variables if v.name == name).assign(u)


def test_a_run_trained_with_the_sn_update_in_eval_quirk_still_keeps_d0_vectors_fixed(tiny):
  quirk = tiny_config("/unused", sn_update_in_eval=True)
  assert mode.inference_config(quirk).hparams == dataclasses.replace(quirk.hparams,
                                                                   sn_update_in_eval=False)
  assert mode.inference_config(tiny["cfg"]) is tiny["cfg"]
  x = tf.constant(tiny["target"][None])
  for cfg, moves in ((quirk, True), (mode.inference_config(quirk), False)):
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
                              tiny["reference"], settings)
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


def _numpy_official_saliency(attention, side):
  """numpy of ylg/inverse_image.py get_saliency (lines 57-64) for one image: attention
  [heads, Nq, Nk] -> per key: the sum over queries / the count of non-zero entries, as the
  (key side)^2 grid, nearest-resized to side x side -> [heads, side, side]."""
  heads, _, nk = attention.shape
  key_side = int(np.sqrt(nk))
  a = attention.reshape(heads, -1, nk).astype(np.float64)
  weights = a.sum(axis=1) / np.count_nonzero(a, axis=1)
  grid = weights.reshape(heads, key_side, key_side)
  rows = (np.arange(side) * key_side) // side  # nearest: TF's floor(i * in / out) index
  return grid[:, rows][:, :, rows]


def test_official_saliency_of_real_ylg_heads_equals_numpy_of_the_official_formula():
  """The sparse YLG layer's attention (densified) equals the dense masked reference with the
  same weights and is zero exactly off YLG's masks; its 'nonzero' saliency on D0's grid equals
  a numpy of the script's formula, and the paper's 'mean' is the plain mean over queries."""
  tf.keras.utils.set_random_seed(1)
  sparse, dense_layer = YLGAttention(name="d_ops"), YLGAttention(name="d_ops",
                                                                implementation="dense")
  x = tf.random.stateless_normal([1, 16, 16, 64], seed=[4, 5])
  _, compact = sparse(x, return_attention=True)
  dense_layer(x)
  dense_layer.set_weights(sparse.get_weights())
  _, reference = dense_layer(x, return_attention=True)  # [1, 8, 256, 64], masked softmax
  dense = si.dense_attention(compact, 64)
  np.testing.assert_allclose(dense, reference, rtol=1e-5, atol=1e-7)
  masks = patterns.ylg_masks((8, 8), (16, 16))  # [8, 256, 64], official layout (ESA, tiled)
  np.testing.assert_array_equal(dense.numpy()[0] != 0, masks > 0)
  a = dense.numpy()[0]
  grid = si.saliency_on_grid(si.saliency(dense, "nonzero"), 16).numpy()[0]
  np.testing.assert_allclose(grid, _numpy_official_saliency(a, 16), rtol=1e-5)
  mean = si.saliency(dense, "mean").numpy()[0]
  np.testing.assert_allclose(mean, a.mean(axis=1), rtol=1e-5, atol=1e-9)
  np.testing.assert_allclose(mean.sum(axis=1), 1.0, rtol=1e-5)  # each head: a distribution
  assert (grid[:, ::2, ::2].reshape(8, 64) > mean * 1.5).any()  # the two differ on YLG masks


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


def test_eq4_weighted_pixel_loss_against_numpy():
  """sum_i ||(G(z) - x) * S''_i||^2 (paper app. 9.4.1 eq. 4), S''_i head i's key-grid saliency
  nearest-resized to G's output (4x4 keys -> 16 px), with a numpy G; and the official norm."""
  rng = np.random.RandomState(1)
  proj = rng.randn(5, 16 * 16 * 3).astype(np.float32) * 0.3
  generate = lambda z: tf.tanh(tf.reshape(tf.matmul(z, proj), [-1, 16, 16, 3]))
  target = rng.uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
  sal = rng.rand(2, 16).astype(np.float32)  # 2 heads, 4x4 keys
  d0_grid = np.kron(sal.reshape(2, 4, 4), np.ones((2, 2)))  # S' on an 8x8 D0 grid (unused)
  reference = lambda training: (tf.zeros([1]), tf.constant(d0_grid, tf.float32), tf.constant(sal))
  z = rng.randn(3, 5).astype(np.float32)
  diff = np.tanh(z @ proj).reshape(3, 16, 16, 3) - target  # [3, 16, 16, 3]
  s2 = np.kron(sal.reshape(2, 4, 4), np.ones((4, 4)))  # S'' [2, 16, 16]
  weighted = diff[:, None] * s2[None, :, :, :, None]  # [3, 2, 16, 16, 3]
  per, total, rms = si.weighted_pixel_loss_fn(generate, target, reference, _settings())(z)
  np.testing.assert_allclose(per, (weighted ** 2).sum(axis=(1, 2, 3, 4)), rtol=1e-5)
  np.testing.assert_allclose(total, (weighted ** 2).sum(), rtol=1e-5)
  np.testing.assert_allclose(rms, np.sqrt((diff ** 2).mean(axis=(1, 2, 3))), rtol=1e-5)
  _, total = si.weighted_pixel_loss_fn(generate, target, reference,
                                       _settings(squared=False))(z)[:2]
  np.testing.assert_allclose(total, sum(np.linalg.norm(weighted[:, h]) for h in range(2)),
                             rtol=1e-5)


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
  assert (official.real_every_step, official.preprocess) == (True, "resize_whole")
  assert (paper.real_every_step, paper.preprocess) == (False, "central_square")
  # Each part is its own option, and one given explicitly wins over either recipe.
  plain_adam = si.resolve_settings(si.InversionOptions(invert_lookahead=False), 8)
  assert plain_adam == dataclasses.replace(paper, lookahead=False)
  parts = dict(invert_lookahead=True, invert_saliency="mean", invert_norm="squared",
               invert_sn_update=False, invert_real_every_step=False,
               invert_preprocess="central_square")
  as_paper = si.resolve_settings(si.InversionOptions(invert_recipe="official", **parts), 8)
  assert as_paper == dataclasses.replace(paper, recipe="official", lr=0.07, steps=1000,
                                         restarts=8, heads=(0, 1, 2, 3))
  flipped = {k: (not v if isinstance(v, bool) else {"mean": "nonzero", "squared": "unsquared",
                                                    "central_square": "resize_whole"}[v])
             for k, v in parts.items()}
  as_official = si.resolve_settings(si.InversionOptions(**flipped), 8)
  assert as_official == dataclasses.replace(official, recipe="paper", lr=0.05, steps=1500,
                                            restarts=4, heads=tuple(range(8)))
  mine = si.resolve_settings(si.InversionOptions(invert_lr=0.01, invert_steps=7,
                                                 invert_restarts=2, invert_heads="5,1"), 8)
  assert (mine.lr, mine.steps, mine.restarts, mine.heads) == (0.01, 7, 2, (5, 1))
  with pytest.raises(ValueError, match="has 1 head"):
    si.resolve_settings(si.InversionOptions(invert_heads="0,2"), 1)


def test_digits_test_image_k_is_the_loaders_image_with_its_class():
  from data import digits  # pylint: disable=import-outside-toplevel
  images, labels = digits.digits_arrays("test", 32)
  image, label = si.digits_image("digits:test:7", 32)
  np.testing.assert_array_equal(image, images[7])
  assert label == labels[7] and image.dtype == np.float32
  assert si.digits_image("x.png", 32) is None and si.digits_image("digits:test:x", 32) is None
  with pytest.raises(si.InversionInputError, match=f"has {len(labels)} images"):
    si.digits_image(f"digits:test:{len(labels)}", 32)
  assert model_flags.problem({"model": "ylg_sagan", "image_size": 32, "mode": "invert",
                              "df_dim": 32, "invert_image": "digits:test:7"},
                             data.get_spec("digits")) is None


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
      "--invert_image='' must name an existing JPEG or PNG file or digits:SPLIT:K.")
  assert model_flags.problem({**base, "mode": "train"}, digits, present={"invert_lr"}) == (
      "--invert_lr is an option of --mode=invert; it does nothing with --mode=train.")
  assert model_flags.problem({**base, "invert_lr": -1.0}, digits, present={"invert_lr"}) == (
      "--invert_lr=-1.0 must be positive.")
  assert model_flags.problem({**base, "invert_heads": "a"}, digits).startswith(
      "--invert_heads='a' must be")
  assert model_flags.problem({**base, "model": "ladagan"}, digits).startswith(
      "--mode=invert belongs to --model=sagan/ylg_sagan")


@pytest.fixture(scope="module")
def tiny_run(tiny, tmp_path_factory):
  """The tiny networks saved as a checkpoint under TF-GAN's scopes (no training), and the tiny
  model's own sample written as a PNG: what run_inversion restores and inverts in-process."""
  root = tmp_path_factory.mktemp("tiny_run")
  names, tensors = ["global_step"], [tf.constant(7, tf.int64)]
  for scope, network in (("Generator", tiny["generator"]),
                         ("Discriminator", tiny["discriminator"])):
    for var in network.variables:
      names.append(f"{scope}/{var.name.split(':')[0]}")
      tensors.append(var)
  prefix = str(root / "model.ckpt-7")
  tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                    tensors=tensors)
  image = str(root / "sample.png")
  Image.fromarray(np.round((tiny["target"] + 1) * 127.5).astype(np.uint8)).save(image)
  return dict(cfg=dataclasses.replace(tiny["cfg"], model_dir=str(root)), ckpt=prefix,
              image=image, root=root)


def _record(out_dir):
  with open(os.path.join(out_dir, "inversion.json"), encoding="utf-8") as f:
    return json.load(f)


SHARPEN = 100.0  # the tiny random D attends almost uniformly (saliency spread 0.4%)


def _sharpened(attention):
  """softmax over keys of SHARPEN * log(attention): a peaked distribution, a function of the
  layer's own attention, so each head's and each image's saliency differ by tens of percent."""
  return tf.nn.softmax(SHARPEN * tf.math.log(tf.convert_to_tensor(attention)), axis=-1)


def test_run_inversion_weights_each_loss_by_the_chosen_heads_saliency_of_the_real_image(
    tiny, tiny_run, monkeypatch):
  """Step 0's logged losses (at the shared starts) of eqs. 3 and 4 equal numpy sums over the
  chosen head only (head 1 of 2), its S' / S'' computed in numpy from the real image's attention
  (sharpened in D, and in numpy likewise, so that a wrong head or image shows)."""
  networks = type(tiny["discriminator"])
  own = networks.attention_features

  def sharp_features(self, images, training=False, return_attention=True):
    features, attention = own(self, images, training=training, return_attention=return_attention)
    return features, (_sharpened(attention) if return_attention else None)
  monkeypatch.setattr(networks, "attention_features", sharp_features)
  options = si.InversionOptions(invert_image=tiny_run["image"], invert_label=LABEL,
                                invert_steps=1, invert_restarts=2, invert_heads="1")
  out_dir = mode.run_inversion(tiny_run["cfg"], options, checkpoint=tiny_run["ckpt"],
                             out_dir=str(tiny_run["root"] / "heads"))
  monkeypatch.undo()
  record = _record(out_dir)
  x = si.read_image(tiny_run["image"], 32)  # the PNG of the sample: [32, 32, 3]
  d = tiny["discriminator"]
  features, attention = (t.numpy().astype(np.float64)
                         for t in d.attention_features(tf.constant(x[None])))
  logits = SHARPEN * np.log(attention[0])  # [2 heads, 256 queries, 64 keys]
  peaked = np.exp(logits - logits.max(axis=-1, keepdims=True))
  peaked /= peaked.sum(axis=-1, keepdims=True)
  sal = peaked.mean(axis=1)  # [2 heads, 64 keys]: mean over the 256 queries
  assert np.abs(sal[0] - sal[1]).max() > 0.1 * sal.mean()  # the heads tell apart
  s1 = np.kron(sal[1].reshape(8, 8), np.ones((2, 2)))  # S'_1 on D0's 16x16 grid
  s1_image = np.kron(sal[1].reshape(8, 8), np.ones((4, 4)))  # S''_1 on the 32 px output
  starts = tiny["generate"](tf.constant(si.truncated_starts(2, 16, seed=0))).numpy()
  fake = tiny["d0"](tf.constant(starts), False).numpy()
  eq3 = (((fake - features) * s1[None, :, :, None]) ** 2).sum(axis=(1, 2, 3))
  eq4 = (((starts - x) * s1_image[None, :, :, None]) ** 2).sum(axis=(1, 2, 3))
  eq1 = ((starts - x) ** 2).sum(axis=(1, 2, 3))
  methods = record["methods"]
  np.testing.assert_allclose(methods["attention"]["losses_per_step"][0], eq3, rtol=1e-4)
  np.testing.assert_allclose(methods["weighted_pixel"]["losses_per_step"][0], eq4, rtol=1e-4)
  np.testing.assert_allclose(methods["pixel"]["losses_per_step"][0], eq1, rtol=1e-4)
  assert [methods[m]["equation"] for m in ("pixel", "attention", "weighted_pixel")] == [
      "1", "3", "4"]
  heads = record["saliency_heads"]
  assert heads["1"]["used"] and not heads["0"]["used"]
  np.testing.assert_allclose([heads[h]["max"] for h in "01"], sal.max(axis=1), rtol=1e-5)
  with Image.open(os.path.join(out_dir, "comparison.png")) as png:  # 5 tiles of 32 px
    assert png.size == (5 * 32, 32)


def _numpy_bilinear(image, size):
  """tf.image.resize's bilinear (half-pixel centres, no antialiasing) of [h, w, C] -> size^2."""
  def axis(n_in):
    pos = np.clip((np.arange(size) + 0.5) * n_in / size - 0.5, 0, n_in - 1)
    lo = np.floor(pos).astype(int)
    return lo, np.minimum(lo + 1, n_in - 1), pos - lo
  (y0, y1, fy), (x0, x1, fx) = axis(image.shape[0]), axis(image.shape[1])
  rows = image[y0] * (1 - fy)[:, None, None] + image[y1] * fy[:, None, None]
  return rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]


@pytest.mark.slow
def test_official_recipe_end_to_end_in_process_its_loss_falls_and_extrapolations_are_labelled(
    tiny_run, tmp_path):
  """--invert_recipe=official on a non-square PNG: the whole image resized bilinearly (numpy),
  every recipe part recorded, the summed eq. 3 loss falls, eqs. 1 and 4 labelled as extrapolated."""
  pixels = (np.random.RandomState(5).rand(20, 48, 3) * 255).astype(np.uint8)
  image = str(tmp_path / "wide.png")
  Image.fromarray(pixels).save(image)
  options = si.InversionOptions(invert_image=image, invert_label=LABEL, invert_recipe="official",
                                invert_steps=8, invert_restarts=2)
  out_dir = mode.run_inversion(tiny_run["cfg"], options, checkpoint=tiny_run["ckpt"],
                             out_dir=str(tmp_path / "official"))
  record = _record(out_dir)
  s = record["settings"]
  assert (s["lr"], s["steps"], s["restarts"], s["heads"], s["lookahead"], s["squared"],
          s["saliency_normalisation"], s["update_sn"], s["real_every_step"], s["preprocess"]) == (
              0.07, 8, 2, [0, 1], False, False, "nonzero", True, True, "resize_whole")
  with Image.open(os.path.join(out_dir, "original.png")) as png:
    written = np.asarray(png, np.float32) / 127.5 - 1.0
  expected = _numpy_bilinear(pixels.astype(np.float64) * (2 / 255) - 1, 32)
  np.testing.assert_allclose(written, expected, atol=1.5 / 127.5)  # PNG rounding
  losses = np.array(record["methods"]["attention"]["losses_per_step"]).sum(axis=1)  # [steps]
  assert losses[-1] < 0.8 * losses[0]
  sources = {m: record["methods"][m]["source"] for m in si.METHODS}
  assert sources["attention"].startswith("ylg/inverse_image.py")
  assert all("extrapolation" in sources[m] for m in ("pixel", "weighted_pixel"))


@pytest.mark.slow
def test_invert_mode_through_run_py_writes_every_output(tmp_path, capsys):
  """Train a 2-head SAGAN with EMA for 2 steps, then --mode=invert on a non-square JPEG."""
  model_dir = str(tmp_path / "run")
  hparams = dict(gf_dim=8, df_dim=8, z_dim=16, attention_resolution=16, num_heads=2)
  common = ["--model=sagan", "--ema_decay=0.99", f"--model_dir={model_dir}"] + [
      f"--{k}={v}" for k, v in hparams.items()]
  run_py(*common, "--mode=train", "--max_steps=2", "--batch_size=4", "--save_checkpoints_steps=2")
  image = tmp_path / "bird.jpg"
  Image.fromarray((np.random.RandomState(0).rand(40, 64, 3) * 255).astype(np.uint8)).save(image)
  run_py(*common, "--mode=invert", f"--invert_image={image}", "--invert_label=2",
         "--invert_steps=4", "--invert_restarts=2", "--invert_heads=1")
  out_dir = os.path.join(model_dir, "inversions", "bird_label2_step2_paper_seed0")
  expected = {"original.png", "inversion_attention.png", "inversion_pixel.png", "comparison.png",
              "inversion_weighted_pixel.png", "restarts_attention.png", "restarts_pixel.png",
              "restarts_weighted_pixel.png", "inversion.json", "saliency_head0.png",
              "saliency_head1.png"}
  assert set(os.listdir(out_dir)) == expected
  with open(os.path.join(out_dir, "inversion.json"), encoding="utf-8") as f:
    record = json.load(f)
  s = record["settings"]
  assert (s["steps"], s["restarts"], s["heads"], s["lr"], s["lookahead"]) == (
      4, 2, [1], 0.05, True)
  assert s["ema_generator"] is True and s["step"] == 2 and s["label"] == 2
  assert record["saliency_heads"]["1"]["used"] and not record["saliency_heads"]["0"]["used"]
  for method in si.METHODS:
    m = record["methods"][method]
    assert len(m["losses_per_step"]) == 4 and len(m["losses_per_step"][0]) == 2
    assert m["best_restart"] == int(np.argmin(m["final_losses"]))
    assert m["psnr"] == pytest.approx(m["psnr_per_restart"][m["best_restart"]], rel=1e-5)
  with Image.open(os.path.join(out_dir, "original.png")) as png:
    assert png.size == (32, 32)
  # In process: a rerun with the same settings finds the finished inversion; a bad label fails
  # before any network is built.
  cfg = tiny_config(model_dir, ema_decay=0.99, **hparams)
  options = si.InversionOptions(invert_image=str(image), invert_label=2, invert_steps=4,
                                invert_restarts=2, invert_heads="1")
  assert mode.run_inversion(cfg, options) == out_dir
  assert "inversion already done" in capsys.readouterr().out
  with pytest.raises(si.InversionInputError, match="--invert_label=10 is not a class of digits"):
    mode.run_inversion(cfg, dataclasses.replace(options, invert_label=10))
  # The networks it restores are the run's: G as export restores it (EMA), D's every variable.
  from estimators import export  # pylint: disable=import-outside-toplevel
  ckpt = mode.latest_checkpoint(model_dir)
  generator, discriminator, ema = mode.restore_networks(cfg, get_model("sagan"), ckpt)
  reference = export.restore_generator(cfg, ckpt, use_ema=True)
  assert ema and len(generator.variables) == len(reference.variables)
  for mine, theirs in zip(generator.variables, reference.variables):
    np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
  reader = tf.train.load_checkpoint(ckpt)
  for var in discriminator.variables:
    np.testing.assert_array_equal(var.numpy(), reader.get_tensor(
        "Discriminator/" + var.name.split(":")[0]))
