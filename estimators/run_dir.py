"""The run directory's files, written so a crash or kill never leaves one half-written.

Every file is written to a temporary name in the same directory, flushed and fsynced, then
renamed over the target (atomic on POSIX). metrics.jsonl is appended by rewriting it that way.
"""
import json
import os
import platform
import sys
import tempfile

import numpy as np


def atomic_replace(tmp_path, final_path):
  fd = os.open(tmp_path, os.O_RDONLY)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)
  os.replace(tmp_path, final_path)


def atomic_write_bytes(path, payload: bytes):
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(payload)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def atomic_write_json(path, obj):
  atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def read_jsonl(path):
  if not os.path.exists(path):
    return []
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def append_jsonl(path, record):
  """Appends one JSON line; the file is replaced whole, so readers never see a partial line."""
  existing = b""
  if os.path.exists(path):
    with open(path, "rb") as f:
      existing = f.read()
  line = json.dumps(record, sort_keys=True, default=str).encode() + b"\n"
  atomic_write_bytes(path, existing + line)


def write_png(path, image):
  """image: [H, W, 3] float in [-1, 1] or uint8."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  import io  # pylint: disable=import-outside-toplevel
  arr = np.asarray(image)
  if arr.dtype != np.uint8:
    arr = np.clip(np.round((arr + 1.0) * 127.5), 0, 255).astype(np.uint8)
  buf = io.BytesIO()
  Image.fromarray(arr).save(buf, format="PNG")
  atomic_write_bytes(path, buf.getvalue())


def grid(images, cols):
  """[N, H, W, C] numpy -> one [rows*H, cols*W, C] image (missing cells black)."""
  n, h, w, c = images.shape
  rows = -(-n // cols)
  out = np.full((rows * h, cols * w, c), -1.0, np.float32)
  for i, img in enumerate(images):
    r, q = divmod(i, cols)
    out[r * h:(r + 1) * h, q * w:(q + 1) * w] = img
  return out


def library_versions():
  import importlib.metadata as md  # pylint: disable=import-outside-toplevel
  names = ["tensorflow-cpu", "tensorflow", "tensorflow-estimator", "keras", "tensorflow-gan",
           "tensorflow-addons", "tensorflow-probability", "tensorflow-hub",
           "tensorflow-datasets", "numpy", "scipy", "scikit-learn", "absl-py"]
  versions = {}
  for n in names:
    try:
      versions[n] = md.version(n)
    except md.PackageNotFoundError:
      pass
  versions["python"] = sys.version.split()[0]
  versions["platform"] = platform.platform()
  return versions


def write_run_config(model_dir, config_dict, argv=None):
  """run_config.json: resolved flags and library versions, written before training starts.

  A rerun that changes a setting keeps the earlier record as run_config.<n>.json, so the
  history of a resumed run is never lost.
  """
  path = os.path.join(model_dir, "run_config.json")
  record = {"config": config_dict, "versions": library_versions(), "argv": list(argv or [])}
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      previous = json.load(f)
    if previous.get("config") == config_dict:
      return path
    n = 1
    while os.path.exists(os.path.join(model_dir, f"run_config.{n}.json")):
      n += 1
    atomic_write_json(os.path.join(model_dir, f"run_config.{n}.json"), previous)
  atomic_write_json(path, record)
  return path
