"""Skipping failed decodes: exact positions of what was lost, at head, middle and tail, in TF2
eager iteration and inside a TF1 graph (the estimator input_fn path)."""
import pytest
import tensorflow as tf

from data import format_writers
from data import resilient_decode


def _numbers(strings, skipped, **kwargs):
  ds = tf.data.Dataset.from_tensor_slices(strings)
  return resilient_decode.decode_list_skipping_bad(
      ds, lambda s: tf.strings.to_number(s, tf.int32), length=len(strings),  # fails on non-numbers
      on_skipped=lambda first, n: skipped.append((first, n)), **kwargs)


def test_list_form_reports_head_middle_and_tail_failures_exactly():
  for parallel in (None, 1):
    skipped = []
    out = _numbers(["x", "1", "y", "z", "4", "w"], skipped, num_parallel_calls=parallel)
    assert [int(v) for v in out] == [1, 4]
    assert skipped == [(0, 1), (2, 2), (5, 1)]
    assert [int(v) for v in out] == [1, 4]             # a second epoch finds the same records


def test_callback_errors_fail_the_iteration():
  def strict(first, count):
    raise ValueError(f"corrupt record {first} (+{count - 1})")
  out = resilient_decode.decode_list_skipping_bad(
      tf.data.Dataset.from_tensor_slices(["1", "bad"]),
      lambda s: tf.strings.to_number(s, tf.int32), length=2, on_skipped=strict)
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"corrupt record 1 \(\+0\)"):
    list(out)


def test_works_inside_a_tf1_graph_like_an_estimator_input_fn():
  skipped = []
  values = [int(v) for v in format_writers.elements_in_tf1_graph(
      lambda: _numbers(["bad", "2", "bad", "4"], skipped))]
  assert values == [2, 4]
  assert skipped == [(0, 1), (2, 1)]
