"""batch_pipeline: the shuffle buffer sized in bytes (default 512 MiB, at most 10,000 elements),
the budget from data.load's options, the size logged; batches fixed and seeded."""
import logging

import numpy as np
import pytest
import tensorflow as tf

import data
from data import pipeline


def _spec(size, extra=None):
  spec = {"images": tf.TensorSpec([size, size, 3], tf.float32),
          "labels": tf.TensorSpec([], tf.int32)}
  spec.update(extra or {})
  return spec


def test_element_bytes_are_the_static_numeric_tensors():
  assert pipeline.element_bytes(_spec(128)) == (128 * 128 * 3 * 4 + 4, True)   # 196,612
  captions = {"captions": tf.TensorSpec([18], tf.int32), "key": tf.TensorSpec([], tf.string),
              "ragged": tf.TensorSpec([None], tf.float32)}
  assert pipeline.element_bytes(_spec(32, captions)) == (12_288 + 4 + 72, False)


def test_default_budget_holds_2730_images_of_128_px_not_10000():
  assert pipeline.shuffle_buffer_size(_spec(128), 512) == 2730    # 536,870,912 // 196,612
  assert pipeline.shuffle_buffer_size(_spec(256), 512) == 682     # // 786,436
  assert pipeline.shuffle_buffer_size(_spec(64), 512) == 10_000   # 10,922 fit: the count caps
  assert pipeline.shuffle_buffer_size(_spec(32), 512) == 10_000
  assert pipeline.shuffle_buffer_size(_spec(128), 2048) == 10_000
  assert pipeline.shuffle_buffer_size(_spec(128), 1024) == 5461
  assert pipeline.shuffle_buffer_size(_spec(128), 0.1) == 1       # never empty
  assert pipeline.shuffle_buffer_size({"s": tf.TensorSpec([], tf.string)}, 512) == 10_000


def _shuffle_op_sizes(ds):
  graph = tf.compat.v1.GraphDef.FromString(
      ds._as_serialized_graph().numpy())  # pylint: disable=protected-access
  consts = {n.name: n for n in graph.node if n.op == "Const"}
  sizes = []
  for node in graph.node:
    if node.op.startswith("ShuffleDataset"):
      buffer = consts[node.input[1].split(":")[0]].attr["value"].tensor
      sizes.append(int(tf.make_ndarray(buffer)))
  return sizes


def test_the_budget_from_load_options_sizes_the_buffer_and_is_logged(caplog):
  elements = data.load("digits", split="test", image_size=128, shuffle_buffer_mb=64)
  # The absl logger's own level too: an earlier test may have lowered TF's verbosity.
  with caplog.at_level(logging.INFO), caplog.at_level(logging.INFO, logger="absl"):
    ds = pipeline.batch_pipeline(elements, 4, training=True, seed=1)
  assert _shuffle_op_sizes(ds) == [341]                            # 67,108,864 // 196,612
  assert ("data: training shuffle buffer of 341 elements x 196612 bytes = 63.9 MiB "
          "(shuffle_buffer_mb=64, at most 10000 elements)") in caplog.text
  default = data.load("digits", split="test", image_size=128)
  assert _shuffle_op_sizes(pipeline.batch_pipeline(default, 4, training=True, seed=1)) == [2730]
  assert _shuffle_op_sizes(pipeline.batch_pipeline(default, 4, training=True, seed=1,
                                                   shuffle_buffer_mb=1)) == [5]
  assert _shuffle_op_sizes(pipeline.batch_pipeline(default, 4, training=False)) == []
  with pytest.raises(ValueError, match="positive number of MiB, got -1"):
    pipeline.with_shuffle_buffer_mb(default, -1)


def test_training_batches_are_fixed_size_repeated_and_seeded():
  elements = tf.data.Dataset.range(10).map(lambda i: {"x": i})
  first = [b["x"].tolist() for b in pipeline.batch_pipeline(
      elements, 4, training=True, seed=3).take(5).as_numpy_iterator()]
  again = [b["x"].tolist() for b in pipeline.batch_pipeline(
      elements, 4, training=True, seed=3).take(5).as_numpy_iterator()]
  assert first == again and all(len(b) == 4 for b in first)
  assert sorted(np.concatenate(first[:2] + [first[2][:2]]).tolist()) == list(range(10))
  evaluation = [b["x"].tolist() for b in pipeline.batch_pipeline(
      elements, 4, training=False, drop_remainder=False).as_numpy_iterator()]
  assert evaluation == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
