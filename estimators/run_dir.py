"""The run directory's files, written so a crash or kill never leaves one half-written.

Every file goes through `data.atomic_io.atomic_write_bytes` (temporary file in the same
directory, fsync, rename); metrics.jsonl is appended by `eval.metrics_log.append_jsonl`, which
rewrites it that way.
"""
import json
import os
import platform
import re
import sys

import numpy as np
import tensorflow as tf

from data.atomic_io import atomic_write_bytes
from eval.metrics_log import append_jsonl, read_jsonl

__all__ = ["atomic_write_bytes", "atomic_write_json", "append_jsonl", "read_jsonl", "write_png",
           "grid", "library_versions", "write_run_config"]


def atomic_write_json(path, obj):
  atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


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


def resolve_checkpoint(model_dir_or_path):
  """A checkpoint prefix from a prefix or a model_dir (its latest); clear error if none."""
  if tf.io.gfile.isdir(model_dir_or_path):
    path = tf.train.latest_checkpoint(model_dir_or_path)
    if path is None:
      raise FileNotFoundError(f"no checkpoint in {model_dir_or_path}: train first "
                              "(--mode=train) or pass --checkpoint=PATH")
    return path
  if not tf.io.gfile.exists(model_dir_or_path + ".index"):
    raise FileNotFoundError(f"checkpoint {model_dir_or_path} not found (expected "
                            f"{model_dir_or_path}.index)")
  return model_dir_or_path


def resume_point(model_dir):
  """(global step, checkpoint prefix) a train rerun in `model_dir` continues from, or None when
  it holds no checkpoint. The step is the checkpoint's global_step (else its name's suffix)."""
  path = tf.train.latest_checkpoint(model_dir)
  if path is None:
    return None
  try:
    return int(tf.train.load_variable(path, "global_step")), path
  except (tf.errors.NotFoundError, ValueError):
    match = re.search(r"-(\d+)$", path)
    return (int(match.group(1)) if match else None), path
