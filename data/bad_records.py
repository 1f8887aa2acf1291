"""Bookkeeping of records a pipeline skipped: counts per dataset and reason, a log line, a report.

Pipelines skip a corrupt or truncated image, a corrupt TFRecord shard tail or a malformed caption
line instead of crashing mid-epoch; each skip is recorded here once per distinct record (a record
met again in the next epoch is not counted twice). With `strict=True` the same call raises
`StrictDataError` naming the record instead, which fails the run (--strict_data).

The run directory gets the counts through `write_report(model_dir)`, an atomic JSON write. A
run directory is trained into by one process after another (a run resumed after a stop or a
crash, an evaluation run): each process is a run segment, and the report keeps one entry per
segment with its counts, plus their totals, so a resumed run's counts add up instead of showing
the last process's only. A process rewrites its own entry (matched by segment id) each time.
"""
import collections
import contextlib
import datetime
import json
import os
import socket
import threading
import uuid
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
    self.segment = _new_segment()

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
    """Forgets the counts and starts a new run segment (as a new process would)."""
    with self._lock:
      self._seen.clear()
      self._counts.clear()
      self._examples.clear()
      self.segment = _new_segment()


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_segment() -> Dict[str, object]:
  """What identifies one process's part of a run: a random id, its start, pid and host."""
  return {"segment": uuid.uuid4().hex[:12], "started": _now(), "pid": os.getpid(),
          "host": socket.gethostname()}


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
  """Writes this segment's counts into `<model_dir>/<filename>` (bad_records.json) atomically,
  keeping the other segments' entries, and returns its path.

  The file: {"total_skipped", "counts", "examples"} summed over every segment (a record skipped
  by two processes counts once in each), "segments": one entry per process that wrote the file
  ({"segment", "started", "pid", "host", "last_written", "total_skipped", "counts",
  "examples"}, in the order they first wrote), and a "note". A file written before segments
  existed becomes one entry with segment "before_segments"; an unreadable one is replaced (with
  a warning).

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
  entry = {**LOG.segment, "last_written": _now(), "total_skipped": _total(counts),
           "counts": counts, "examples": examples}
  path = os.path.join(model_dir, filename)
  os.makedirs(model_dir, exist_ok=True)
  with _report_lock(model_dir):
    segments = _read_segments(path)
    ids = [s.get("segment") for s in segments]
    if entry["segment"] in ids:
      segments[ids.index(entry["segment"])] = entry
    else:
      segments.append(entry)
    atomic_io.atomic_write_bytes(path, (json.dumps(_report(segments), indent=2, sort_keys=True)
                                        + "\n").encode())
  return path


def _total(counts) -> int:
  return int(sum(sum(r.values()) for r in counts.values()))


def _report(segments: List[dict]) -> dict:
  """The whole file: totals over the segments, then the segments."""
  total: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
  examples: Dict[str, Dict[str, List[str]]] = collections.defaultdict(dict)
  for segment in segments:
    for dataset, reasons in segment["counts"].items():
      total[dataset].update(reasons)
    for dataset, reasons in segment.get("examples", {}).items():
      for reason, keys in reasons.items():
        kept = examples[dataset].setdefault(reason, [])
        kept.extend(k for k in keys if k not in kept and len(kept) < _MAX_EXAMPLES)
  counts = {d: dict(c) for d, c in total.items()}  # pylint: disable=redefined-outer-name
  return {
      "total_skipped": _total(counts),
      "counts": counts,
      "examples": dict(examples),
      "segments": segments,
      "note": "distinct records skipped by the data pipelines of each process that read data for "
              "this run (one entry per run segment, each record counted once per segment over "
              "all its epochs) and their sums; run with --strict_data to stop at the first one "
              "instead",
  }


def _read_segments(path: str) -> List[dict]:
  """The segment entries already in the report at `path` ([] when there is none)."""
  if not os.path.exists(path):
    return []
  try:
    with open(path) as f:
      report = json.load(f)
    if "segments" in report:
      return list(report["segments"])
    return [{"segment": "before_segments", "total_skipped": _total(report["counts"]),
             "counts": report["counts"], "examples": report.get("examples", {})}]
  except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
    logging.warning("replacing unreadable %s (%s): earlier run segments' counts are lost",
                    path, e)
    return []


@contextlib.contextmanager
def _report_lock(model_dir: str):
  """Serialises read-modify-write of the reports: threads by a lock, processes (e.g. a trainer
  and an evaluator on one run directory) by flock on the directory, where the OS has it."""
  with _WRITE_LOCK:
    try:
      import fcntl  # pylint: disable=import-outside-toplevel
      fd = os.open(model_dir, os.O_RDONLY)
    except (ImportError, OSError):
      yield
      return
    try:
      fcntl.flock(fd, fcntl.LOCK_EX)
      yield
    finally:
      os.close(fd)  # releases the lock


_WRITE_LOCK = threading.Lock()
