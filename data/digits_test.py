"""The embedded digits dataset: split sizes, value range, exact upsampling, determinism."""
import numpy as np
import tensorflow as tf

import data
from data import digits


def test_splits_partition_the_1797_images_stratified():
  _, y_train = digits.digits_source("train")
  _, y_test = digits.digits_source("test")
  assert len(y_train) + len(y_test) == 1797
  assert len(y_test) == 359 and len(y_train) == 1438
  assert np.bincount(y_test, minlength=10).min() >= 35


def test_pipeline_images_equal_tf_bilinear_resize_of_the_originals():
  images8, labels = digits.digits_source("test")
  ds = data.load("digits", split="test", image_size=32)
  first = next(iter(ds.batch(4)))
  expected = tf.image.resize(images8[:4, :, :, None].astype(np.float32) / 16.0, [32, 32],
                             method="bilinear").numpy() * 2.0 - 1.0
  np.testing.assert_allclose(first["images"].numpy()[..., 0], expected[..., 0], atol=1e-5)
  np.testing.assert_array_equal(first["images"].numpy()[..., 0], first["images"].numpy()[..., 2])
  np.testing.assert_array_equal(first["labels"].numpy(), labels[:4])
  assert first["images"].dtype == tf.float32 and first["labels"].dtype == tf.int32
  assert -1.0 <= float(tf.reduce_min(first["images"])) and float(tf.reduce_max(first["images"])) <= 1.0


def test_training_batches_are_deterministic_under_a_seed():
  def first_labels(seed):
    ds = data.batch_pipeline(data.load("digits"), 16, training=True, seed=seed)
    return next(iter(ds))["labels"].numpy()
  np.testing.assert_array_equal(first_labels(3), first_labels(3))
  assert not np.array_equal(first_labels(3), first_labels(4))
