"""Dataset registry: names -> loader functions plus what each needs (data_dir, classes, sizes)."""
import dataclasses
from typing import Callable, Dict, Optional, Tuple

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """What `run.py` needs to know about a dataset before building anything.

  Attributes:
    name: registry name (the value of --dataset).
    loader: fn(data_dir, split, image_size, **kwargs) -> tf.data.Dataset of dict elements.
    needs_data_dir: True when the data must be read from --data_dir (nothing is downloaded).
    num_classes: number of classes for class-conditional sets, 0 for unconditional ones.
    default_image_size: resolution used when the caller gives none.
    splits: the split names the loader accepts.
    description: one line for --help and error messages, including the expected layout.
  """
  name: str
  loader: Callable[..., tf.data.Dataset]
  needs_data_dir: bool
  num_classes: int
  default_image_size: int
  splits: Tuple[str, ...] = ("train", "test")
  description: str = ""


DATASETS: Dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
  if spec.name in DATASETS:
    raise ValueError(f"dataset {spec.name!r} is registered twice")
  DATASETS[spec.name] = spec
  return spec


def get_spec(name: str) -> DatasetSpec:
  _ensure_builtin_registered()
  if name not in DATASETS:
    raise ValueError(
        f"unknown dataset {name!r}; choose one of: {', '.join(sorted(DATASETS))}")
  return DATASETS[name]


def load(name: str, data_dir: Optional[str] = None, split: str = "train",
         image_size: Optional[int] = None, **kwargs) -> tf.data.Dataset:
  """Returns an unbatched tf.data.Dataset of dict elements (see the package docstring).

  Args:
    name: a registered dataset name (see `DATASETS`).
    data_dir: where the files are; required when the dataset's spec says so.
    split: one of the spec's splits.
    image_size: output resolution (square); defaults to the spec's.
    **kwargs: dataset-specific options (documented on each loader).
  Raises:
    ValueError: unknown name or split, or a missing data_dir, with what to do about it.
  """
  spec = get_spec(name)
  if split not in spec.splits:
    raise ValueError(f"dataset {name!r} has no split {split!r}; choose one of {spec.splits}")
  if spec.needs_data_dir and not data_dir:
    raise ValueError(
        f"dataset {name!r} is read from files and needs --data_dir "
        f"(nothing is downloaded). Expected: {spec.description}")
  size = image_size or spec.default_image_size
  if size <= 0:
    raise ValueError(f"image_size must be positive, got {size}")
  return spec.loader(data_dir=data_dir, split=split, image_size=size, **kwargs)


_builtin_done = False


def _ensure_builtin_registered():
  """Imports the dataset modules once, each of which registers itself."""
  global _builtin_done
  if _builtin_done:
    return
  _builtin_done = True
  from data import builtin  # pylint: disable=import-outside-toplevel,unused-import
