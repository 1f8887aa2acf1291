"""YLG-SAGAN: SAGAN with only the attention layer replaced (Daras et al. 2020, sec. 6)."""
import numpy as np
import pytest
import tensorflow as tf

from estimators import experiment, export
from estimators.models import get_model
from estimators.networks import make_discriminator, make_generator
from estimators.testing import tiny_config
from tfgan_attention import SelfAttention, YLGAttention


def _count(model):
  return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


def _ylg_config(path, **kw):
  # 8 heads need 64 channels at the attention block: 4*gf in G and 2*df in D at 32 px.
  return tiny_config(path, model="ylg_sagan", gf_dim=16, df_dim=32, **kw)


@pytest.mark.parametrize("overrides", [{}, {"ylg_esa": False}, {"ylg_layout": "strided"},
                                       {"ylg_implementation": "dense"}])
def test_ylg_networks_use_ylg_attention_with_sagan_parameter_count(tmp_path, overrides):
  cfg = _ylg_config(tmp_path, **overrides)
  g, d = make_generator(cfg), make_discriminator(cfg)
  z, y = tf.zeros([2, cfg.hparams.z_dim]), tf.constant([1, 2])
  images, attn = g(z, y, return_attention=True)
  d(images, y)
  assert isinstance(g.attention, YLGAttention) and isinstance(d.attention, YLGAttention)
  assert g.attention.esa == overrides.get("ylg_esa", True)
  sagan8 = tiny_config(tmp_path, model="sagan", gf_dim=16, df_dim=32, num_heads=8)
  g8, d8 = make_generator(sagan8), make_discriminator(sagan8)
  d8(g8(z, y), y)
  assert isinstance(g8.attention, SelfAttention) and not isinstance(g8.attention, YLGAttention)
  assert (_count(g), _count(d)) == (_count(g8), _count(d8))  # "parameters not affected"


# YLG-SAGAN declares SAGAN's step: every engine that runs SAGAN's runs it (TPUGANEstimator with
# its own step's flags, as gan_estimator_test's SAGAN run).
ENGINES = {"in_graph": {}, "gan_estimator": {"engine": "gan_estimator"},
           "tpu_gan_estimator": dict(use_tpu=True, step_order="discriminator_first",
                                     generator_bn_updates="both_steps")}


@pytest.mark.slow
@pytest.mark.parametrize("engine", list(ENGINES))
def test_tiny_ylg_sagan_trains_through_the_estimator_and_exports(tmp_path, engine):
  cfg = _ylg_config(tmp_path, max_steps=2, save_checkpoints_steps=2, save_summary_steps=2,
                    **ENGINES[engine])
  ckpt = experiment.run_train(cfg)
  assert export.checkpoint_step(ckpt) == 2
  path = experiment.run_export(cfg)
  serve = tf.saved_model.load(path).signatures["serving_default"]
  inputs = {"noise": tf.random.stateless_normal([3, cfg.hparams.z_dim], seed=[1, 2]),
            "labels": tf.constant([0, 1, 2])}
  out = serve(**inputs)["images"].numpy()
  assert out.shape == (3, 32, 32, 3)
  assert np.isfinite(out).all() and np.abs(out).max() <= 1.0
  # What is served is the trained generator restored eagerly (inference mode) on the same noise
  # and labels, to float round-off; not the initial weights.
  spec = get_model(cfg.model)

  def restored(checkpoint):
    generator = export.restore_generator(cfg, checkpoint)
    return spec.images(spec.generate(cfg, generator, inputs, training=False)).numpy()
  np.testing.assert_allclose(out, restored(ckpt), rtol=0, atol=1e-5)
  initial = restored(f"{cfg.model_dir}/model.ckpt-0")
  assert np.abs(out - initial).max() > 1e-4
  reader = tf.train.load_checkpoint(ckpt)
  gates = [n for n in reader.get_variable_to_shape_map() if n.endswith("g_ops/sigma")]
  assert gates == ["Generator/generator/g_ops/sigma"]
