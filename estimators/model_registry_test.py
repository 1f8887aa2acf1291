"""The registry makes a model a self-contained addition: a toy model defined only in this file
trains, evaluates, exports, reloads and samples through run.py's modes and the tf.distribute
engine, with no shared module knowing about it; and the registry's checks.

Run as a script, this file registers the toy model and then runs run.py's main with the command
line: that is how the end-to-end test drives run.py (flags are defined from the registry when
run.py is imported, so the model must be registered first).
"""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run as a script from anywhere
  sys.path.insert(0, ROOT)

from estimators import model_registry  # noqa: E402  pylint: disable=wrong-import-position
from estimators.model_registry import POSITIVE, ModelSpec, hparam  # noqa: E402  pylint: disable=wrong-import-position

TOY = "toy_dcgan"


@dataclasses.dataclass(frozen=True)
class ToyHParams:
  z_dim: int = hparam(16, "Noise dimension.", check=POSITIVE)
  toy_width: int = hparam(8, "Width unit of both toy networks.", check=POSITIVE)
  toy_r1_gamma: float = hparam(1.0, "R1 weight (gamma / 2 * E|grad D(x)|^2).")


class ToyDCGAN(ModelSpec):
  """Unconditional DCGAN, non-saturating loss, R1 on reals, an extra summary and mode."""
  name = TOY
  description = "toy unconditional DCGAN (tests only)"
  hparams_class = ToyHParams
  conditional = False
  run_defaults = {"beta1": 0.5, "beta2": 0.99}
  modes = {"toy_stats": lambda cfg, options: ToyDCGAN.write_stats(cfg, options)}

  def validate(self, hparams, image_size, dataset):
    return None if image_size == 32 else f"{TOY} builds 32 px images, not {image_size}"

  def make_generator(self, cfg):
    w = cfg.hparams.toy_width
    return tf.keras.Sequential([
        tf.keras.layers.Dense(4 * 4 * 4 * w, name="toy_g_dense"),
        tf.keras.layers.Reshape([4, 4, 4 * w]),
        tf.keras.layers.Conv2DTranspose(2 * w, 4, 2, "same", activation="relu", name="toy_g_up1"),
        tf.keras.layers.Conv2DTranspose(w, 4, 2, "same", activation="relu", name="toy_g_up2"),
        tf.keras.layers.Conv2DTranspose(3, 4, 2, "same", activation="tanh", name="toy_g_up3"),
    ], name="toy_generator")

  def make_discriminator(self, cfg):
    w = cfg.hparams.toy_width
    return tf.keras.Sequential([
        tf.keras.layers.Conv2D(w, 4, 2, "same", activation=tf.nn.leaky_relu, name="toy_d_c1"),
        tf.keras.layers.Conv2D(2 * w, 4, 2, "same", activation=tf.nn.leaky_relu, name="toy_d_c2"),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(1, name="toy_d_out"),
    ], name="toy_discriminator")

  def generate(self, cfg, generator, inputs, training):
    return {"images": generator(inputs["noise"], training=training)}

  def discriminate(self, cfg, discriminator, data, inputs, training):
    return discriminator(data["images"], training=training)[:, 0]  # [B]

  def generator_loss(self, cfg, gan_model):
    return tf.reduce_mean(tf.nn.softplus(-gan_model.discriminator_gen_outputs)), {}

  def discriminator_loss(self, cfg, gan_model):
    real, fake = gan_model.discriminator_real_outputs, gan_model.discriminator_gen_outputs
    main = tf.reduce_mean(tf.nn.softplus(-real)) + tf.reduce_mean(tf.nn.softplus(fake))
    grad, = tf.gradients(tf.reduce_sum(real), gan_model.real_data["images"])
    r1 = 0.5 * cfg.hparams.toy_r1_gamma * tf.reduce_mean(tf.reduce_sum(grad ** 2, [1, 2, 3]))
    return main + r1, {"loss/discriminator_r1": r1}

  def generator_summaries(self, cfg, generator):
    super().generator_summaries(cfg, generator)
    with tf.compat.v1.name_scope(""):
      tf.compat.v1.summary.scalar("toy/generator_weights", tf.add_n(
          [tf.reduce_sum(tf.abs(v)) for v in generator.trainable_variables]))

  @staticmethod
  def write_stats(cfg, options):
    """The extra mode: the latest checkpoint's step and the generator's parameter count."""
    from estimators import export, run_dir  # pylint: disable=import-outside-toplevel
    ckpt = export.resolve_checkpoint(options["checkpoint"] or cfg.model_dir)
    generator = export.restore_generator(cfg, ckpt)
    run_dir.atomic_write_json(os.path.join(cfg.model_dir, "toy_stats.json"), {
        "step": export.checkpoint_step(ckpt),
        "generator_parameters": int(sum(np.prod(v.shape) for v in generator.variables))})
    print("toy_stats written")


def _register():
  if TOY not in model_registry.MODELS:
    model_registry.register(ToyDCGAN())


@pytest.fixture
def toy_registered():
  import estimators.models  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  _register()
  yield
  model_registry.unregister(TOY)


def _run_py(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
  proc = subprocess.run([sys.executable, os.path.abspath(__file__), *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=900)
  if proc.returncode:
    raise AssertionError(f"{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
  return proc


def _tags(model_dir):
  tags = set()
  for name in os.listdir(model_dir):
    if name.startswith("events.out.tfevents"):
      for event in tf.compat.v1.train.summary_iterator(os.path.join(model_dir, name)):
        tags.update(v.tag for v in event.summary.value)
  return tags


@pytest.mark.slow
def test_toy_model_defined_here_runs_every_mode_of_run_py(tmp_path):
  model_dir = tmp_path / "toy"
  common = [f"--model={TOY}", f"--model_dir={model_dir}", "--batch_size=8",
            "--num_eval_samples=100", "--toy_width=4"]
  proc = _run_py(*common, "--max_steps=4", "--eval_every_steps=2", "--save_checkpoints_steps=2",
                 "--save_summary_steps=2")
  assert "SavedModel:" in proc.stdout
  records = [json.loads(line) for line in open(model_dir / "metrics.jsonl")]
  assert [r["step"] for r in records] == [0, 2, 4]
  assert all(np.isfinite(r["metrics"]["digits_fid"]) for r in records)
  config = json.load(open(model_dir / "run_config.json"))["config"]
  assert config["model"] == {"name": TOY, "hparams": {"z_dim": 16, "toy_width": 4,
                                                      "toy_r1_gamma": 1.0}}
  assert (config["beta1"], config["beta2"]) == (0.5, 0.99)  # the model's run_defaults
  assert {"loss/generator", "loss/discriminator", "loss/discriminator_r1",
          "toy/generator_weights", "fixed_noise_grid/image"} <= _tags(model_dir)

  export_dir = model_dir / "export" / "4"
  serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
  assert set(serve.structured_input_signature[1]) == {"noise"}  # unconditional: no labels
  images = serve(noise=tf.zeros([3, 16]))["images"].numpy()
  assert images.shape == (3, 32, 32, 3) and np.abs(images).max() <= 1.0

  out = tmp_path / "samples"
  _run_py(*common, "--mode=sample", f"--saved_model={export_dir}", "--num_samples=5",
          f"--sample_dir={out}")
  assert len([f for f in os.listdir(out) if f.endswith(".png")]) == 6  # 5 + grid
  from_ckpt = tmp_path / "from_ckpt"
  _run_py(*common, "--mode=sample", "--num_samples=5", f"--sample_dir={from_ckpt}")
  from PIL import Image  # pylint: disable=import-outside-toplevel
  np.testing.assert_allclose(  # the SavedModel and the checkpoint give the same images
      np.asarray(Image.open(out / "000002.png"), np.float32),
      np.asarray(Image.open(from_ckpt / "000002.png"), np.float32), atol=1)

  proc = _run_py(*common, "--mode=eval", f"--saved_model={export_dir}")
  assert np.isfinite(json.loads(proc.stdout[proc.stdout.index("{"):])["metrics"]["digits_fid"])
  _run_py(*common, "--mode=toy_stats")
  stats = json.load(open(model_dir / "toy_stats.json"))
  # Dense 16 -> 256, then 4x4 transposed convolutions 16 -> 8 -> 4 -> 3 channels (+ biases).
  generator_parameters = (16 * 256 + 256) + (16 * 16 * 8 + 8) + (16 * 8 * 4 + 4) + (16 * 4 * 3 + 3)
  assert stats == {"step": 4, "generator_parameters": generator_parameters} == {
      "step": 4, "generator_parameters": 7119}
  dry = _run_py(*common, "--dry_run")
  assert "| generator | 7,119 | 7,119 |" in dry.stderr  # stdout holds the JSON alone


@pytest.mark.slow
def test_toy_model_trains_through_the_distribute_engine_and_exports(tmp_path, toy_registered):
  from estimators import experiment, export  # pylint: disable=import-outside-toplevel
  from estimators.testing import tiny_config  # pylint: disable=import-outside-toplevel
  cfg = tiny_config(tmp_path / "toy", model=TOY, toy_width=4, distribution="one_device",
                    max_steps=3, save_checkpoints_steps=3, save_summary_steps=1)
  ckpt = experiment.run_train(cfg)
  assert export.checkpoint_step(ckpt) == 3
  reader = tf.train.load_checkpoint(ckpt)
  before = tf.train.load_checkpoint(str(tmp_path / "toy" / "model.ckpt-0"))
  for key in ("Generator/toy_generator/toy_g_up3/kernel",
              "Discriminator/toy_discriminator/toy_d_out/kernel"):
    assert np.abs(reader.get_tensor(key) - before.get_tensor(key)).max() > 0  # both trained
  assert {"loss/generator", "loss/discriminator", "loss/discriminator_r1"} <= _tags(cfg.model_dir)
  serve = tf.saved_model.load(experiment.run_export(cfg)).signatures["serving_default"]
  generator = export.restore_generator(cfg, ckpt)
  z = tf.random.stateless_normal([2, 16], seed=[1, 2])
  np.testing.assert_allclose(serve(noise=z)["images"], generator(z), atol=1e-6)


def test_registry_refuses_duplicates_and_unknown_names(toy_registered):
  from estimators.models import get_model, names  # pylint: disable=import-outside-toplevel
  assert TOY in names() and {"sagan", "ylg_sagan"} <= set(names())
  with pytest.raises(ValueError, match="registered twice"):
    model_registry.register(ToyDCGAN())
  with pytest.raises(ValueError, match="unknown model 'nope'; choose one of: .*sagan"):
    get_model("nope")
  assert model_registry.check_hparams(ToyHParams(toy_width=0)) == "--toy_width=0 must be positive."


def test_model_flags_are_generated_checked_and_defaulted_per_model(toy_registered):
  from absl import flags  # pylint: disable=import-outside-toplevel
  import data  # pylint: disable=import-outside-toplevel
  from estimators import model_flags  # pylint: disable=import-outside-toplevel
  values = flags.FlagValues()
  model_flags.define_flags(values)
  values(["prog", "--toy_width=5"])
  assert values["toy_width"].value == 5 and values["gf_dim"].value is None
  assert "toy_dcgan: 16" in values["z_dim"].help and "sagan: 128" in values["z_dim"].help
  digits = data.get_spec("digits")
  base = {"model": TOY, "image_size": 32, "mode": "train"}
  assert model_flags.problem({**base, "toy_width": 5}, digits, present={"toy_width"}) is None
  assert model_flags.hparams_of(TOY, {"toy_width": 5, "gf_dim": None}) == ToyHParams(toy_width=5)
  assert "--gf_dim is not a hyperparameter of --model=toy_dcgan" in model_flags.problem(
      {**base, "gf_dim": 8}, digits, present={"gf_dim"})
  assert model_flags.problem({**base, "image_size": 64}, digits) == (
      "toy_dcgan builds 32 px images, not 64")
  assert model_flags.problem({**base, "toy_width": -1}, digits) == "--toy_width=-1 must be positive."
  assert model_flags.problem({**base, "mode": "toy_stats"}, digits) is None
  assert model_flags.problem({**base, "model": "sagan", "mode": "toy_stats"}, digits) == (
      "--mode=toy_stats belongs to --model=toy_dcgan, not sagan.")
  assert "toy_stats" in model_flags.extra_modes()


def test_models_that_disagree_on_a_flag_type_are_refused(toy_registered):
  from absl import flags  # pylint: disable=import-outside-toplevel
  from estimators import model_flags  # pylint: disable=import-outside-toplevel

  @dataclasses.dataclass(frozen=True)
  class Clash:
    toy_width: str = hparam("wide", "A string where the toy model has an int.")

  class ClashModel(ModelSpec):
    name, hparams_class = "clash", Clash
  model_registry.register(ClashModel())
  try:
    with pytest.raises(TypeError, match="disagree on the type of hyperparameter 'toy_width'"):
      model_flags.define_flags(flags.FlagValues())
  finally:
    model_registry.unregister("clash")


if __name__ == "__main__":
  import estimators.models  # noqa: F401  pylint: disable=unused-import
  _register()
  from absl import app  # pylint: disable=import-outside-toplevel
  import run  # pylint: disable=import-outside-toplevel
  app.run(run.main)
