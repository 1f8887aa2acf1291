"""The digits classifier behind digits_fid/digits_score: accuracy bar, caching, metric sanity."""
import os

import numpy as np
import pytest

from data.digits import digits_arrays
from eval import digits_classifier
from eval.digits_quality import evaluate_digits


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def classifier(cache_dir):
  """Trained here, in an empty cache (the tests below read that cache again)."""
  assert not os.listdir(cache_dir)
  return digits_classifier.load_classifier(cache_dir)


def test_trained_reproducibly_to_at_least_95_percent_held_out(classifier, tmp_path_factory):
  accuracy = digits_classifier.held_out_accuracy(classifier)
  assert accuracy >= 0.95
  again, accuracy_again = digits_classifier.train_classifier()
  # Same seed and recipe: the same network (bitwise on this machine; the tolerances leave room
  # for another CPU's float reassociation, far below what a different seed moves, ~0.1).
  assert accuracy_again == pytest.approx(accuracy, abs=1e-3)
  first_weights, again_weights = classifier.get_weights(), again.get_weights()
  assert [w.shape for w in again_weights] == [w.shape for w in first_weights]
  for first_w, again_w in zip(first_weights, again_weights):
    np.testing.assert_allclose(again_w, first_w, atol=1e-4)
  x, _ = digits_arrays("test")
  first_logits, again_logits = classifier(x)[1].numpy(), again(x)[1].numpy()
  np.testing.assert_allclose(again_logits, first_logits, atol=1e-3 * np.abs(first_logits).max())
  np.testing.assert_array_equal(again_logits.argmax(1), first_logits.argmax(1))


def test_cached_weights_are_reused(classifier, cache_dir, monkeypatch):
  cache, first = cache_dir, classifier
  files = os.listdir(cache)
  assert files == [f"digits_classifier_{digits_classifier.recipe_hash()}.weights.h5"]
  mtime = os.path.getmtime(os.path.join(cache, files[0]))
  monkeypatch.setattr(digits_classifier, "train_classifier", None)  # a second training fails
  second = digits_classifier.load_classifier(cache)
  assert os.path.getmtime(os.path.join(cache, files[0])) == mtime
  x, _ = digits_arrays("test")
  np.testing.assert_allclose(first(x[:8])[1].numpy(), second(x[:8])[1].numpy(), rtol=1e-6)


def test_digits_fid_separates_real_digits_from_noise(classifier):
  real_test, _ = digits_arrays("test")
  metrics_real, protocol = evaluate_digits([real_test[:180], real_test[180:]],
                                           classifier=classifier)
  noise = np.random.RandomState(0).uniform(-1, 1, real_test.shape).astype(np.float32)
  metrics_noise, _ = evaluate_digits([noise], classifier=classifier)
  assert protocol["num_generated"] == len(real_test) and protocol["num_real"] == 1438
  # Held-out real digits sit close to the training digits; uniform noise is far away.
  assert metrics_noise["digits_fid"] > 20 * metrics_real["digits_fid"]
  # Confidently classified, balanced real digits score near the 10 classes; noise near 1.
  assert metrics_real["digits_score"] > 8.0
  assert metrics_noise["digits_score"] < 2.0


def test_images_of_another_size_are_area_resized_to_the_classifiers_32_px(classifier):
  """A run at 128 px on digits (e.g. released weights imported at their size) is scored on
  its images area-resized to 32 px: real digits at 128 px score as the 32 px ones do."""
  real_32, _ = digits_arrays("test", 32)
  real_128, _ = digits_arrays("test", 128)
  metrics_32, protocol_32 = evaluate_digits([real_32], classifier=classifier)
  metrics_128, protocol = evaluate_digits([real_128], classifier=classifier)
  assert "generated_resize" not in protocol_32
  assert protocol["generated_resize"] == "128 px -> 32 px, area"
  assert metrics_128["digits_score"] == pytest.approx(metrics_32["digits_score"], rel=0.05)
  assert metrics_128["digits_fid"] < 3 * metrics_32["digits_fid"] + 1.0
