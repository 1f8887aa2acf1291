"""SAGAN and YLG-SAGAN through the registry: unchanged checkpoints, parameter counts, validation."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import data
from estimators import experiment, export, model_registry
from estimators.config import GANConfig
from estimators.models import get_model
from estimators.models.sagan import SAGANHParams, YLGSAGANHParams
from estimators.testing import tiny_config

BEFORE_REGISTRY = os.path.join(os.path.dirname(__file__), "testdata",
                               "checkpoint_keys_before_registry.json")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sagan", "sagan_ema_uncond", "ylg_sagan"])
def test_checkpoint_keys_and_shapes_are_those_written_before_the_registry(tmp_path, name):
  """The key layout the pre-registry code wrote (estimators/models/testdata, recorded from that
  code with the same tiny configs) is what the registry's models write: old checkpoints restore,
  evaluate and export unchanged."""
  recorded = json.load(open(BEFORE_REGISTRY))[name]
  cfg = tiny_config(tmp_path, max_steps=1, save_checkpoints_steps=1, **recorded["config"])
  ckpt = experiment.run_train(cfg)
  now = {k: list(v) for k, v in tf.train.load_checkpoint(ckpt).get_variable_to_shape_map().items()}
  assert now == recorded["keys"]
  export.restore_generator(cfg, ckpt, use_ema=cfg.ema_decay > 0)  # every generator key found


@pytest.mark.parametrize("model,hparams,expected", [
    # TF-GAN example widths at 128 px, gf = df = 64, 1000 classes, attention at feat32.
    ("sagan", SAGANHParams(attention_resolution=32), (42_078_852, 39_463_618)),
    ("ylg_sagan", YLGSAGANHParams(attention_resolution=32), (42_078_852, 39_463_618)),
])
def test_parameter_counts_through_the_registry(model, hparams, expected):
  cfg = GANConfig(model=model, hparams=hparams, image_size=128, num_classes=1000)
  rows = model_registry.parameter_counts(get_model(model).build_networks(cfg))
  assert [(name, trainable) for name, trainable, _ in rows] == [
      ("generator", expected[0]), ("discriminator", expected[1])]


def test_validation_names_the_flag_to_change():
  sagan, ylg = get_model("sagan"), get_model("ylg_sagan")
  digits = data.get_spec("digits")
  assert sagan.validate(SAGANHParams(attention_resolution=16, gf_dim=16, df_dim=16), 32,
                        digits) is None
  assert sagan.validate(SAGANHParams(), 48, digits) == (
      "--image_size must be one of [32, 64, 128], got 48.")
  assert sagan.validate(SAGANHParams(attention_resolution=32), 32, digits) == (
      "--attention_resolution=32 is not a feature-map size of both networks at 32 px; choose "
      "one of (8, 16).")
  assert sagan.validate(SAGANHParams(attention_resolution=32, attention_type="none"), 32,
                        digits) is None
  assert ylg.validate(YLGSAGANHParams(attention_resolution=16, gf_dim=16, df_dim=16), 32,
                      digits) == (
      "attention at 16x16 sees 64 (G) and 32 (D) channels; 8 head(s) need multiples of 64: "
      "raise --gf_dim/--df_dim.")
  assert sagan.suggested_hparams(128) == {"attention_resolution": 64}
  assert ylg.suggested_hparams(128) == {"attention_resolution": 32}
  assert ylg.suggested_hparams(32) == {"attention_resolution": 16}


def test_a_config_of_one_model_refuses_another_models_hyperparameters():
  with pytest.raises(TypeError, match="takes YLGSAGANHParams hyperparameters, got SAGANHParams"):
    GANConfig(model="ylg_sagan", hparams=SAGANHParams())
  cfg = GANConfig(model="sagan", hparams=SAGANHParams(gf_dim=8))
  assert cfg.replace(model="ylg_sagan").hparams == YLGSAGANHParams()  # its own defaults
  assert cfg.with_hparams(df_dim=4).hparams == SAGANHParams(gf_dim=8, df_dim=4)
  assert cfg.to_dict()["model"]["hparams"]["gf_dim"] == 8


def test_bn_inference_batch_makes_each_image_depend_on_its_batch_and_is_exported(tmp_path):
  spec = get_model("sagan")
  outputs = {}
  for mode in ("moving", "batch"):
    cfg = tiny_config(tmp_path / mode, bn_inference=mode)
    generator = spec.make_generator(cfg)
    inputs = spec.sample_inputs(cfg, 6, seed=3)
    full = spec.generate(cfg, generator, {k: tf.constant(v) for k, v in inputs.items()},
                         training=False)["images"].numpy()
    half = spec.generate(cfg, generator, {k: tf.constant(v[:3]) for k, v in inputs.items()},
                         training=False)["images"].numpy()
    outputs[mode] = (full[:3], half)
    notes = spec.serving_notes(cfg)
    assert (notes is None) == (mode == "moving")
  moving_full, moving_half = outputs["moving"]
  batch_full, batch_half = outputs["batch"]
  np.testing.assert_allclose(moving_full, moving_half, atol=1e-6)  # batch-independent
  assert np.abs(batch_full - batch_half).max() > 1e-3  # depends on the rest of the batch
  assert np.abs(batch_full - moving_full).max() > 1e-3


@pytest.mark.slow
def test_a_batch_statistics_export_says_so_beside_the_saved_model(tmp_path):
  cfg = tiny_config(tmp_path, bn_inference="batch", max_steps=1, save_checkpoints_steps=1)
  experiment.run_train(cfg)
  path = experiment.run_export(cfg)
  notes = open(os.path.join(path, "serving_notes.txt")).read()
  assert "batch statistics at inference" in notes and "(100)" in notes
