"""DAMSM pretraining, loading (eager and TF1 graph), errors, and the R-precision record.

A throwaway model registered here (as model_registry_test's toy DCGAN) carries DamsmHParams and
the pretrain_damsm mode, so this runs before AttnGAN exists. The DAMSM is tiny (8-d words, 16-d
features, a 4-channel CNN) and trains on the embedded captioned digits.

Run as a script, this file registers that model and runs run.py's main with the command line.
"""
import dataclasses
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:  # run as a script
  sys.path.insert(0, ROOT)

from data import digits_captions  # noqa: E402  pylint: disable=wrong-import-position
from estimators import model_registry  # noqa: E402  pylint: disable=wrong-import-position
from estimators.models import damsm, damsm_pretrain  # noqa: E402  pylint: disable=wrong-import-position
from eval import r_precision  # noqa: E402  pylint: disable=wrong-import-position
from tfgan_attention import damsm as damsm_lib  # noqa: E402  pylint: disable=wrong-import-position

NAME = "damsm_test_only"
TINY = dict(damsm_image_encoder="small_cnn", damsm_image_size=32, damsm_word_dim=8,
            damsm_embedding_dim=16, damsm_cnn_width=4, damsm_batch_size=48, damsm_epochs=1,
            damsm_eval_examples=96, damsm_lr=0.01)


class DamsmOnly(model_registry.ModelSpec):
  name = NAME
  description = "DAMSM pretraining only (tests)"
  hparams_class = damsm.DamsmHParams
  conditional = False
  modes = {"pretrain_damsm": damsm_pretrain.pretrain}
  multi_worker_modes = ("pretrain_damsm",)

  def validate(self, hparams, image_size, dataset):
    return damsm.validate_damsm(hparams)


def _register():
  import estimators.models  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  if NAME not in model_registry.MODELS:
    model_registry.register(DamsmOnly())


def _cfg(model_dir, **changes):
  from estimators.config import GANConfig  # pylint: disable=import-outside-toplevel
  _register()
  return GANConfig(model=NAME, hparams=damsm.DamsmHParams(**{**TINY, **changes}),
                   dataset="digits_captions", model_dir=str(model_dir), seed=3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A tiny DAMSM after one epoch (module-wide: the tests below only read it)."""
  model_dir = tmp_path_factory.mktemp("damsm_run")
  path = damsm_pretrain.pretrain(_cfg(model_dir))
  yield path
  model_registry.unregister(NAME)


def _weights(prefix):
  """{'text_NNN' | 'image_NNN': value} of a DAMSM checkpoint (the encoders, not Adam)."""
  suffix = "/.ATTRIBUTES/VARIABLE_VALUE"
  return {k[:-len(suffix)]: tf.train.load_variable(prefix, k)
          for k, _ in tf.train.list_variables(prefix)
          if k.startswith(("text_", "image_")) and k.endswith(suffix) and k.count("/") == 2}


def test_official_variant_is_a_preset_of_named_options():
  official = damsm.DamsmHParams(damsm_variant="official")
  resolved = official.resolved()
  assert (resolved.damsm_gamma1, resolved.damsm_inverse_gamma2, resolved.damsm_class_masks,
          resolved.damsm_inception_bn) == (4.0, False, True, "batch_statistics")
  assert official.loss_variant() == dataclasses.replace(
      damsm_lib.OFFICIAL, gamma2=5.0, gamma3=10.0)
  assert damsm.DamsmHParams().loss_variant() == damsm_lib.PAPER
  assert damsm.validate_damsm(official) is None
  assert damsm.validate_damsm(dataclasses.replace(official, damsm_gamma1=4.0)) is None
  message = damsm.validate_damsm(dataclasses.replace(official, damsm_gamma1=3.0))
  assert "fixes damsm_gamma1" in message
  mixed = damsm.DamsmHParams(damsm_class_masks=True, damsm_gamma1=4.0)  # paper + one quirk
  assert mixed.resolved() is mixed and mixed.loss_variant().inverse_gamma2
  assert "small_cnn" in damsm.validate_damsm(
      damsm.DamsmHParams(damsm_image_encoder="small_cnn", damsm_image_size=30))
  assert "inception_v3" in damsm.validate_damsm(
      damsm.DamsmHParams(damsm_image_encoder="small_cnn", damsm_inception_weights="/w.h5"))
  fields = [f.name for f in dataclasses.fields(damsm.DamsmHParams)]
  assert all(name.startswith("damsm_") for name in fields)


def test_top1_retrieval_against_numpy():
  scores = np.random.RandomState(0).randn(6, 6)
  scores[[0, 2, 3], [0, 2, 3]] += 10.0  # rows 0, 2, 3 and columns 0, 2, 3 retrieve correctly
  got = {k: float(v) for k, v in damsm_pretrain.top1_retrieval(tf.constant(scores), "x").items()}
  i2t = np.mean(np.argmax(scores, 1) == np.arange(6))
  t2i = np.mean(np.argmax(scores, 0) == np.arange(6))
  assert got == {"i2t_top1_x": pytest.approx(i2t), "t2i_top1_x": pytest.approx(t2i)}
  assert i2t >= 0.5 and t2i >= 0.5


def test_lr_schedule_is_the_official_one():
  h = damsm.DamsmHParams()
  lrs = [damsm_pretrain._lr_at(h, e) for e in range(200)]  # pylint: disable=protected-access
  assert lrs[0] == 0.002 and lrs[1] == pytest.approx(0.002 * 0.98)
  first_floor = next(e for e, lr in enumerate(lrs) if lr <= 0.0002)
  assert lrs[first_floor - 1] > 0.0002 and all(lr == lrs[first_floor] for lr in lrs[first_floor:])


def test_pretrain_writes_config_vocab_metrics_and_checkpoint(trained):
  files = set(os.listdir(trained))
  assert {"damsm_config.json", "vocab.txt", "metrics.jsonl", "checkpoint", "ckpt-1.index",
          "train", "eval"} <= files
  config = json.load(open(os.path.join(trained, "damsm_config.json")))
  vocab = digits_captions.vocabulary()
  assert config["vocab_size"] == len(vocab) and config["image_encoder"] == "small_cnn"
  assert config["vocab_sha256"] == damsm.vocabulary_sha256(vocab)
  assert "not Inception" in config["image_weights_source"]
  assert config["loss"]["name"] == "paper" and config["class_masks"] is False
  records = [json.loads(line) for line in open(os.path.join(trained, "metrics.jsonl"))]
  assert len(records) == 1 and records[0]["epoch"] == 1
  assert records[0]["step"] == len(digits_captions.split_indices("train")) // 48  # full batches of the train split
  held_out = records[0]["held_out"]
  assert set(held_out) == {"loss", "w0", "w1", "s0", "s1", "i2t_top1_sentence",
                           "t2i_top1_sentence", "i2t_top1_word", "t2i_top1_word"}
  assert held_out["loss"] == pytest.approx(sum(held_out[k] for k in ("w0", "w1", "s0", "s1")))
  assert records[0]["retrieval_chance"] == pytest.approx(1 / 48)
  run_config = json.load(open(os.path.join(os.path.dirname(trained), "run_config.json")))
  assert run_config["config"]["damsm_image_weights"] == config["image_weights_source"]


@pytest.mark.slow
def test_resumed_pretraining_equals_an_uninterrupted_one(trained, tmp_path):
  resumed = tmp_path / "resumed"
  shutil.copytree(os.path.dirname(trained), resumed)
  damsm_pretrain.pretrain(_cfg(resumed, damsm_epochs=2))
  straight = damsm_pretrain.pretrain(_cfg(tmp_path / "straight", damsm_epochs=2))
  records = [json.loads(line) for line in open(resumed / "damsm" / "metrics.jsonl")]
  assert [r["epoch"] for r in records] == [1, 2]
  assert records[1]["step"] == 2 * records[0]["step"]
  a, b = _weights(str(resumed / "damsm" / "ckpt-2")), _weights(os.path.join(straight, "ckpt-2"))
  first = _weights(os.path.join(trained, "ckpt-1"))
  assert a.keys() == b.keys() and len(a) > 10
  for key in a:
    np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=key)
  assert any(not np.allclose(a[k], first[k]) for k in a)  # epoch 2 trained
  # A finished run resumes to nothing new.
  damsm_pretrain.pretrain(_cfg(resumed, damsm_epochs=2))
  assert len(open(resumed / "damsm" / "metrics.jsonl").readlines()) == 2


def _inputs():
  ids = np.array([[3, 4, 5, 6, 0, 0], [7, 8, 0, 0, 0, 0], [9, 10, 11, 12, 13, 14]], np.int32)
  lengths = np.array([4, 2, 6], np.int32)
  images = np.random.RandomState(1).uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
  return ids, lengths, images


def test_load_eager_and_in_a_graph_give_the_checkpoint_outputs(trained):
  ids, lengths, images = _inputs()
  model = damsm.load_damsm(trained, vocab=digits_captions.vocabulary())
  assert model.checkpoint_path.endswith("ckpt-1")
  assert model.variant == damsm_lib.PAPER and model.class_masks is False
  assert model.checkpoint_sha256 == damsm.checkpoint_sha256(os.path.join(trained, "ckpt-1"))
  assert not model.text_encoder.trainable_variables
  assert not model.image_encoder.trainable_variables
  saved = _weights(model.checkpoint_path)
  for key, var in damsm.flat_variables(model.text_encoder, model.image_encoder).items():
    np.testing.assert_array_equal(var.numpy(), saved[key])
  words, sentence = model.encode_text(ids, lengths)
  regions, image_global = model.encode_images(images)
  assert words.shape == (3, 16, 6) and sentence.shape == (3, 16)
  assert regions.shape == (3, 8, 8, 16) and image_global.shape == (3, 16)
  assert np.all(words.numpy()[1, :, 2:] == 0.0)
  with tf.Graph().as_default():
    graph_model = damsm.load_damsm(trained)
    tensors = graph_model.encode_text(tf.constant(ids), tf.constant(lengths)) + \
        graph_model.encode_images(tf.constant(images))
    assert not tf.compat.v1.trainable_variables()  # nothing for a GAN's optimiser to update
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      graph_out = sess.run(tensors)
  for got, want in zip(graph_out, [words, sentence, regions, image_global]):
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)


def test_missing_and_mismatched_damsm_fail_clearly(trained, tmp_path):
  with pytest.raises(damsm.DamsmNotFoundError, match="run --mode=pretrain_damsm first"):
    damsm.load_damsm(str(tmp_path / "nothing"))
  no_ckpt = tmp_path / "no_ckpt"
  no_ckpt.mkdir()
  for name in ("damsm_config.json", "vocab.txt"):
    shutil.copy(os.path.join(trained, name), no_ckpt / name)
  with pytest.raises(damsm.DamsmNotFoundError, match="no DAMSM checkpoint"):
    damsm.load_damsm(str(no_ckpt))
  other = digits_captions.text.Vocabulary(["<end>", "a", "bird"])
  with pytest.raises(damsm.DamsmMismatchError, match="another vocabulary"):
    damsm.load_damsm(trained, vocab=other)
  wider = tmp_path / "wider"
  shutil.copytree(trained, wider)
  config = json.load(open(wider / "damsm_config.json"))
  config["cnn_width"] = 8
  json.dump(config, open(wider / "damsm_config.json", "w"))
  with pytest.raises(damsm.DamsmMismatchError, match="does not hold variable"):
    damsm.load_damsm(str(wider))
  with pytest.raises(ValueError, match="other settings .*damsm_cnn_width|other settings"):
    damsm_pretrain.pretrain(_cfg(os.path.dirname(trained), damsm_cnn_width=8, damsm_epochs=2))


def test_random_inception_is_announced_in_the_log_and_run_config(tmp_path, monkeypatch):
  class Stop(Exception):
    pass

  def stop(*args):
    raise Stop()
  monkeypatch.setattr(damsm_pretrain, "Trainer", stop)
  cfg = _cfg(tmp_path, damsm_image_encoder="inception_v3", damsm_image_size=299)
  with pytest.raises(Stop):
    damsm_pretrain.pretrain(cfg)
  run_config = json.load(open(tmp_path / "run_config.json"))
  assert run_config["config"]["damsm_image_weights"] == (
      "inception_v3: random weights (no --damsm_inception_weights)")
  assert "RANDOM weights" in damsm.RANDOM_WEIGHTS_NOTE


def test_r_precision_record_equals_the_accumulator_on_the_damsm_features(trained):
  model = damsm.load_damsm(trained)
  _, labels, ids, lengths = digits_captions.split_arrays("test")
  images = digits_captions.digits.digits_arrays("test", 32)[0]
  n = 240
  pool_ids, pool_lengths = ids.reshape(-1, ids.shape[-1]), lengths.reshape(-1)
  pool_image_ids = np.repeat(np.arange(len(ids)), ids.shape[1])
  pool_keys = {"image_ids": pool_image_ids, "class_ids": np.repeat(labels, ids.shape[1])}
  batches = [{"images": images[a:a + 80], "captions": ids[a:a + 80, 0],
              "caption_length": lengths[a:a + 80, 0], "image_ids": np.arange(a, a + 80),
              "class_ids": labels[a:a + 80]} for a in range(0, n, 80)]
  record = damsm.r_precision_record(model, iter(batches), pool_ids, pool_lengths, pool_keys,
                                    caption_split="test", seed=5)
  _, pool = model.encode_text(pool_ids, pool_lengths)
  _, sentence = model.encode_text(ids[:n, 0], lengths[:n, 0])
  _, image_global = model.encode_images(images[:n])
  for protocol, keys, pool_key in (("paper", np.arange(n), pool_image_ids),
                                   ("dmgan", labels[:n], pool_keys["class_ids"])):
    want = r_precision.r_precision(image_global.numpy(), sentence.numpy(), keys, pool.numpy(),
                                   pool_key, protocol=protocol, seed=5)
    assert record["metrics"][f"r_precision_{protocol}"] == pytest.approx(want.mean, abs=1e-6)
    assert record["metrics"][f"r_precision_{protocol}_std"] == pytest.approx(want.std, abs=1e-6)
    described = record["protocol"][f"r_precision_{protocol}"]
    assert described["name"] == protocol and described["caption_split"] == "test"
    assert described["damsm_sha256"] == model.checkpoint_sha256
    assert described["num_queries"] == n
  assert record["protocol"]["r_precision_dmgan"]["keys"] == "class_ids"
  json.dumps(record, allow_nan=False)  # ready for metrics.jsonl


def _write_tiny_cub(data_dir):
  """12 train and 4 test images of 3 bird classes in the CUB layout, 10 captions each."""
  from data import format_writers  # pylint: disable=import-outside-toplevel
  colours = ("red", "blue", "green")
  images = []
  for n in range(16):
    cls = n % 3
    name = f"00{cls + 1}.Bird_{cls}/Bird_{cls}_{n:04d}_{n}"
    captions = "\n".join(f"a {colours[cls]} bird number {k} with a {'long' if n % 2 else 'short'}"
                         f" tail" for k in range(10)) + "\n"
    images.append(dict(name=name, image=format_writers.smooth_image(40, 40, seed=n),
                       box=(2, 2, 30, 30), cls=cls + 1, split="train" if n < 12 else "test",
                       captions=captions.encode()))
  format_writers.write_cub(str(data_dir), images)


@pytest.mark.slow
def test_pretrain_on_captions_in_the_cub_format_with_class_masks(tmp_path):
  from data import cub  # pylint: disable=import-outside-toplevel
  _write_tiny_cub(tmp_path / "birds")
  cfg = dataclasses.replace(
      _cfg(tmp_path / "run", damsm_batch_size=4, damsm_image_size=16, damsm_variant="official",
           damsm_words_num=18, damsm_eval_examples=0),
      dataset="cub", data_dir=str(tmp_path / "birds"))
  path = damsm_pretrain.pretrain(cfg)
  config = json.load(open(os.path.join(path, "damsm_config.json")))
  assert config["class_masks"] is True and config["loss"]["gamma1"] == 4.0
  record = json.loads(open(os.path.join(path, "metrics.jsonl")).read())
  assert record["step"] == 3 and record["retrieval_chance"] == 0.25
  assert all(np.isfinite(v) for v in record["held_out"].values())
  vocab = cub.vocabulary(str(tmp_path / "birds"))
  model = damsm.load_damsm(path, vocab=vocab)
  assert model.class_masks and model.variant.gamma1 == 4.0 and not model.variant.inverse_gamma2
  words, _ = model.encode_text(np.array([vocab.encode_text("a red bird")]), np.array([3]))
  assert words.shape == (1, 16, 3)


@pytest.mark.slow
def test_run_py_pretrain_damsm_mode_and_flags(tmp_path):
  model_dir = tmp_path / "cli"
  flags = [f"--{k}={v}" for k, v in TINY.items()]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
  proc = subprocess.run(
      [sys.executable, os.path.abspath(__file__), f"--model={NAME}", "--mode=pretrain_damsm",
       "--dataset=digits_captions", f"--model_dir={model_dir}", *flags,
       "--damsm_variant=official"], cwd=ROOT, env=env, capture_output=True, text=True,
      timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "DAMSM epoch 1/1" in proc.stdout
  config = json.load(open(model_dir / "damsm" / "damsm_config.json"))
  assert config["loss"] == dataclasses.asdict(dataclasses.replace(
      damsm_lib.OFFICIAL, gamma2=5.0, gamma3=10.0))
  assert config["class_masks"] is True  # digits have classes
  bad = subprocess.run(
      [sys.executable, os.path.abspath(__file__), f"--model={NAME}", "--mode=pretrain_damsm",
       "--dataset=digits_captions", "--damsm_variant=official", "--damsm_gamma1=3"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
  assert bad.returncode != 0 and "fixes damsm_gamma1" in bad.stderr


if __name__ == "__main__":
  _register()
  import run  # noqa: E402  pylint: disable=import-outside-toplevel,wrong-import-position
  from absl import app  # pylint: disable=import-outside-toplevel
  app.run(run.main)
