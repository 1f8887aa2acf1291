"""Skipping failed decodes: exact positions of what was lost, at head, middle and tail, in TF2
eager iteration and inside a TF1 graph (the estimator input_fn path)."""
import pytest
import tensorflow as tf

from data import resilient_decode


def _sources(columns):
  """columns[s] = strings of source s (sources one after the other); numbers decode, the rest fail."""
  ds = None
  for s, col in enumerate(columns):
    one = resilient_decode.with_positions(tf.data.Dataset.from_tensor_slices({"s": col}), s)
    ds = one if ds is None else ds.concatenate(one)
  return ds


def _decode(e):
  return {"v": tf.strings.to_number(e["s"], tf.int32)}


def _run(ds, num_sources):
  skipped = []
  out = resilient_decode.decode_skipping_bad(
      ds, _decode, num_sources=num_sources,
      on_skipped=lambda s, first, n: skipped.append((s, first, n)))
  return [int(e["v"]) for e in out], skipped


def test_failures_at_head_middle_and_tail_of_each_source_are_reported_exactly():
  a = ["x", "1", "y", "z", "4", "5", "w"]
  b = ["6", "q", "8"]
  ds = _sources([a, b])
  values, skipped = _run(ds, 2)
  assert values == [1, 4, 5, 6, 8]
  assert skipped == [(0, 0, 1), (0, 2, 2), (0, 6, 1), (1, 1, 1)]


def test_interleaved_sources_keep_their_own_positions():
  per_source = [resilient_decode.with_positions(
      tf.data.Dataset.from_tensor_slices({"s": col}), s)
      for s, col in enumerate([["1", "bad", "3"], ["bad", "5", "bad"]])]
  ds = tf.data.Dataset.sample_from_datasets(per_source, seed=3, stop_on_empty_dataset=False)
  values, skipped = _run(ds, 2)
  assert sorted(values) == [1, 3, 5]
  assert sorted(skipped) == [(0, 1, 1), (1, 0, 1), (1, 2, 1)]


def test_callback_exception_fails_the_iteration_with_its_message():
  ds = _sources([["1", "bad"]])

  def strict(source, first, count):
    raise ValueError(f"corrupt record {first} of source {source}")
  out = resilient_decode.decode_skipping_bad(ds, _decode, num_sources=1, on_skipped=strict)
  with pytest.raises(tf.errors.InvalidArgumentError, match="corrupt record 1 of source 0"):
    list(out)


def test_works_inside_a_tf1_graph_like_an_estimator_input_fn():
  skipped = []
  graph = tf.Graph()
  with graph.as_default():
    ds = _sources([["bad", "2", "bad", "4"]])
    out = resilient_decode.decode_skipping_bad(
        ds, _decode, num_sources=1, on_skipped=lambda s, f, n: skipped.append((s, f, n)))
    nxt = tf.compat.v1.data.make_one_shot_iterator(out).get_next()
    values = []
    with tf.compat.v1.Session() as sess:
      try:
        while True:
          values.append(int(sess.run(nxt)["v"]))
      except tf.errors.OutOfRangeError:
        pass
  assert values == [2, 4]
  assert skipped == [(0, 0, 1), (0, 2, 1)]
