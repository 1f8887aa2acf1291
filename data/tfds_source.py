"""Reading an already prepared TensorFlow Datasets directory, never downloading.

`tfds.load` with no prepared data retries the network for minutes (DESIGN.md, trap 7). Here the
prepared files are looked for first (`<data_dir>/<name>/<version>/dataset_info.json`); when they are
missing the loader fails at once, without importing tfds, saying how to prepare them. Only then is
the builder opened, for its dataset_info.json only: the split's TFRecord files are read by
data.tfrecord_reader (which skips and names damaged records and files), not by tfds.as_dataset,
whose reader retries a damaged file's DataLossError forever under a skipping decode.
"""
import os
from typing import Dict, List, Optional, Tuple

import tensorflow as tf

from data.layout import DataLayoutError


def find_prepared(name: str, data_dir: str) -> Optional[Tuple[str, str]]:
  """(tfds data_dir root, version) of a prepared `name` under data_dir, or None.

  data_dir may be the TFDS root (holding `<name>/`), the `<name>` directory or a version directory,
  local or on any filesystem tf.io.gfile reads (gs://...).
  """
  data_dir = data_dir.rstrip("/") if "://" in data_dir else os.path.abspath(data_dir)
  candidates = [(data_dir, os.path.join(data_dir, name, "*", "dataset_info.json")),
                (os.path.dirname(data_dir), os.path.join(data_dir, "*", "dataset_info.json")),
                (os.path.dirname(os.path.dirname(data_dir)), os.path.join(data_dir, "dataset_info.json"))]
  for root, pattern in candidates:
    found = sorted(tf.io.gfile.glob(pattern), key=lambda p: _version_key(os.path.basename(os.path.dirname(p))))
    found = [p for p in found if os.path.basename(os.path.dirname(os.path.dirname(p))) == name]
    if found:
      return root, os.path.basename(os.path.dirname(found[-1]))
  return None


def _version_key(version: str):
  try:
    return tuple(int(x) for x in version.split("."))
  except ValueError:
    return (-1,)


def open_prepared(name: str, data_dir: str, how_to_prepare: str):
  """The tfds builder of a prepared dataset; DataLayoutError at once (no network) when absent."""
  found = find_prepared(name, data_dir) if data_dir and tf.io.gfile.isdir(data_dir) else None
  if found is None:
    raise DataLayoutError(
        f"TFDS dataset {name!r} is not prepared under {data_dir} (looked for "
        f"{os.path.join(str(data_dir), name, '<version>', 'dataset_info.json')}); nothing is "
        f"downloaded at run time.\n{how_to_prepare}")
  root, version = found
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  try:
    return tfds.builder(f"{name}:{version}", data_dir=root)
  except Exception as e:  # pylint: disable=broad-except
    raise DataLayoutError(f"cannot open the prepared TFDS dataset {name}:{version} in {root}: "
                          f"{e}\n{how_to_prepare}") from e


def split_files(builder, split: str) -> List[str]:
  """The TFRecord files of a prepared split, for readers of their own (see data.tfrecord_reader)."""
  if split not in builder.info.splits:
    raise DataLayoutError(f"the prepared {builder.info.name} has no split {split!r} (it has "
                          f"{', '.join(builder.info.splits)}) in {builder.data_dir}")
  files = [str(p) for p in builder.info.splits[split].filepaths]
  missing = [f for f in files if not tf.io.gfile.exists(f)]
  if missing:
    raise DataLayoutError(f"the prepared {builder.info.name} lists {len(files)} files for split "
                          f"{split!r}; {len(missing)} are missing, e.g. {missing[0]}")
  return files


def split_record_counts(builder, split: str) -> Dict[str, int]:
  """{file: number of records} of a prepared split, as its dataset_info.json lists them."""
  info = builder.info.splits[split]
  return {str(p): int(n) for p, n in zip(info.filepaths, info.shard_lengths)}
