"""StackGAN's evaluation Inception: the slim graph against Keras' InceptionV3 (an independent
implementation), a TF1 checkpoint written here with the real slim names (EMA copies, optimizer
slots, auxiliary head) loaded by name, and the score against an independent numpy computation."""
import os
import re

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from eval import slim_inception_v3 as slim
from eval import stackgan_inception as sg

DIVISOR = 16  # every width / 16: real names, small checkpoint


def _random_variables(shapes, rng, offset=0.0):
  out = {}
  for name, shape in shapes.items():
    if name.endswith("moving_variance"):
      out[name] = rng.uniform(0.5, 1.5, shape)
    elif name.endswith("/weights"):
      out[name] = rng.normal(offset, np.sqrt(2.0 / np.prod(shape[:-1])), shape)
    else:
      out[name] = rng.normal(offset, 0.1, shape)
  return {k: v.astype(np.float32) for k, v in out.items()}


def _aux_shapes(d, classes):
  return {"aux_logits/proj/weights": (1, 1, 768 // d, 128 // d),
          "aux_logits/proj/BatchNorm/beta": (128 // d,),
          "aux_logits/Conv/weights": (5, 5, 128 // d, 768 // d),
          "aux_logits/FC/weights": (768 // d, classes), "aux_logits/FC/biases": (classes,)}


def _write_release(prefix, ema, raw, extra=None):
  """A checkpoint as tensorflow/models' inception_train.py saves one (Saver(global_variables)):
  each variable, its ExponentialMovingAverage copy, RMSProp slots, the aux head, global_step."""
  tensors = {}
  for name, value in raw.items():
    tensors[name] = value
    tensors[name + slim.EMA_SUFFIX] = ema[name]
    if not name.endswith(("moving_mean", "moving_variance")):
      tensors[name + "/RMSProp"] = np.ones_like(value)
      tensors[name + "/RMSProp_1"] = np.zeros_like(value)
  tensors.update(extra or {})
  keys = sorted(tensors)
  values = [tf.constant(tensors[k]) for k in keys] + [tf.constant(5000, tf.int64)]
  tf.raw_ops.SaveV2(prefix=prefix, tensor_names=keys + ["global_step"],
                    shape_and_slices=[""] * (len(keys) + 1), tensors=values)
  return prefix


def _colour_images(n, size, seed):
  """A colour per image plus a little noise, in [-1, 1]."""
  rng = np.random.RandomState(seed)
  return np.clip(rng.uniform(-0.9, 0.9, [n, 1, 1, 3]) + rng.normal(0, 0.1, [n, size, size, 3]),
                 -1, 1).astype(np.float32)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
  rng = np.random.RandomState(0)
  shapes = slim.variable_shapes(sg.CUB_CLASSES + 1, DIVISOR)
  ema, raw = _random_variables(shapes, rng), _random_variables(shapes, rng, offset=0.3)
  # Random BN statistics leave the pool features nearly alike across images: scale the logits
  # and cancel their common part with the biases, so that the predictions differ (an IS > 1).
  ema[slim.LOGITS_WEIGHTS] *= 10
  pool = slim.forward(ema, tf.constant(_colour_images(8, 299, seed=9)), DIVISOR)[1].numpy()
  ema[slim.LOGITS_BIASES] = -(pool.mean(0) @ ema[slim.LOGITS_WEIGHTS])
  aux = {k + sfx: rng.normal(0, 0.1, s).astype(np.float32)
         for k, s in _aux_shapes(DIVISOR, 51).items() for sfx in ("", slim.EMA_SUFFIX)}
  prefix = _write_release(str(tmp_path_factory.mktemp("stackgan") / "model.ckpt-5000"),
                          ema, raw, aux)
  return prefix, ema, raw


def test_full_width_graph_equals_keras_inception_v3():
  """The real widths: the slim graph (shapes, padding, pools, BN without gamma, eps 0.001)
  computes what Keras' InceptionV3 computes with the same weights, mapped in creation order."""
  shapes = slim.variable_shapes(51)
  convs = [n[:-len("/weights")] for n in shapes if n.endswith("/weights") and "logits" not in n]
  assert len(convs) == 94 and shapes[slim.LOGITS_WEIGHTS] == (2048, 51)
  assert sum(int(np.prod(s)) for s in shapes.values()) == 23_851_784 - 2049 * (1000 - 51)
  tf.keras.backend.clear_session()
  keras = tf.keras.applications.InceptionV3(weights=None, classes=51, classifier_activation=None)
  order = lambda layer: int((re.findall(r"_(\d+)$", layer.name) or [0])[0])  # creation order
  k_convs = sorted([l for l in keras.layers if isinstance(l, tf.keras.layers.Conv2D)], key=order)
  k_bns = sorted([l for l in keras.layers if isinstance(l, tf.keras.layers.BatchNormalization)],
                 key=order)
  variables = _random_variables(shapes, np.random.RandomState(1))
  for scope, conv, bn in zip(convs, k_convs, k_bns):
    conv.set_weights([variables[f"{scope}/weights"]])
    bn.set_weights([variables[f"{scope}/BatchNorm/{n}"]
                    for n in ("beta", "moving_mean", "moving_variance")])
  keras.layers[-1].set_weights([variables[slim.LOGITS_WEIGHTS], variables[slim.LOGITS_BIASES]])
  images = np.random.RandomState(2).uniform(-1, 1, [1, 299, 299, 3]).astype(np.float32)
  ours = slim.forward(variables, tf.constant(images))[0].numpy()
  theirs = keras(images, training=False).numpy()
  assert np.std(theirs) > 0.1
  np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-3 * np.abs(theirs).max())


def test_loads_every_moving_average_by_slim_name(release):
  prefix, ema, raw = release
  variables, report = slim.load_checkpoint(prefix, depth_divisor=DIVISOR)
  assert report.num_classes == 51 and set(variables) == set(ema)
  for name, value in variables.items():
    np.testing.assert_array_equal(value, ema[name])
    assert report.sources[name] == name + slim.EMA_SUFFIX
  stored = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
  assert set(report.sources.values()) | set(report.unused) == set(stored)
  reasons = {k: v.split(" ")[0] for k, v in report.unused.items()}
  for key, reason in reasons.items():  # every key left unread is one of these, nothing else
    expected = ("training" if key == "global_step" else "auxiliary" if key.startswith("aux_")
                else "optimizer" if "/RMSProp" in key else "the")
    assert reason == expected, (key, report.unused[key])
  assert sum(r == "the" for r in reasons.values()) == len(ema)  # the raw copies
  raw_vars, raw_report = slim.load_checkpoint(prefix, averaged=False, depth_divisor=DIVISOR)
  np.testing.assert_array_equal(raw_vars["conv0/weights"], raw["conv0/weights"])
  assert raw_report.sources["conv0/weights"] == "conv0/weights"


def test_missing_and_misshaped_keys_are_named(tmp_path, release):
  _, ema, raw = release
  broken = dict(ema)
  del broken["mixed_35x35x256a/branch5x5/Conv_1/BatchNorm/beta"]
  prefix = _write_release(str(tmp_path / "missing"), broken, {k: broken[k] for k in broken})
  with pytest.raises(slim.CheckpointMismatchError,
                     match="lacks 1 .*mixed_35x35x256a/branch5x5/Conv_1/BatchNorm/beta/Exp"):
    slim.load_checkpoint(prefix, depth_divisor=DIVISOR)
  bad = dict(ema, **{"conv2/weights": np.zeros([3, 3, 2, 5], np.float32)})
  prefix = _write_release(str(tmp_path / "shape"), bad, raw)
  with pytest.raises(slim.CheckpointMismatchError, match=r"conv2/weights/ExponentialMovingAverage"
                     r": checkpoint \(3, 3, 2, 5\), network \(3, 3, 2, 4\)"):
    slim.load_checkpoint(prefix, depth_divisor=DIVISOR)
  tfslim = str(tmp_path / "tfslim")
  tf.raw_ops.SaveV2(prefix=tfslim, tensor_names=["InceptionV3/Conv2d_1a_3x3/weights"],
                    shape_and_slices=[""], tensors=[tf.zeros([3, 3, 3, 32])])
  with pytest.raises(sg.StackGANInceptionUnavailableError,
                     match="no logits/logits/biases/Exp.*InceptionV3/Conv2d_1a_3x3"):
    sg.load(tfslim, depth_divisor=DIVISOR)


def test_unavailable_checkpoint_says_where_to_get_it(tmp_path, release):
  for value, pattern in ((None, "StackGAN-inception-model.*--stackgan_inception_checkpoint="),
                         (str(tmp_path / "nope"), "no .*nope.index there")):
    with pytest.raises(sg.StackGANInceptionUnavailableError, match=pattern):
      sg.load(value)
  with pytest.raises(sg.StackGANInceptionUnavailableError, match="51 logits.*50 \\+ 1"):
    sg.load(release[0], depth_divisor=DIVISOR, expect_classes=20)


def _numpy_score(probs, splits):  # Salimans et al., float64, from scratch
  scores = []
  for part in np.array_split(np.asarray(probs, np.float64), splits):
    marginal = part.mean(0)
    scores.append(np.exp(np.mean([np.sum(p * np.log(p / marginal)) for p in part])))
  return np.mean(scores), np.std(scores)


def test_score_is_the_scripts_from_the_same_logits(release):
  prefix, ema, _ = release
  classifier = sg.load(prefix, depth_divisor=DIVISOR)
  assert classifier.protocol["classes"] == 50 and classifier.num_classes == 51
  images = _colour_images(70, 64, seed=3)
  score = sg.StackGANInceptionScore(classifier, splits=2, seed=None)
  score.update(images[:33])
  score.update(images[33:])
  metrics, protocol = score.result()
  # independently: quantize, PIL-resize, the network with the EMA weights, softmax without class 0
  uint8 = np.clip((images + 1) * 127.5, 0, 255).astype(np.uint8)
  x = np.stack([np.asarray(Image.fromarray(u).resize((299, 299), Image.BILINEAR)) for u in uint8])
  logits = slim.forward(ema, tf.constant(x.astype(np.float32) / 127.5 - 1), DIVISOR)[0].numpy()
  np.testing.assert_allclose(classifier.logits(uint8), logits, rtol=1e-5, atol=1e-5)
  known = np.exp(logits[:, 1:] - logits[:, 1:].max(1, keepdims=True))
  probs = known / known.sum(1, keepdims=True)
  mean, std = _numpy_score(probs[:64], 2)  # 70 images: one whole batch of 64 is scored
  assert metrics["stackgan_cub_is_2split_mean"] == pytest.approx(mean, rel=1e-4)
  assert metrics["stackgan_cub_is_2split_std"] == pytest.approx(std, rel=1e-3, abs=1e-5)
  assert mean > 1.05  # the predictions are not uniform: the score can tell a wrong softmax
  assert protocol["stackgan_cub"]["num_scored"] == 64
  assert protocol["stackgan_cub"]["checkpoint_sha256"].startswith("sha256:")


def test_seeded_shuffle_then_whole_batches():
  probs = np.random.RandomState(4).dirichlet(np.ones(5) * 0.3, 200).astype(np.float32)
  mean, std, scores = sg.stackgan_inception_score(probs, splits=4, seed=7, batch_size=64)
  kept = probs[np.random.RandomState(7).permutation(200)[:192]]
  assert len(scores) == 4
  assert (mean, std) == pytest.approx(_numpy_score(kept, 4), rel=1e-4)
  with pytest.raises(ValueError, match="fewer than the 10 splits"):
    sg.stackgan_inception_score(probs[:63], splits=10)


def test_checkpoint_hash_covers_the_data(tmp_path, release):
  prefix = release[0]
  copy = str(tmp_path / "model.ckpt-5000")
  for suffix in (".index", ".data-00000-of-00001"):
    with open(prefix + suffix, "rb") as f, open(copy + suffix, "wb") as g:
      g.write(f.read())
  assert sg.checkpoint_sha256(copy) == sg.checkpoint_sha256(prefix)
  with open(copy + ".data-00000-of-00001", "r+b") as f:
    f.seek(os.path.getsize(copy + ".data-00000-of-00001") // 2)
    f.write(b"\x01\x02")
  assert sg.checkpoint_sha256(copy) != sg.checkpoint_sha256(prefix)


def test_evaluation_scores_with_it_by_name(release, monkeypatch, run_flags):
  """run.py's --is_classifier=stackgan_cub: the evaluation streams the generated batches through
  it beside the other metrics (a clear error first when the checkpoint flag is wrong)."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  from estimators import evaluation  # pylint: disable=import-outside-toplevel
  with pytest.raises(flags.IllegalFlagValueError, match="PREFIX.index.*StackGAN-inception-model"):
    run_flags("--is_classifier=stackgan_cub", "--stackgan_inception_checkpoint=/nope/model.ckpt")
  cfg = run_flags("--dataset=digits", "--is_classifier=stackgan_cub", "--is_splits=2",
                  "--stackgan_inception_checkpoint=" + release[0])
  assert (cfg.is_classifier, cfg.stackgan_inception_checkpoint) == ("stackgan_cub", release[0])
  with pytest.raises(sg.StackGANInceptionUnavailableError, match="needs StackGAN's fine-tuned"):
    evaluation.stackgan_score(cfg.replace(stackgan_inception_checkpoint=None))
  monkeypatch.setattr(sg, "load", lambda path: sg.StackGANInception(
      slim.load_checkpoint(path, depth_divisor=DIVISOR)[0], source=path, content_hash="h",
      depth_divisor=DIVISOR))

  class NoDigits:  # the digits classifier is not what this test is about
    def update(self, batch):
      del batch

    def result(self):
      return {}, {"num_generated": 64}

  monkeypatch.setattr("eval.digits_quality.DigitsQuality", NoDigits)
  images = _colour_images(64, 32, seed=5)
  evaluation._stackgan_classifier.cache_clear()  # pylint: disable=protected-access
  try:
    metrics, protocol, _ = evaluation.quality_metrics(cfg, [images[:40], images[40:]], {})
  finally:
    evaluation._stackgan_classifier.cache_clear()  # pylint: disable=protected-access
  probs = sg.load(release[0]).predictions(sg.quantize(images))
  mean, std, _ = sg.stackgan_inception_score(probs, 2, seed=cfg.seed)
  assert metrics == pytest.approx({"stackgan_cub_is_2split_mean": mean,
                                   "stackgan_cub_is_2split_std": std})
  assert protocol["stackgan_cub"]["num_scored"] == 64
