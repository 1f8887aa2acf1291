"""Recording evaluation results: one JSON line per evaluation in metrics.jsonl, and TensorBoard.

A record is a JSON object (see `eval.evaluate.EvalResult.to_record`):
  {"step": 1000, "time": "2026-11-21T14:00:00Z", "metrics": {"fid": 12.3, ...},
   "protocol": {"num_generated": 50000, "classifier_hash": "sha256:...", ...}, "timing": {...}}
`append_jsonl` rewrites the whole file atomically (old lines + the new one), so a crash never
leaves a truncated line; values must be finite (undefined ones are null). `write_tensorboard`
writes each metric as the scalar `eval/<name>` and the protocol as the text `eval/protocol`.
"""
import json
import math
import os
from typing import List, Optional

from data import atomic_io


def append_jsonl(path: str, record: dict) -> None:
  """Appends `record` as one line to the JSONL file at `path` (atomic whole-file rewrite)."""
  line = json.dumps(record, sort_keys=True, allow_nan=False, default=_numpy_scalar)
  existing = b""
  if os.path.exists(path):
    with open(path, "rb") as f:
      existing = f.read()
    if existing and not existing.endswith(b"\n"):
      existing += b"\n"
  atomic_io.atomic_write_bytes(path, existing + line.encode("utf8") + b"\n")


def _numpy_scalar(value):
  if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy / tf scalar
    return value.item()
  raise TypeError(f"{type(value).__name__} is not JSON serializable: {value!r}")


def read_jsonl(path: str) -> List[dict]:
  """All records of a JSONL file, in order; [] when it does not exist."""
  if not os.path.exists(path):
    return []
  with open(path, encoding="utf8") as f:
    return [json.loads(line) for line in f if line.strip()]


def best_record(path: str, metric: str = "fid", lower_is_better: bool = True) -> Optional[dict]:
  """The record with the best value of `metrics[metric]` so far (for best-FID export), or None."""
  candidates = [r for r in read_jsonl(path) if r.get("metrics", {}).get(metric) is not None]
  if not candidates:
    return None
  pick = min if lower_is_better else max
  return pick(candidates, key=lambda r: r["metrics"][metric])


def write_tensorboard(logdir: str, record: dict) -> None:
  """Writes a record's metrics as scalars `eval/<name>` and its protocol as text, at its step."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  step = int(record.get("step") or 0)
  writer = tf.summary.create_file_writer(logdir)
  with writer.as_default():
    for name, value in sorted(record["metrics"].items()):
      if value is not None and math.isfinite(value):
        tf.summary.scalar(f"eval/{name}", value, step=step)
    protocol = json.dumps(record.get("protocol", {}), sort_keys=True, indent=2)
    tf.summary.text("eval/protocol", "```\n" + protocol + "\n```", step=step)
  writer.flush()
  writer.close()
