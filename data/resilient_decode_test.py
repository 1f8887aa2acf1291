"""Skipping failed decodes: exact positions of what was lost, at head, middle and tail, in TF2
eager iteration and inside a TF1 graph (the estimator input_fn path)."""
import pytest
import tensorflow as tf

from data import format_writers
from data import resilient_decode


def _decode(e):
  return {"v": tf.strings.to_number(e["s"], tf.int32)}  # fails on anything but a number


def _source(strings, skipped, label="", **kwargs):
  ds = resilient_decode.with_positions(tf.data.Dataset.from_tensor_slices({"s": strings}))
  return resilient_decode.decode_skipping_bad(
      ds, _decode, on_skipped=lambda first, n: skipped.append((label, first, n)), **kwargs)


def test_failures_at_head_middle_and_tail_are_reported_exactly():
  for parallel in (tf.data.AUTOTUNE, None):
    skipped = []
    out = _source(["x", "1", "y", "z", "4", "5", "w"], skipped, num_parallel_calls=parallel)
    assert [int(e["v"]) for e in out] == [1, 4, 5]
    assert skipped == [("", 0, 1), ("", 2, 2), ("", 6, 1)]


def test_list_form_reports_head_middle_and_tail_failures_exactly():
  skipped = []
  ds = tf.data.Dataset.from_tensor_slices(["x", "1", "y", "z", "4", "w"])
  out = resilient_decode.decode_list_skipping_bad(
      ds, lambda s: tf.strings.to_number(s, tf.int32), length=6,
      on_skipped=lambda first, n: skipped.append((first, n)))
  assert [int(v) for v in out] == [1, 4]
  assert skipped == [(0, 1), (2, 2), (5, 1)]
  assert [int(v) for v in out] == [1, 4]             # a second epoch finds the same records


def test_interleaved_sources_keep_their_own_positions():
  skipped = []
  columns = [["1", "bad", "3"], ["bad", "5", "bad"]]
  per_source = [_source(col, skipped, label=str(k), num_parallel_calls=None)
                for k, col in enumerate(columns)]
  ds = tf.data.Dataset.sample_from_datasets(per_source, seed=3, stop_on_empty_dataset=False)
  assert sorted(int(e["v"]) for e in ds) == [1, 3, 5]
  assert sorted(skipped) == [("0", 1, 1), ("1", 0, 1), ("1", 2, 1)]


def test_validate_errors_are_not_skipped_and_callback_errors_fail_the_iteration():
  def positive(out, pos):
    check = tf.debugging.Assert(out["v"] > 0, ["not positive at", pos])
    with tf.control_dependencies([check]):
      return {"v": tf.identity(out["v"])}
  with pytest.raises(tf.errors.InvalidArgumentError, match="not positive at"):
    list(_source(["1", "-2"], [], validate=positive))

  def strict(first, count):
    raise ValueError(f"corrupt record {first} (+{count - 1})")
  ds = resilient_decode.with_positions(tf.data.Dataset.from_tensor_slices({"s": ["1", "bad"]}))
  out = resilient_decode.decode_skipping_bad(ds, _decode, on_skipped=strict)
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"corrupt record 1 \(\+0\)"):
    list(out)


def test_works_inside_a_tf1_graph_like_an_estimator_input_fn():
  skipped = []
  values = [int(e["v"]) for e in format_writers.elements_in_tf1_graph(
      lambda: _source(["bad", "2", "bad", "4"], skipped))]
  assert values == [2, 4]
  assert skipped == [("", 0, 1), ("", 2, 1)]
