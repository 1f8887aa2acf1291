"""AttnGAN through the registry and the engines, on the embedded captioned digits.

The DAMSM the tests train against is written in damsm.py's own format (damsm_config.json,
vocab.txt, the flat-key checkpoint) with random weights (`write_random_damsm`); the slow test
pretrains one with --mode=pretrain_damsm instead.
"""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import data
from data import text as text_lib
from estimators import experiment, export
from estimators.engines.input_fn import prepare_run_data
from estimators.models import attngan, attngan_sampling, damsm, damsm_pretrain, get_model
from estimators.engines.optimizers import EMA_SUFFIX
from estimators.testing import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TINY = dict(model="attngan", dataset="digits_captions", image_size=16, num_classes=10,
            gf_dim=4, df_dim=4, z_dim=8, condition_dim=4, branch_num=2, r_num=1, batch_size=4,
            damsm_image_encoder="small_cnn", damsm_image_size=16, damsm_embedding_dim=8,
            damsm_word_dim=6, damsm_cnn_width=4)


def write_random_damsm(cfg):
  """A DAMSM directory in damsm.py's format with random weights: {flat key: numpy value}."""
  vocab = data.get_spec(cfg.dataset).vocabulary(cfg.data_dir)
  config = damsm.config_dict(cfg, vocab, False)
  text_encoder, image_encoder = damsm.build_encoders(config)
  flat = damsm.flat_variables(text_encoder, image_encoder)
  config["variables"] = damsm.variable_table(flat)
  path = attngan.damsm_dir(cfg)
  os.makedirs(path, exist_ok=True)
  vocab.save(os.path.join(path, damsm.VOCAB_FILE))
  with open(os.path.join(path, damsm.CONFIG_FILE), "w", encoding="utf-8") as f:
    json.dump(config, f)
  tf.train.CheckpointManager(tf.train.Checkpoint(**flat), path, 1,
                             checkpoint_name=damsm.CHECKPOINT_PREFIX).save(checkpoint_number=1)
  return {v.name.split(":")[0]: v.numpy() for v in flat.values()}


def _tags(model_dir):
  tags = set()
  for path in glob.glob(os.path.join(model_dir, "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      tags.update(v.tag for v in event.summary.value)
  return tags


def test_validation_names_what_is_wrong():
  spec = get_model("attngan")
  hp = attngan.AttnGANHParams()
  assert "has none" in spec.validate(hp, 256, data.get_spec("digits"))
  assert spec.validate(hp, 256, data.get_spec("digits_captions")) is None
  assert "power-of-two" in spec.validate(hp, 16, data.get_spec("digits_captions"))
  masked = attngan.AttnGANHParams(damsm_term_class_mask=True)
  assert "class labels" in spec.validate(masked, 256, data.get_spec("coco"))
  assert spec.run_defaults["ema_decay"] == 0.999 and "pretrain_damsm" in spec.modes


def test_a_missing_or_mismatched_damsm_is_a_clear_error(tmp_path):
  cfg = tiny_config(tmp_path / "run", **TINY)
  with pytest.raises(FileNotFoundError, match="pretrain_damsm"):
    attngan.load_frozen_damsm(cfg)
  write_random_damsm(cfg)
  os.makedirs(cfg.model_dir, exist_ok=True)
  words = data.get_spec(cfg.dataset).vocabulary(None).words
  text_lib.Vocabulary(words[:-1]).save(os.path.join(cfg.model_dir, "vocab.txt"))
  with pytest.raises(ValueError, match="another vocabulary"):
    attngan.load_frozen_damsm(cfg)


@pytest.mark.parametrize("caption", [
    "A THICK seven, leaning right!", "naïve café crème 42", "  ", "under_score\ufffd\ufffdsplit",
    "zero\tone\ntwo--three", "unknownword one"])
def test_caption_tokenizer_matches_data_text(caption):
  vocab = text_lib.Vocabulary(["<end>", "a", "thick", "seven", "leaning", "right", "nave",
                               "caf", "42", "under_score", "split", "zero", "one", "two",
                               "three"])
  tokenizer = attngan.CaptionTokenizer(vocab.words, max_words=4)
  ids = tokenizer(tf.constant([caption, "one"])).numpy()
  expected = vocab.encode_text(caption)[:4]
  assert ids.shape == (2, 4)
  assert list(ids[0]) == expected + [0] * (4 - len(expected))
  assert list(ids[1]) == [12, 0, 0, 0]


def _scalars(model_dir, tags):
  """{tag: [values in step order]} of the scalar summaries `tags` in model_dir's event files."""
  found = {tag: [] for tag in tags}
  for path in sorted(glob.glob(os.path.join(model_dir, "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag in found:
          found[value.tag].append(tf.make_ndarray(value.tensor) if value.HasField("tensor")
                                  else value.simple_value)
  return found


@pytest.mark.parametrize("engine", ["in_graph",
                                    pytest.param("gan_estimator", marks=pytest.mark.slow)])
def test_trains_through_ganestimator_against_the_frozen_damsm(tmp_path, engine):
  """Both single-device engines: the default in-graph step and TF-GAN's GANEstimator (hook
  steps), one step each (the checkpoints before and after it)."""
  decay = 0.5  # low: the step moves the shadow half the way, far above round-off
  # GANEstimator runs its own step (G first, a draw per sub-step), not AttnGAN's shared fakes
  step = dict(step_order="generator_first", step_fakes="fresh") if engine == "gan_estimator" else {}
  cfg = tiny_config(tmp_path / "run", **TINY, engine=engine, max_steps=1,
                    save_checkpoints_steps=1, save_summary_steps=1, ema_decay=decay, **step)
  saved = write_random_damsm(cfg)
  ckpt = experiment.run_train(cfg)
  assert export.checkpoint_step(ckpt) == 1
  start = tf.train.load_checkpoint(os.path.join(cfg.model_dir, "model.ckpt-0"))
  after = tf.train.load_checkpoint(ckpt)
  keys = after.get_variable_to_shape_map()
  text_keys = [k for k in keys if k.startswith("Generator/generator/text_encoder/")]
  image_keys = [k for k in keys if k.startswith("damsm_image_encoder/")]
  assert len(text_keys) == 7 and len(image_keys) == 9
  for reader in (start, after):  # the DAMSM is frozen: bit-identical before and after
    for key in text_keys:  # G's text encoder is the DAMSM's, unchanged by training
      name = "damsm_text_encoder/" + key[len("Generator/generator/text_encoder/"):]
      np.testing.assert_array_equal(reader.get_tensor(key), saved[name], err_msg=key)
      assert key + "/" + EMA_SUFFIX not in keys  # not trained, so not averaged
    for key in image_keys:
      np.testing.assert_array_equal(reader.get_tensor(key), saved[key], err_msg=key)
  kernels = [k for k in keys if k.startswith("Generator/") and k.endswith("/kernel")
             and "text_encoder" not in k]
  assert kernels and all(k + "/" + EMA_SUFFIX in keys for k in kernels)
  assert max(np.abs(after.get_tensor(k) - start.get_tensor(k)).max() for k in kernels) > 1e-5
  d_kernel = "Discriminator/discriminator/d_16/cond_logits/kernel"
  assert np.abs(after.get_tensor(d_kernel) - start.get_tensor(d_kernel)).max() > 1e-5

  # The EMA: shadow_0 = w_0 and shadow_1 = d shadow_0 + (1 - d) w_1, for every shadowed
  # (trained) G variable.
  shadowed = sorted(k[: -len(EMA_SUFFIX) - 1] for k in keys if k.endswith("/" + EMA_SUFFIX))
  trained = sorted(k for k in keys if k.startswith("Generator/") and "adam" not in k
                   and EMA_SUFFIX not in k and "text_encoder" not in k
                   and not k.endswith(("moving_mean", "moving_variance", "sn_u")))
  assert shadowed == trained and len(shadowed) == 20  # every trained G variable, nothing else
  moved = 0.0
  for name in shadowed:
    initial, live = start.get_tensor(name), after.get_tensor(name)
    np.testing.assert_array_equal(start.get_tensor(f"{name}/{EMA_SUFFIX}"), initial)
    np.testing.assert_allclose(after.get_tensor(f"{name}/{EMA_SUFFIX}"),
                               decay * initial + (1 - decay) * live, rtol=1e-5, atol=1e-7,
                               err_msg=name)
    moved = max(moved, np.abs(live - initial).max())
  assert moved > 1e-5  # the weights moved, so the recurrence was put to the test

  losses = _scalars(cfg.model_dir, ["loss/generator", "loss/discriminator"])
  for tag, values in losses.items():
    assert len(values) >= 1 and np.isfinite(values).all(), (tag, values)
  assert {"loss/generator", "loss/discriminator", "generator/damsm_w0", "generator/kl",
          "discriminator/stage_1", "fixed_caption_grid_stage_1/image",
          "attention/words_stage_1/image",
          "attention/top_words_stage_1"} <= _tags(cfg.model_dir)


@pytest.mark.slow
def test_pretrain_train_export_reload_generate_from_strings(tmp_path):
  cfg = tiny_config(tmp_path / "run", **dict(TINY, image_size=32, damsm_image_size=32),
                    max_steps=2, save_checkpoints_steps=2, save_summary_steps=2, ema_decay=0.9,
                    damsm_epochs=1, damsm_batch_size=200, damsm_eval_examples=200,
                    eval_batch_size=50, num_eval_samples=200)
  damsm_pretrain.pretrain(cfg)
  prepare_run_data(cfg)
  ckpt = experiment.run_train(cfg)
  record = experiment.run_eval(cfg)  # digits_fid and R-precision with the trained DAMSM
  assert record["protocol"]["ema_weights"] is True
  assert np.isfinite(record["metrics"]["digits_fid"])
  for protocol in ("paper", "dmgan"):
    assert 0.0 <= record["metrics"][f"r_precision_{protocol}"] <= 1.0
    assert record["protocol"][f"r_precision_{protocol}"]["damsm_sha256"].startswith("sha256:")
  path = experiment.run_export(cfg)
  loaded = tf.saved_model.load(path)
  vocab = text_lib.Vocabulary.load(os.path.join(cfg.model_dir, "vocab.txt"))
  captions = ["a thick seven that leans to the right", "zero, unknownword wide"]
  ids = np.zeros([2, 16], np.int32)
  for i, caption in enumerate(captions):
    encoded = vocab.encode_text(caption)
    ids[i, :len(encoded)] = encoded
  noise = tf.random.stateless_normal([2, 8], seed=[1, 2])
  ca_noise = tf.random.stateless_normal([2, 4], seed=[3, 4])
  served = loaded.signatures["serving_default"](noise=noise, captions=tf.constant(ids),
                                                ca_noise=ca_noise)
  assert served["stage_0"].shape == (2, 16, 16, 3) and served["images"].shape == (2, 32, 32, 3)
  from_strings = loaded.signatures["caption_strings"](captions=tf.constant(captions),
                                                      noise=noise, ca_noise=ca_noise)
  np.testing.assert_array_equal(from_strings["captions"].numpy(), ids)
  np.testing.assert_allclose(from_strings["images"], served["images"], atol=1e-6)
  spec = get_model("attngan")
  inputs = {"noise": noise, "captions": tf.constant(ids), "ca_noise": ca_noise}
  ema = spec.generate(cfg, export.restore_generator(cfg, ckpt, use_ema=True), inputs, False)
  raw = spec.generate(cfg, export.restore_generator(cfg, ckpt, use_ema=False), inputs, False)
  np.testing.assert_allclose(ema["images"], served["images"], atol=1e-5)  # the EMA is served
  assert np.abs(raw["images"] - served["images"]).max() > 1e-4

  captions_file = tmp_path / "captions.txt"
  captions_file.write_text("\n".join(captions) + "\n")
  options = dict(checkpoint=None, saved_model=None, num_samples=2, seed=0, truncation=None,
                 sample_dir=str(tmp_path / "from_ckpt"), captions_file=str(captions_file))
  out = attngan_sampling.run_sample(cfg, options)
  index = json.loads(open(os.path.join(out, "captions.json"), encoding="utf-8").read())
  assert [e["ids"] for e in index] == [list(ids[0][ids[0] > 0]), list(ids[1][ids[1] > 0])]
  assert len(index[0]["top_words"]["stage_1"]) == 5
  assert {w for w, _ in index[1]["top_words"]["stage_1"]} <= set(vocab.decode(ids[1]).split())
  from PIL import Image  # pylint: disable=import-outside-toplevel
  assert np.asarray(Image.open(os.path.join(out, "0000_attention.png"))).shape == (142, 768, 3)
  out = attngan_sampling.run_sample(cfg, dict(options, saved_model=path,
                                              sample_dir=str(tmp_path / "from_saved")))
  np.testing.assert_allclose(np.asarray(Image.open(os.path.join(out, "0001.png")), float),
                             np.asarray(Image.open(str(tmp_path / "from_ckpt" / "0001.png")),
                                        float), atol=1)


@pytest.mark.slow
def test_trains_through_the_one_device_engine(tmp_path):
  cfg = tiny_config(tmp_path / "run", **TINY, max_steps=2, save_checkpoints_steps=2,
                    save_summary_steps=1, ema_decay=0.9, distribution="one_device")
  saved = write_random_damsm(cfg)
  ckpt = experiment.run_train(cfg)
  after = tf.train.load_checkpoint(ckpt)
  start = tf.train.load_checkpoint(os.path.join(cfg.model_dir, "model.ckpt-0"))
  key = "Generator/generator/img_1/kernel"
  assert np.abs(after.get_tensor(key) - start.get_tensor(key)).max() > 0
  for name, value in saved.items():
    if name.startswith("damsm_image_encoder/"):
      np.testing.assert_array_equal(after.get_tensor(name), value)
  assert {"loss/generator", "generator/damsm_s1"} <= _tags(cfg.model_dir)


def test_the_registry_hooks_attngan_uses_default_to_nothing(monkeypatch, tmp_path):
  from estimators import evaluation  # pylint: disable=import-outside-toplevel
  from estimators.model_registry import ModelSpec  # pylint: disable=import-outside-toplevel
  base = ModelSpec()
  images = tf.zeros([1, 2, 2, 3])
  assert base.prepare(None) is None and base.extra_metrics(None) is None
  assert list(base.serving_outputs(None, {"images": images, "other": images})) == ["images"]
  calls = []
  monkeypatch.setattr(damsm_pretrain, "pretrain",
                      lambda cfg, options=None: calls.append((cfg.model_dir, cfg.distribution)))
  spec = get_model("attngan")
  spec.prepare(tiny_config(tmp_path / "a", **TINY))
  spec.prepare(tiny_config(tmp_path / "b", **TINY, pretrain_damsm_first=True))
  # Before a mirrored AttnGAN run the DAMSM is still pretrained, on one device.
  spec.prepare(tiny_config(tmp_path / "c", **TINY, pretrain_damsm_first=True,
                           distribution="mirrored"))
  assert calls == [(str(tmp_path / "b"), "none"), (str(tmp_path / "c"), "none")]

  class Recorder:  # what run_eval's extra metrics see: each batch with its own input rows
    def __init__(self):
      self.seen = []

    def update(self, inputs, batch):
      self.seen.append((inputs["captions"].tolist(), batch.tolist()))
  recorder = Recorder()
  inputs = {"captions": np.arange(5)}
  batches = [np.array([10, 11]), np.array([12, 13]), np.array([14])]
  assert [b.tolist() for b in evaluation._feeding(recorder, inputs, iter(batches), 2)] == [  # pylint: disable=protected-access
      [10, 11], [12, 13], [14]]
  assert recorder.seen == [([0, 1], [10, 11]), ([2, 3], [12, 13]), ([4], [14])]


def _is_subsequence(short, long):
  it = iter(long)
  return all(any(w == v for v in it) for w in short)


def test_evaluation_captions_keep_the_official_evaluation_length(tmp_path):
  """Official eval_bird.yml / eval_coco.yml: WORDS_NUM 25 / 20 at evaluation, while training
  keeps 18 / 12; --eval_max_words sets it (longer captions sub-sampled, order kept)."""
  assert (data.get_spec("cub").default_max_words, data.get_spec("cub").eval_max_words) == (18, 25)
  assert (data.get_spec("coco").default_max_words, data.get_spec("coco").eval_max_words) == (
      12, 20)
  full_cfg = tiny_config(tmp_path / "a", **TINY)
  assert attngan.eval_max_words(full_cfg) == 16  # digits_captions: its training length
  full = attngan.test_captions(full_cfg)
  short = attngan.test_captions(tiny_config(tmp_path / "b", **TINY, eval_max_words=8))
  assert full["all_captions"].shape[-1] == 16 and short["all_captions"].shape[-1] == 8
  lengths, short_lengths = full["all_caption_lengths"], short["all_caption_lengths"]
  assert lengths.max() > 8 and short_lengths.max() == 8
  np.testing.assert_array_equal(short_lengths, np.minimum(lengths, 8))
  for ids, kept in zip(full["all_captions"].reshape(-1, 16), short["all_captions"].reshape(-1, 8)):
    assert _is_subsequence(kept[kept > 0], ids[ids > 0])
  tokenizer_words = get_model("attngan").max_words(tiny_config(tmp_path / "c", **TINY,
                                                               eval_max_words=20))
  assert tokenizer_words == 20


@pytest.mark.slow
def test_mirrored_step_on_two_logical_cpus_equals_the_one_device_step(tmp_path):
  """estimators/replica_check: one AttnGAN step mirrored over 2 logical CPUs (2 + 2 rows) from
  the one-device run's step-0 checkpoint on the same 4 examples equals the one-device step:
  losses, every variable after it (weights, BN statistics, EMA, Adam slots). The mismatched
  pairs (B - 1 = 3 over both replicas, uneven) and L_DAMSM are the global batch's."""
  cfg = tiny_config(tmp_path / "damsm_owner", **TINY, damsm_dir=str(tmp_path / "damsm"))
  saved = write_random_damsm(cfg)
  settings = {k: v for k, v in TINY.items() if k not in ("model", "batch_size", "image_size")}
  out = tmp_path / "result.json"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("TF_CONFIG", None)
  proc = subprocess.run(
      [sys.executable, "-m", "estimators.replica_check", "--model=attngan", "--image_size=16",
       "--batch_size=4", "--cpu_devices=2", f"--root={tmp_path / 'runs'}", f"--json={out}",
       f"--set=damsm_dir={tmp_path / 'damsm'}"] + [f"--set={k}={v}" for k, v in settings.items()],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads(out.read_text())
  one, multi = result["losses"]["one_device"], result["losses"]["multi"]
  assert set(one) == set(multi) == {"loss", "loss/generator", "loss/discriminator"}
  for tag, value in one.items():
    assert multi[tag] == pytest.approx(value, rel=1e-5), tag
  assert not result["missing_in_multi"]
  relative = result["variables"]["relative"]
  assert len(relative) > 100
  assert result["variables"]["worst_relative"] < 1e-4, result["variables"]["worst"]
  bn = result["bn_moving_statistics"]
  assert any("cond_joint_bn" in name for name in bn)  # D's conditional BN (B and B - 1 rows)
  for name, stats in bn.items():
    if "damsm" not in name:
      assert stats["change"] > 1e-6 and stats["max_abs_diff"] < 1e-6, (name, stats)
  after = tf.train.load_checkpoint(str(tmp_path / "runs" / "compared" / "model.ckpt-1"))
  for name, value in saved.items():  # both replicas' frozen DAMSM: the checkpoint's values
    key = name if name.startswith("damsm_image_encoder/") else (
        "Generator/generator/text_encoder/" + name[len("damsm_text_encoder/"):])
    np.testing.assert_array_equal(after.get_tensor(key), value, err_msg=key)
