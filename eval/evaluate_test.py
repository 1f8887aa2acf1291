"""End-to-end `evaluate` with stand-in classifiers: values, provenance, streaming, real-stats cache."""
import os

import numpy as np
import pytest
import tensorflow as tf

from eval import evaluate as evaluate_lib
from eval import inception
from eval import metrics
from eval import real_stats_cache
from eval import standin_classifier

PROVENANCE = {"seed": 7, "checkpoint_step": 1200, "ema_weights": True}
KEY = {"dataset": "toy", "split": "test", "image_size": 12, "preprocessing": "none"}


class CountingClassifier:
  """Wraps a classifier and counts the images it sees."""

  def __init__(self, inner):
    self.inner, self.images_seen = inner, 0
    self.content_hash, self.protocol = inner.content_hash, inner.protocol

  def __call__(self, images):
    self.images_seen += len(images)
    return self.inner(images)


def _images(seed, n, size=12):
  rng = np.random.RandomState(seed)
  return np.tanh(rng.normal(0, 1, size=(n, size, size, 3)) + rng.normal(0, 1, size=(n, 1, 1, 3))
                 ).astype(np.float32)


def _real_dataset(n=150, size=12, seed=1):
  return tf.data.Dataset.from_tensor_slices(
      {"images": _images(seed, n, size), "labels": np.zeros(n, np.int32)})


def _batches(images, batch=37):
  return (images[i:i + batch] for i in range(0, len(images), batch))


def _run(classifier, fake, real_ds, **kwargs):
  settings = dict(num_samples=len(fake), cache_key_parts=KEY, provenance=PROVENANCE,
                  num_real_samples=10_000, splits=4, batch_size=32)
  settings.update(kwargs)
  return evaluate_lib.evaluate(_batches(fake), real_ds, classifier, **settings)


@pytest.fixture(scope="module")
def small_classifier():
  return standin_classifier.standin_classifier(logits_dim=16, pool_dim=8, image_size=8)


def test_values_equal_metrics_on_whole_activation_sets(small_classifier):
  fake, real = _images(0, 203), _images(1, 150)
  result = _run(small_classifier, fake, _real_dataset())
  f, r = small_classifier(fake), small_classifier(real)
  m = result.metrics
  assert m["inception_score"] == pytest.approx(metrics.classifier_score(f["logits"]), rel=1e-6)
  is_mean, is_std = metrics.inception_score(f["logits"], splits=4)
  assert m["inception_score_4split_mean"] == pytest.approx(is_mean, rel=1e-6)
  assert m["inception_score_4split_std"] == pytest.approx(is_std, rel=1e-6)
  assert m["fid"] == pytest.approx(metrics.frechet_distance(f["pool_3"], r["pool_3"]), rel=1e-6)
  kid = metrics.kernel_inception_distance(r["pool_3"], f["pool_3"])
  assert m["kid_mean"] == pytest.approx(kid[0], rel=1e-6)
  assert m["kid_stderr"] is None  # one block: TF-GAN's std error is undefined
  pr = metrics.improved_precision_recall(r["pool_3"], f["pool_3"], k=3)
  assert (m["precision_k3"], m["recall_k3"]) == pytest.approx(pr, abs=1e-12)
  assert m["fid"] > 0 and m["inception_score"] > 1


def test_protocol_records_provenance(small_classifier):
  result = _run(small_classifier, _images(0, 40), _real_dataset(), feature_subset_size=30)
  p = result.protocol
  assert {k: p[k] for k in PROVENANCE} == PROVENANCE
  assert (p["num_generated"], p["num_real"], p["num_real_requested"]) == (40, 150, 10_000)
  assert (p["real_dataset"], p["real_split"], p["is_splits"]) == ("toy", "test", 4)
  assert p["resize_method"] == "tf1_bilinear" and p["classifier_hash"].startswith("standin:")
  assert (p["num_generated_features"], p["num_real_features"]) == (30, 30)
  assert p["fid_dtype"] == "float64" and p["real_stats_cached"] is False
  assert set(result.timing) == {"real_seconds", "generated_seconds", "finalize_seconds"}
  record = result.to_record()
  assert record["step"] == 1200 and record["metrics"] == result.metrics


def test_callable_source_is_cut_at_num_samples(small_classifier):
  counting = CountingClassifier(small_classifier)
  pool = _images(2, 64)
  result = evaluate_lib.evaluate(lambda: pool, _real_dataset(n=40), counting, num_samples=100,
                                 cache_key_parts=KEY, provenance=PROVENANCE, splits=10,
                                 batch_size=40)
  assert counting.images_seen == 40 + 100  # real once, then 64 + 36 generated
  assert result.protocol["num_generated"] == 100


def test_bad_inputs_fail_clearly(small_classifier):
  with pytest.raises(ValueError, match="checkpoint_step"):
    _run(small_classifier, _images(0, 20), _real_dataset(), provenance={"seed": 1})
  with pytest.raises(ValueError, match=r"\[-1, 1\]"):
    _run(small_classifier, _images(0, 20) * 127.5 + 127.5, _real_dataset())
  with pytest.raises(ValueError, match="ended after 20 of 30"):
    _run(small_classifier, _images(0, 20), _real_dataset(), num_samples=30)


def test_real_stats_cache_is_reused_and_invalidated(small_classifier, tmp_path):
  counting = CountingClassifier(small_classifier)
  fake = _images(0, 30)

  def run(real_ds=None, classifier=counting, **kwargs):
    before = counting.images_seen
    result = _run(classifier, fake, real_ds or _real_dataset(), cache_dir=str(tmp_path), **kwargs)
    return result, counting.images_seen - before

  first, seen = run()
  assert seen == 30 + 150 and not first.protocol["real_stats_cached"]
  second, seen = run()
  assert seen == 30 and second.protocol["real_stats_cached"]  # no real image recomputed
  assert second.metrics == first.metrics
  other_weights = CountingClassifier(
      standin_classifier.standin_classifier(logits_dim=16, pool_dim=8, seed=1, image_size=8))
  changes = {
      "dataset": dict(cache_key_parts={**KEY, "dataset": "toy2"}),
      "split": dict(cache_key_parts={**KEY, "split": "train"}),
      "preprocessing": dict(cache_key_parts={**KEY, "preprocessing": "center_crop"}),
      "resolution": dict(real_ds=_real_dataset(size=16)),
      "sample count": dict(num_real_samples=100),
      "subset size": dict(feature_subset_size=50),
  }
  for what, change in changes.items():
    result, seen = run(**change)
    assert not result.protocol["real_stats_cached"], what
    assert seen > 30, what
  before = other_weights.images_seen
  result = _run(other_weights, fake, _real_dataset(), cache_dir=str(tmp_path))
  assert not result.protocol["real_stats_cached"] and other_weights.images_seen - before == 180
  other_resize = inception.InceptionClassifier(
      standin_classifier.StandinModule(16, 8, 0), content_hash=small_classifier.content_hash,
      source="standin", resize_method="bilinear", image_size=8)
  result = _run(other_resize, fake, _real_dataset(), cache_dir=str(tmp_path))
  assert not result.protocol["real_stats_cached"]
  _, seen = run()  # the original key is still cached
  assert seen == 30
  moved = CountingClassifier(small_classifier)
  moved.protocol = {**small_classifier.protocol, "classifier_source": "tfhub_cache:/elsewhere"}
  result = _run(moved, fake, _real_dataset(), cache_dir=str(tmp_path))
  assert result.protocol["real_stats_cached"]  # same bytes loaded from another place


def test_stats_cached_under_the_old_jpeg_downscale_default_are_not_reused(small_classifier,
                                                                          tmp_path):
  """Issue 17: ImageNet's jpeg_downscale default went from true to false. An entry cached by a
  default run before (its key parts then: no data_options, nothing resolved) or by a run given
  jpeg_downscale=true is not reused for the new default; the new default's own entry is."""
  counting = CountingClassifier(small_classifier)
  fake = _images(0, 30)
  parts = {"dataset": "imagenet128", "split": "validation", "image_size": 12,
           "data_dir": "/data/imagenet", "shuffle_seed": 0}

  def run(key_parts, cache_dir=tmp_path):
    before = counting.images_seen
    result = _run(counting, fake, _real_dataset(), cache_key_parts=key_parts,
                  cache_dir=str(cache_dir))
    return result.protocol, counting.images_seen - before

  protocol, _ = run(parts, cache_dir=tmp_path / "scratch")
  new_key = protocol["real_data_key"]
  assert new_key["resolved_data_options"] == {
      "jpeg_downscale": False, "parallel_reads": None, "resize_method": "tfgan", "shuffle": None,
      "source": "auto"}
  old_default_key = {k: v for k, v in new_key.items() if k != "resolved_data_options"}
  stale = real_stats_cache.RealStats(150, np.zeros(8), np.eye(8), np.zeros((10, 8), np.float32))
  real_stats_cache.load_or_compute(str(tmp_path), old_default_key, lambda: stale)
  protocol, seen = run(parts)
  assert not protocol["real_stats_cached"] and seen == 30 + 150
  protocol, seen = run(parts)                                   # the new default's own entry
  assert protocol["real_stats_cached"] and seen == 30
  old_given = {**parts, "data_options": {"jpeg_downscale": True}}
  protocol, seen = run(old_given)
  assert not protocol["real_stats_cached"] and seen == 30 + 150
  assert protocol["real_data_key"]["resolved_data_options"]["jpeg_downscale"] is True
  protocol, seen = run({**parts, "data_options": {"jpeg_downscale": False,
                                                  "shuffle_buffer_mb": 64}})
  assert protocol["real_stats_cached"] and seen == 30          # the same images: reused
  assert len([f for f in os.listdir(tmp_path) if f.endswith(".npz")]) == 3


@pytest.mark.slow
def test_loaded_inception_standin_end_to_end(tmp_path):
  """The real loading path feeds `evaluate`: 1008 logits, 2048-d pool_3, resize to 299."""
  path = standin_classifier.save_standin_module(str(tmp_path / "inception"))
  classifier = inception.load_inception(inception_path=path, allow_download=False)
  fake = _images(3, 48, size=16)
  result = evaluate_lib.evaluate(
      _batches(fake, 20), _real_dataset(n=40, size=16), classifier, num_samples=48,
      cache_key_parts=KEY, provenance=PROVENANCE, splits=2, batch_size=16)
  f, r = classifier(fake), classifier(_images(1, 40, size=16))
  xf, xr = f["pool_3"] - f["pool_3"].mean(0), r["pool_3"] - r["pool_3"].mean(0)
  # N < D = 2048: Tr((S_f S_r)^1/2) is exactly the nuclear norm of X_f X_r^T / sqrt(47 * 39).
  trace_sqrt = np.sum(np.linalg.svd(xf.astype(np.float64) @ xr.T, compute_uv=False))
  expected = (np.sum((f["pool_3"].mean(0, dtype=np.float64) - r["pool_3"].mean(0)) ** 2)
              + np.sum(np.square(xf, dtype=np.float64)) / 47
              + np.sum(np.square(xr, dtype=np.float64)) / 39
              - 2 * trace_sqrt / np.sqrt(47 * 39))
  assert result.metrics["fid"] == pytest.approx(expected, rel=1e-6)
  assert result.metrics["inception_score"] == pytest.approx(
      metrics.classifier_score(f["logits"]), rel=1e-6)
  assert result.protocol["classifier_hash"] == inception.directory_content_hash(path)
  assert result.protocol["classifier_image_size"] == 299
