"""The list of image files a pipeline reads, kept in a small text file rather than in the graph.

A list of 100k+ paths and captions passed to `from_tensor_slices` becomes graph constants that
TF1-style estimators copy into graph.pbtxt and every checkpoint's .meta file. Instead each input
pipeline writes its (already sharded and ordered) records to a tab-separated index file, named by
the hash of its contents, and streams it with TextLineDataset. One line per image:
  path <TAB> label <TAB> box "x y w h" <TAB> captions "id id id|id id|..."
(label -1 and box "-1 -1 -1 -1" when absent). Writes are atomic, so concurrent workers are safe.
"""
import dataclasses
import hashlib
import os
import tempfile
from typing import Optional, Sequence, Tuple

import tensorflow as tf
from data import atomic_io

NO_BOX = (-1, -1, -1, -1)


def default_index_dir() -> str:
  return os.path.join(tempfile.gettempdir(), "tfgan_attention_data_index")


@dataclasses.dataclass(frozen=True)
class ImageRecord:
  path: str
  label: int = -1
  box: Tuple[int, int, int, int] = NO_BOX          # x, y, width, height (CUB bounding box)
  captions: Tuple[Tuple[int, ...], ...] = ()       # token ids of each caption

  def line(self) -> str:
    captions = "|".join(" ".join(str(i) for i in c) for c in self.captions)
    return f"{self.path}\t{self.label}\t{' '.join(str(v) for v in self.box)}\t{captions}"


def has_unsupported_characters(path: str) -> bool:
  return "\t" in path or "\n" in path or "\r" in path


def write_index(records: Sequence[ImageRecord], index_dir: Optional[str] = None) -> str:
  """Writes the records (in order) and returns the index file's path."""
  text = "".join(r.line() + "\n" for r in records).encode("utf-8")
  index_dir = index_dir or default_index_dir()
  os.makedirs(index_dir, exist_ok=True)
  path = os.path.join(index_dir, hashlib.sha1(text).hexdigest() + ".tsv")
  if os.path.isfile(path) and os.path.getsize(path) == len(text):
    return path
  atomic_io.atomic_write_bytes(path, text)
  return path


def read_index(path: str) -> tf.data.Dataset:
  """The index file's lines (parse them with `path_of` / `parse_line`, e.g. in a parallel map)."""
  return tf.data.TextLineDataset(path)


def path_of(line: tf.Tensor) -> tf.Tensor:
  return tf.strings.split(line, "\t", maxsplit=1)[0]


def parse_line(line: tf.Tensor):
  """A line -> dict: path string, label int32, box int32 [4], captions string."""
  fields = tf.strings.split(line, "\t")
  box = tf.strings.to_number(tf.strings.split(fields[2], " "), tf.int32)
  return {"path": fields[0], "label": tf.strings.to_number(fields[1], tf.int32),
          "box": tf.ensure_shape(box, [4]), "captions": fields[3]}


def parse_captions(field: tf.Tensor):
  """'1 2 3|4 5' -> (int32 [K, L] zero-padded ids, int32 [K] lengths)."""
  ids = tf.strings.to_number(tf.strings.split(tf.strings.split(field, "|"), " "), tf.int32)
  return ids.to_tensor(default_value=0), tf.cast(ids.row_lengths(), tf.int32)
