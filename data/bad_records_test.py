"""Skipped-record counts: once per record, strict mode raises, atomic JSON report."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from data import bad_records


@pytest.fixture(autouse=True)
def _fresh_log():
  bad_records.LOG.reset()
  yield
  bad_records.LOG.reset()


def test_each_record_counts_once_per_dataset_and_reason():
  assert bad_records.record("x/train", bad_records.CORRUPT_IMAGE, "/d/a.jpg")
  assert not bad_records.record("x/train", bad_records.CORRUPT_IMAGE, "/d/a.jpg")  # next epoch
  bad_records.record("x/train", bad_records.CORRUPT_IMAGE, "/d/b.jpg")
  bad_records.record("x/train", bad_records.MALFORMED_CAPTION, "/d/a.txt:3")
  bad_records.record("x/test", bad_records.CORRUPT_IMAGE, "/d/a.jpg")
  assert bad_records.counts() == {
      "x/train": {bad_records.CORRUPT_IMAGE: 2, bad_records.MALFORMED_CAPTION: 1},
      "x/test": {bad_records.CORRUPT_IMAGE: 1}}
  assert bad_records.LOG.total() == 4


def test_strict_raises_with_the_record_and_counts_nothing():
  with pytest.raises(bad_records.StrictDataError, match=r"/d/a\.jpg.*--strict_data"):
    bad_records.record("x/train", bad_records.CORRUPT_IMAGE, "/d/a.jpg", strict=True)
  assert bad_records.counts() == {}


def test_write_report_is_atomic_json_with_counts_and_examples(tmp_path):
  bad_records.record("cub/train", bad_records.CORRUPT_IMAGE, "/d/a.jpg")
  path = bad_records.write_report(str(tmp_path / "run"))
  assert path == str(tmp_path / "run" / "bad_records.json")
  report = json.load(open(path))
  assert report["total_skipped"] == 1
  assert report["counts"] == {"cub/train": {bad_records.CORRUPT_IMAGE: 1}}
  assert report["examples"] == {"cub/train": {bad_records.CORRUPT_IMAGE: ["/d/a.jpg"]}}
  path = bad_records.write_report(str(tmp_path / "run"), {"other": {"r": 3}})
  assert json.load(open(path))["total_skipped"] == 3
  assert os.listdir(tmp_path / "run") == ["bad_records.json"]  # temp files renamed away


def test_a_resumed_run_reports_every_segment_and_their_sum(tmp_path):
  run = str(tmp_path / "run")
  bad_records.record("imagenet/train", bad_records.CORRUPT_IMAGE, "/d/train-0 record 3")
  bad_records.record("imagenet/train", bad_records.CORRUPT_SHARD, "/d/train-1")
  bad_records.write_report(run)
  first = bad_records.LOG.segment["segment"]
  bad_records.record("imagenet/train", bad_records.CORRUPT_IMAGE, "/d/train-2 record 0")
  bad_records.write_report(run)                 # the same process again: its entry is updated
  bad_records.LOG.reset()                       # a second process resumes the run
  second = bad_records.LOG.segment["segment"]
  bad_records.record("imagenet/train", bad_records.CORRUPT_IMAGE, "/d/train-0 record 3")
  bad_records.record("imagenet/validation", bad_records.CORRUPT_IMAGE, "/d/val-0 record 1")
  path = bad_records.write_report(run)
  report = json.load(open(path))
  assert [s["segment"] for s in report["segments"]] == [first, second] and first != second
  assert [s["total_skipped"] for s in report["segments"]] == [3, 2]
  assert report["segments"][0]["counts"] == {
      "imagenet/train": {bad_records.CORRUPT_IMAGE: 2, bad_records.CORRUPT_SHARD: 1}}
  assert report["segments"][1]["counts"] == {
      "imagenet/train": {bad_records.CORRUPT_IMAGE: 1},
      "imagenet/validation": {bad_records.CORRUPT_IMAGE: 1}}
  assert report["total_skipped"] == 5
  assert report["counts"] == {
      "imagenet/train": {bad_records.CORRUPT_IMAGE: 3, bad_records.CORRUPT_SHARD: 1},
      "imagenet/validation": {bad_records.CORRUPT_IMAGE: 1}}
  assert report["examples"]["imagenet/train"][bad_records.CORRUPT_IMAGE] == [
      "/d/train-0 record 3", "/d/train-2 record 0"]       # each record named once
  assert {"started", "last_written", "pid", "host"} <= set(report["segments"][1])
  assert report["segments"][1]["pid"] == os.getpid()
  assert os.listdir(run) == ["bad_records.json"]
  worker = bad_records.write_report(run, filename="bad_records.worker_1.json")
  assert json.load(open(worker))["total_skipped"] == 2   # other files are their own reports


def test_a_report_from_before_segments_becomes_the_first_segment(tmp_path):
  old = {"total_skipped": 4, "counts": {"cub/train": {bad_records.MALFORMED_CAPTION: 4}},
         "examples": {"cub/train": {bad_records.MALFORMED_CAPTION: ["/t/a.txt:3"]}},
         "note": "distinct records skipped by the data pipelines of the latest process"}
  os.makedirs(tmp_path / "run")
  with open(tmp_path / "run" / "bad_records.json", "w") as f:
    json.dump(old, f)
  bad_records.record("cub/train", bad_records.MALFORMED_CAPTION, "/t/b.txt:1")
  report = json.load(open(bad_records.write_report(str(tmp_path / "run"))))
  assert [s["segment"] for s in report["segments"]] == [
      "before_segments", bad_records.LOG.segment["segment"]]
  assert report["segments"][0]["total_skipped"] == 4
  assert report["counts"] == {"cub/train": {bad_records.MALFORMED_CAPTION: 5}}
  assert report["total_skipped"] == 5
  with open(tmp_path / "run" / "bad_records.json", "w") as f:
    f.write("{not json")
  report = json.load(open(bad_records.write_report(str(tmp_path / "run"))))
  assert len(report["segments"]) == 1 and report["total_skipped"] == 1


def test_data_error_message_digs_the_data_problem_out_of_tensorflow_errors():
  def pipeline_error(fn):
    ds = tf.data.Dataset.range(1).map(fn)
    with pytest.raises(tf.errors.InvalidArgumentError) as e:
      list(ds)
    return e.value

  def strict(_):
    bad_records.record("set/train", bad_records.CORRUPT_IMAGE, "/data/x.jpg", strict=True)
    return np.int64(0)
  message = bad_records.data_error_message(
      pipeline_error(lambda x: tf.py_function(strict, [x], tf.int64)))
  assert message.startswith("set/train: corrupt or unreadable image: /data/x.jpg. Strict data "
                            "mode (--strict_data) stops at the first bad record")
  label = tf.constant(12, tf.int64)
  message = bad_records.data_error_message(pipeline_error(
      lambda x: _checked(x, tf.debugging.Assert(x > 5, ["CIFAR-10 label out of range:", label,
                                                        "in", "/data/data_batch_1.bin"]))))
  assert message == "CIFAR-10 label out of range: 12 in /data/data_batch_1.bin"
  assert bad_records.data_error_message(tf.errors.InvalidArgumentError(None, None, "shape")) \
      is None


def _checked(x, check):
  with tf.control_dependencies([check]):
    return tf.identity(x)
