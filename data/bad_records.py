"""Bookkeeping of records a pipeline skipped: counts per dataset and reason, a log line, a report.

Pipelines skip a corrupt or truncated image, a corrupt TFRecord shard tail or a malformed caption
line instead of crashing mid-epoch; each skip is recorded here once per distinct record (a record
met again in the next epoch is not counted twice). With `strict=True` the same call raises
`StrictDataError` naming the record instead, which fails the run (--strict_data).

The run directory gets the counts through `write_report(model_dir)`, an atomic JSON write.
"""
import collections
import json
import os
import threading
from typing import Dict, List, Optional

from absl import logging
from data import atomic_io

REPORT_FILENAME = "bad_records.json"
_MAX_EXAMPLES = 20     # record keys kept per (dataset, reason) for the report
_LOG_FIRST = 10        # every skip is logged up to this many per (dataset, reason), then every 1000th

# Reasons used by the loaders (the report keys).
CORRUPT_IMAGE = "corrupt_or_unreadable_image"
CORRUPT_SHARD = "corrupt_tfrecord_shard_tail"
MALFORMED_CAPTION = "malformed_caption_line"
TOO_FEW_CAPTIONS = "image_with_too_few_captions"
NO_CAPTIONS = "image_without_captions"
UNSUPPORTED_PATH = "unsupported_file_name"


class StrictDataError(ValueError):
  """A bad record met with strict=True (--strict_data)."""


# What a data error raised inside a tf.data pipeline carries in its message: the Python exception
# of a py_function callback (StrictDataError, data.tfrecord_reader.RecordCheckError) or the text
# of an in-graph label check.
_DATA_ERROR_MARKERS = ("StrictDataError: ", "RecordCheckError: ", "label out of range")


def data_error_message(error: BaseException) -> Optional[str]:
  """The data problem a TensorFlow error reports, in one line, or None when it is not one.

  Strict-mode stops and failed record checks reach the caller as tf.errors.InvalidArgumentError
  wrapped in pipeline and traceback text; this digs out the line that says what is wrong.
  """
  for line in str(error).splitlines():
    for marker in _DATA_ERROR_MARKERS:
      at = line.find(marker)
      if at < 0:
        continue
      if marker.endswith(": "):   # a Python exception: its message follows
        return line[at + len(marker):].strip()
      assertion = line.find("assertion failed: ")   # tf.debugging.Assert: [text] [value] ...
      text = line[assertion + len("assertion failed: "):] if 0 <= assertion < at else line[at:]
      return " ".join(text.replace("[", " ").replace("]", " ").split())
  return None


class BadRecordLog:
  """Thread-safe counts of skipped records, keyed by dataset tag (e.g. 'cub/train') and reason."""

  def __init__(self):
    self._lock = threading.Lock()
    self._seen = set()
    self._counts: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    self._examples: Dict[tuple, List[str]] = collections.defaultdict(list)

  def record(self, dataset: str, reason: str, key: str, *, strict: bool = False,
             detail: str = "") -> bool:
    """Counts one skipped record; returns False if it was already counted.

    Raises:
      StrictDataError: when strict, instead of counting.
    """
    what = f"{dataset}: {reason.replace('_', ' ')}: {key}" + (f" ({detail})" if detail else "")
    if strict:
      raise StrictDataError(
          f"{what}. Strict data mode (--strict_data) stops at the first bad record; without it "
          f"such records are skipped, counted and reported in {REPORT_FILENAME}.")
    with self._lock:
      if (dataset, reason, key) in self._seen:
        return False
      self._seen.add((dataset, reason, key))
      self._counts[dataset][reason] += 1
      n = self._counts[dataset][reason]
      if len(self._examples[(dataset, reason)]) < _MAX_EXAMPLES:
        self._examples[(dataset, reason)].append(key)
    if n <= _LOG_FIRST or n % 1000 == 0:
      logging.warning("skipped record %d (%s): %s", n, reason, what)
    return True

  def counts(self) -> Dict[str, Dict[str, int]]:
    with self._lock:
      return {d: dict(c) for d, c in self._counts.items()}

  def examples(self) -> Dict[str, Dict[str, List[str]]]:
    with self._lock:
      out: Dict[str, Dict[str, List[str]]] = collections.defaultdict(dict)
      for (dataset, reason), keys in self._examples.items():
        out[dataset][reason] = list(keys)
      return dict(out)

  def total(self) -> int:
    return sum(sum(c.values()) for c in self.counts().values())

  def reset(self):
    with self._lock:
      self._seen.clear()
      self._counts.clear()
      self._examples.clear()


LOG = BadRecordLog()


def record(dataset: str, reason: str, key: str, *, strict: bool = False, detail: str = "") -> bool:
  return LOG.record(dataset, reason, key, strict=strict, detail=detail)


def counts() -> Dict[str, Dict[str, int]]:
  """{dataset tag: {reason: number of distinct skipped records}} for this process so far."""
  return LOG.counts()


def log_summary():
  """Logs one line with the totals (call at the end of training / evaluation)."""
  c = counts()
  if not c:
    logging.info("data: no records skipped")
    return
  for dataset, reasons in sorted(c.items()):
    logging.warning("data: %s skipped %s", dataset,
                    ", ".join(f"{n} x {r}" for r, n in sorted(reasons.items())))


def write_report(model_dir: str, counts: Optional[Dict[str, Dict[str, int]]] = None,  # pylint: disable=redefined-outer-name
                 examples: Optional[Dict[str, Dict[str, List[str]]]] = None,
                 filename: str = REPORT_FILENAME) -> str:
  """Writes `<model_dir>/<filename>` (bad_records.json) atomically and returns its path.

  Args:
    model_dir: the run directory (created if missing).
    counts: {dataset: {reason: n}}; defaults to this process's counts (`counts()`).
    examples: {dataset: {reason: [record keys]}}; defaults to the recorded examples.
    filename: e.g. one per worker of a multi-worker run, whose workers read different shards.
  """
  if counts is None:
    counts = LOG.counts()
  if examples is None:
    examples = LOG.examples() if counts == LOG.counts() else {}
  report = {
      "total_skipped": int(sum(sum(r.values()) for r in counts.values())),
      "counts": counts,
      "examples": examples,
      "note": "distinct records skipped by the data pipelines of the latest process of this "
              "run (each counted once, over all epochs); run with --strict_data to stop at the "
              "first one instead",
  }
  path = os.path.join(model_dir, filename)
  atomic_io.atomic_write_bytes(path, (json.dumps(report, indent=2, sort_keys=True) + "\n").encode())
  return path
