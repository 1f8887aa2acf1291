"""metrics.jsonl records and TensorBoard summaries read back."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from eval import metrics_log


def _record(step, fid):
  return {"step": step, "metrics": {"fid": fid, "kid_stderr": None, "inception_score": 2.5},
          "protocol": {"num_generated": 100, "classifier_hash": "sha256:ab"}}


def test_append_keeps_one_line_per_evaluation(tmp_path):
  path = str(tmp_path / "metrics.jsonl")
  for step, fid in ((100, 30.0), (200, 12.5), (300, 20.0)):
    metrics_log.append_jsonl(path, _record(step, fid))
  with open(path) as f:
    lines = f.read().splitlines()
  assert [json.loads(line)["step"] for line in lines] == [100, 200, 300]
  assert metrics_log.read_jsonl(path)[1] == _record(200, 12.5)
  assert metrics_log.best_record(path, "fid")["step"] == 200
  assert metrics_log.best_record(path, "inception_score", lower_is_better=False)["step"] == 100
  assert metrics_log.best_record(path, "kid_stderr") is None
  assert os.listdir(tmp_path) == ["metrics.jsonl"]


def test_non_finite_values_are_refused_and_file_untouched(tmp_path):
  path = str(tmp_path / "metrics.jsonl")
  metrics_log.append_jsonl(path, _record(1, 3.0))
  with pytest.raises(ValueError):
    metrics_log.append_jsonl(path, _record(2, float("nan")))
  assert len(metrics_log.read_jsonl(path)) == 1


def test_numpy_scalars_are_written_as_numbers(tmp_path):
  path = str(tmp_path / "metrics.jsonl")
  record = _record(np.int64(5), np.float64(1.5))
  metrics_log.append_jsonl(path, record)
  assert metrics_log.read_jsonl(path)[0]["step"] == 5
  with pytest.raises(TypeError, match="not JSON serializable"):
    metrics_log.append_jsonl(path, {"metrics": {"fid": object()}})


def test_tensorboard_scalars_and_protocol(tmp_path):
  metrics_log.write_tensorboard(str(tmp_path), _record(700, 12.5))
  (event_file,) = tf.io.gfile.glob(str(tmp_path / "events.out.tfevents.*"))
  seen = {}
  for event in tf.compat.v1.train.summary_iterator(event_file):
    for value in event.summary.value:
      seen[value.tag] = (event.step, tf.make_ndarray(value.tensor))
  assert seen["eval/fid"][0] == 700 and float(seen["eval/fid"][1]) == pytest.approx(12.5)
  assert float(seen["eval/inception_score"][1]) == pytest.approx(2.5)
  assert "eval/kid_stderr" not in seen
  protocol_text = np.asarray(seen["eval/protocol"][1]).item().decode("utf8")
  assert '"classifier_hash": "sha256:ab"' in protocol_text
