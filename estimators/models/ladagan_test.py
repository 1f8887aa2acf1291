"""LadaGAN through the registry: paper parameter counts, the D step's augmentation and R1, bCR,
EMA, every engine, export with attention maps, the attention_maps mode."""
import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from data import diff_augment
from estimators import experiment, export, losses, model_registry
from estimators.engines import model_pieces, plan, train_op
from estimators.engines.input_fn import make_train_input_fn
from estimators.engines.model_pieces import make_discriminator_fn, make_generator_fn
from estimators.config import GANConfig
from estimators.models import get_model, ladagan_losses
from estimators.networks import network_for_graph
from estimators.models.ladagan import LadaGANHParams
from estimators.engines.optimizers import EMA_SUFFIX
from estimators.testing import tiny_config
from tensorflow_gan.python.estimator import gan_estimator as tfgan_estimator

TINY = dict(model="ladagan", z_dim=16, g_dim="16,8,4", g_mlp_dim=8, d_enc_dim="8,8",
            d_out_dim="8,8", batch_size=4, num_eval_samples=40, eval_batch_size=20)


def _scalars(model_dir):
  """{tag: [values]} of every summary in the run's event files (images: an empty list)."""
  values = {}
  for path in glob.glob(os.path.join(model_dir, "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for v in event.summary.value:
        values.setdefault(v.tag, [])
        if v.HasField("simple_value"):
          values[v.tag].append(v.simple_value)
  return values


def _tags(model_dir):
  return set(_scalars(model_dir))


@pytest.mark.parametrize("image_size,generator,discriminator", [
    (32, 19_901_647, 6_777_476), (64, 19_900_351, 7_006_660), (128, 24_026_255, 7_063_908)])
def test_paper_parameter_counts_through_the_registry(image_size, generator, discriminator):
  """The paper's #Params (generator, as Keras counts: BN moving statistics included) of the
  CIFAR-10, CelebA-64 and FFHQ-128 configs; the discriminator's as the official code builds it."""
  cfg = GANConfig(model="ladagan", image_size=image_size, num_classes=0)
  rows = model_registry.parameter_counts(get_model("ladagan").build_networks(cfg))
  assert [(name, total) for name, _, total in rows] == [
      ("generator", generator), ("discriminator", discriminator)]


def test_validation_and_run_defaults():
  spec = get_model("ladagan")
  assert spec.validate(LadaGANHParams(), 32, None) is None
  assert spec.validate(LadaGANHParams(), 48, None) == (
      "LadaGAN builds [32, 64, 128] px images, not 48")
  assert spec.validate(LadaGANHParams(g_dim="1024,256,66"), 32, None) == (
      "Lada attention splits widths over --lada_heads=4; widths [66] (--g_dim/--d_enc_dim) do "
      "not divide.")
  assert "a 64 px conv decoder needs 1 widths" in spec.validate(
      LadaGANHParams(g_decoder="64,32"), 64, None)
  assert model_registry.check_hparams(LadaGANHParams(diffaugment="color,blur")).startswith(
      "--diffaugment='color,blur' must name DiffAugment ops")
  assert model_registry.check_hparams(LadaGANHParams(g_dim="12,x")).startswith("--g_dim='12,x'")
  assert spec.run_defaults == {"generator_lr": 2e-4, "discriminator_lr": 2e-4, "beta1": 0.5,
                               "beta2": 0.99, "ema_decay": 0.999,
                               # the official train_step (training_step_test proves it)
                               "step_order": "discriminator_first", "adam_epsilon": 1e-7,
                               "generator_bn_updates": "both_steps", "ema_variables": "all",
                               "bn_moving_variance": "unbiased"}
  assert not spec.conditional


def test_the_d_step_sees_augmented_images_and_r1_differentiates_that_same_draw(tmp_path):
  """In the train graph D's real outputs carry the augmented reals; R1 from those logits equals
  the reference r1_penalty (which calls D again) on the same augmented images."""
  cfg = tiny_config(tmp_path, **TINY, r1_weight=0.5)
  spec = get_model("ladagan")
  with tf.Graph().as_default():
    tf.compat.v1.set_random_seed(1)
    generator, discriminator = spec.make_generator(cfg), spec.make_discriminator(cfg)
    real = {"images": tf.random.uniform([4, 32, 32, 3], -1, 1, seed=2)}
    out = spec.discriminate(cfg, discriminator, real, {}, training=True)
    evaluation = spec.discriminate(cfg, discriminator, real, {}, training=False)
    fake = spec.discriminate(cfg, discriminator, spec.generate(
        cfg, generator, {"noise": tf.random.normal([4, 16], seed=3)}, training=True), {},
                             training=True)

    class Model:  # the two fields of TF-GAN's GANModel the loss reads
      discriminator_real_outputs, discriminator_gen_outputs = out, fake
    loss, scalars = spec.discriminator_loss(cfg, Model)
    _, reference = ladagan_losses.r1_penalty(lambda x: discriminator(x, training=True),
                                             out["images"], weight=0.5)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      augmented, raw, eval_seen, r1, r1_ref, total, real_logits, fake_logits = sess.run(
          [out["images"], real["images"], evaluation["images"], scalars["loss/discriminator_r1"],
           reference, loss, out["logits"], fake["logits"]])
  assert np.abs(augmented - raw).mean() > 0.05  # color + translation changed the reals
  np.testing.assert_array_equal(eval_seen, raw)  # evaluation mode: no augmentation
  assert r1 > 0 and r1 == pytest.approx(r1_ref, rel=1e-5)
  expected = np.mean(np.log1p(np.exp(-real_logits))) + np.mean(np.log1p(np.exp(fake_logits)))
  assert total == pytest.approx(expected + r1, rel=1e-5)


@pytest.mark.parametrize("size, overrides, overlaps", [
    (32, {}, True),  # the released CIFAR-10 / CelebA-64 G: no batch norm
    pytest.param(64, dict(g_decoder="4", d_enc_dim="8,8,8"), False,  # FFHQ/LSUN-128's decoder
                 marks=pytest.mark.slow),
    pytest.param(64, dict(g_decoder="4", d_enc_dim="8,8,8", generator_bn_updates="generator_step"),
                 True, marks=pytest.mark.slow),
])
def test_engine_overlaps_g_forward_with_d_update_when_g_has_no_bn_updated_by_d(
    tmp_path, monkeypatch, size, overrides, overlaps):
  """Issue #27: LadaGAN's step (D first, fresh noise) builds the G sub-step's generator forward
  outside the dependency on D's update (engines/train_op.py), as the official tf.function
  orders it, unless G's forward touches what D's update writes: the conv decoder's batch-norm
  statistics, which D's sub-step also updates ('both_steps')."""
  cfg = tiny_config(tmp_path, **{**TINY, "image_size": size, **overrides})
  decisions, decide = [], train_op.generator_forward_may_overlap
  monkeypatch.setattr(train_op, "generator_forward_may_overlap",
                      lambda *args: decisions.append(decide(*args)) or decisions[-1])
  with tf.Graph().as_default():
    features, real = tf.compat.v1.data.make_one_shot_iterator(
        make_train_input_fn(cfg)()).get_next()
    resolved = plan.resolve(cfg)
    pieces = model_pieces.make_pieces(resolved)
    train_op.step_train_op(pieces, resolved.step, real, features, *pieces.make_optimizers())
  assert decisions == [overlaps]


def test_bcr_d_loss_is_ns_plus_r1_unaugmented_plus_consistency_and_g_sees_raw_fakes(
    tmp_path, monkeypatch):
  """The bCR path through the engines' model (TF-GAN's get_gan_model, the estimators' G and D
  fns): the D loss equals NS + R1 on the un-augmented reals + weight * (MSE(D(x), D(T(x))) +
  MSE(D(G(z)), D(T(G(z))))), and the G loss is NS on the raw fakes, all recomputed eagerly with
  the graph's weights and T's own draws."""
  cfg = tiny_config(tmp_path, **TINY, r1_weight=0.5, bcr_weight=0.3,
                    diffaugment="color,translation,cutout")
  spec = get_model("ladagan")
  draws, real_augment = [], diff_augment.diff_augment

  def recording_augment(images, *args, **kwargs):
    out = real_augment(images, *args, **kwargs)
    draws.append(out)
    return out
  monkeypatch.setattr(diff_augment, "diff_augment", recording_augment)
  with tf.Graph().as_default():
    tf.compat.v1.set_random_seed(1)
    reals = tf.random.uniform([4, 32, 32, 3], -1, 1, seed=2)
    gan_model = tfgan_estimator.get_gan_model(
        tf.estimator.ModeKeys.TRAIN, make_generator_fn(cfg),
        make_discriminator_fn(cfg), {"images": reals},
        {"noise": tf.random.normal([4, 16], seed=3)}, add_summaries=None)
    d_loss, d_scalars = losses.model_loss(spec, cfg, "discriminator", gan_model)
    g_loss, _ = losses.model_loss(spec, cfg, "generator", gan_model)
    assert len(draws) == 2  # T(x) and T(G(z)) of the consistency term; no other augmentation
    discriminator, _ = network_for_graph("discriminator", cfg)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      got = sess.run(dict(
          x=reals, fakes=gan_model.generated_data["images"],
          d_real_saw=gan_model.discriminator_real_outputs["images"],
          d_fake_saw=gan_model.discriminator_gen_outputs["images"], aug=draws,
          d_loss=d_loss, r1=d_scalars["loss/discriminator_r1"],
          bcr=d_scalars["loss/discriminator_bcr"], g_loss=g_loss,
          weights=discriminator.weights))
  np.testing.assert_array_equal(got["d_real_saw"], got["x"])  # un-augmented D and G steps
  np.testing.assert_array_equal(got["d_fake_saw"], got["fakes"])
  aug_real, aug_fake = got["aug"]
  assert np.abs(aug_real - got["x"]).mean() > 0.05 and np.abs(aug_fake - got["fakes"]).mean() > 0.05
  eager_d = spec.make_discriminator(cfg)
  eager_d(got["x"])
  eager_d.set_weights(got["weights"])
  d = lambda images: eager_d(tf.constant(images), training=True)
  real, fake = d(got["x"]).numpy(), d(got["fakes"]).numpy()
  augmented = d(np.concatenate([aug_real, aug_fake])).numpy()  # one D call on both, as bCR's
  softplus = lambda v: np.logaddexp(0.0, v)
  ns = softplus(-real).mean() + softplus(fake).mean()
  r1 = ladagan_losses.r1_penalty(d, tf.constant(got["x"]), weight=0.5)[1].numpy()
  bcr = 0.3 * (np.mean((real - augmented[:4]) ** 2) + np.mean((fake - augmented[4:]) ** 2))
  assert r1 > 1e-3 and bcr > 1e-4
  assert got["r1"] == pytest.approx(r1, rel=1e-4)
  assert got["bcr"] == pytest.approx(bcr, rel=1e-4)
  assert got["d_loss"] == pytest.approx(ns + r1 + bcr, rel=1e-5)
  assert got["g_loss"] == pytest.approx(softplus(-fake).mean(), rel=1e-5)


@pytest.mark.slow
def test_tiny_ladagan_trains_evaluates_exports_with_ema_and_attention(tmp_path):
  cfg = tiny_config(tmp_path / "run", **TINY, ema_decay=0.9, max_steps=3,
                    save_checkpoints_steps=3, save_summary_steps=1)
  ckpt = experiment.run_train(cfg)
  reader = tf.train.load_checkpoint(ckpt)
  start = tf.train.load_checkpoint(str(tmp_path / "run" / "model.ckpt-0"))
  weights = [n for n in start.get_variable_to_shape_map()
             if n.startswith("Generator/") and n.endswith("/kernel")]
  assert len(weights) > 10
  for name in weights:  # the EMA starts as an exact copy of G, then lags it
    np.testing.assert_array_equal(start.get_tensor(name + "/" + EMA_SUFFIX),
                                  start.get_tensor(name))
  assert max(np.abs(reader.get_tensor(n + "/" + EMA_SUFFIX) - reader.get_tensor(n)).max()
             for n in weights) > 0
  assert {"loss/generator", "loss/discriminator", "loss/discriminator_r1",
          "discriminator/mean_real_logit", "fixed_noise_grid/image",
          "attention/generator_8x8/image", "attention/generator_32x32/image"} <= _tags(
              cfg.model_dir)
  import glob  # pylint: disable=import-outside-toplevel
  shapes = {}
  for events in glob.glob(f"{cfg.model_dir}/events.out.tfevents.*"):
    for event in tf.compat.v1.train.summary_iterator(events):
      for value in event.summary.value:
        if value.tag.startswith("attention/generator_"):
          shapes[value.tag] = tf.io.decode_png(value.image.encoded_image_string).shape
  assert shapes == {f"attention/generator_{s}x{s}/image": (128, 5 * 128, 3)  # sample, 4 heads
                    for s in (8, 16, 32)}
  record = experiment.run_eval(cfg)
  assert record["protocol"]["ema_weights"] is True and np.isfinite(
      record["metrics"]["digits_fid"])
  path = experiment.run_export(cfg)
  loaded = tf.saved_model.load(path)
  z = tf.random.stateless_normal([2, 16], seed=[4, 5])
  images = loaded.signatures["serving_default"](noise=z)["images"].numpy()
  assert images.shape == (2, 32, 32, 3) and np.abs(images).max() <= 1.0  # clipped raw output
  attention = loaded.signatures["attention"](noise=z)
  np.testing.assert_allclose(attention["images"], images, atol=1e-6)
  assert [attention[f"attention_{s}"].shape for s in (8, 16, 32)] == [
      (2, 4, 64), (2, 4, 256), (2, 4, 1024)]
  np.testing.assert_allclose(attention["attention_16"].numpy().sum(-1), 1.0, atol=1e-5)
  generator = export.restore_generator(cfg, ckpt, use_ema=True)
  np.testing.assert_allclose(np.clip(generator(z).numpy(), -1, 1), images, atol=1e-5)

  from estimators import figures  # pylint: disable=import-outside-toplevel
  from_ckpt = figures.run_attention_maps(cfg, 3, seed=1)
  from_saved = figures.run_attention_maps(cfg, 3, seed=1, saved_model=path,
                                          out_dir=str(tmp_path / "from_saved"))
  assert [os.path.basename(p) for p in from_ckpt] == [
      "attention_8x8.png", "attention_16x16.png", "attention_32x32.png"]
  from PIL import Image  # pylint: disable=import-outside-toplevel
  for a, b in zip(from_ckpt, from_saved):
    grid = np.asarray(Image.open(a))
    assert grid.shape == (3 * 128, 5 * 128, 3)  # a row per sample: the image and 4 heads
    np.testing.assert_allclose(grid.astype(float), np.asarray(Image.open(b)).astype(float),
                               atol=2)


@pytest.mark.slow
@pytest.mark.parametrize("engine", [
    dict(distribution="one_device"), dict(use_tpu=True),
    # TF-GAN's own GANEstimator (no longer the default engine), with the bCR path
    # (with GANEstimator's step: it cannot run LadaGAN's, D first; training_step_test)
    dict(engine="gan_estimator", bcr_weight=1.0, diffaugment="color,translation,cutout",
         step_order="generator_first", generator_bn_updates="generator_step")])
def test_tiny_ladagan_trains_through_each_engine_and_the_bcr_path(tmp_path, engine):
  """Each engine trains both networks, logs finite losses (bCR: its term, the D loss above it)
  and exports; the bCR loss itself is recomputed in the test above."""
  cfg = tiny_config(tmp_path, **TINY, max_steps=2, save_checkpoints_steps=2,
                    save_summary_steps=1, **engine)
  ckpt = experiment.run_train(cfg)
  assert export.checkpoint_step(ckpt) == 2
  before = tf.train.load_checkpoint(str(tmp_path / "model.ckpt-0"))
  after = tf.train.load_checkpoint(ckpt)
  for key in ("Generator/generator/to_rgb/kernel", "Discriminator/discriminator/logits_conv/kernel"):
    assert np.abs(after.get_tensor(key) - before.get_tensor(key)).max() > 0
  scalars = _scalars(cfg.model_dir)
  if not cfg.use_tpu:  # TPUGANEstimator (built without add_summaries) logs no losses
    for tag in ("loss/generator", "loss/discriminator", "loss/discriminator_r1"):
      assert len(scalars[tag]) >= 1 and np.isfinite(scalars[tag]).all(), (tag, scalars[tag])
  if "bcr_weight" in engine:
    bcr, d_loss = scalars["loss/discriminator_bcr"], scalars["loss/discriminator"]
    assert len(bcr) == len(d_loss) >= 1 and all(0 < b < d for b, d in zip(bcr, d_loss))
  serve = tf.saved_model.load(experiment.run_export(cfg)).signatures["serving_default"]
  assert serve(noise=tf.zeros([1, 16]))["images"].shape == (1, 32, 32, 3)
