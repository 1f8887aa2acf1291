"""Batching for training and evaluation: shuffle, repeat, batch, prefetch, deterministic by seed.

The training shuffle buffer is sized in bytes, not elements: it holds as many decoded elements as
fit in `shuffle_buffer_mb` MiB (default 512), and at most 10,000 (the former fixed count, so small
images are shuffled as before). 10,000 decoded 128 px images would take 1.97 GB; 512 MiB holds
2,730 of them (196,612 bytes each with the label). The budget is a --data_options key that every
dataset accepts (`data.load(..., shuffle_buffer_mb=...)` attaches it to the dataset it returns,
where `batch_pipeline` finds it); the size chosen is logged when the pipeline is built.
"""
from typing import Optional, Tuple

from absl import logging
import tensorflow as tf

DEFAULT_SHUFFLE_BUFFER_MB = 512
MAX_SHUFFLE_ELEMENTS = 10_000
MIB = 2**20
_BUDGET_ATTRIBUTE = "_data_shuffle_buffer_mb"


def with_shuffle_buffer_mb(ds: tf.data.Dataset, shuffle_buffer_mb: float) -> tf.data.Dataset:
  """Attaches a shuffle-memory budget (MiB) to an element dataset for `batch_pipeline`.

  The budget travels on this dataset object only: a dataset derived from it (ds.map(...)) falls
  back to the default unless the budget is attached again or passed to batch_pipeline.
  """
  if isinstance(shuffle_buffer_mb, bool) or not isinstance(shuffle_buffer_mb, (int, float)) \
      or not shuffle_buffer_mb > 0:
    raise ValueError(f"shuffle_buffer_mb must be a positive number of MiB, got "
                     f"{shuffle_buffer_mb!r}")
  setattr(ds, _BUDGET_ATTRIBUTE, float(shuffle_buffer_mb))
  return ds


def shuffle_buffer_mb_of(ds: tf.data.Dataset) -> float:
  """The budget attached by `with_shuffle_buffer_mb`, else the default (512 MiB)."""
  return getattr(ds, _BUDGET_ATTRIBUTE, float(DEFAULT_SHUFFLE_BUFFER_MB))


def element_bytes(element_spec) -> Tuple[int, bool]:
  """(bytes of one element, exact?): the numeric tensors of static shape, summed. Strings and
  tensors of unknown shape are not counted (exact=False: the size is a lower bound)."""
  total, exact = 0, True
  for spec in tf.nest.flatten(element_spec):
    if not isinstance(spec, tf.TensorSpec) or spec.dtype == tf.string \
        or not spec.shape.is_fully_defined():
      exact = False
      continue
    total += spec.shape.num_elements() * spec.dtype.size
  return total, exact


def shuffle_buffer_size(element_spec, shuffle_buffer_mb: float,
                        max_elements: int = MAX_SHUFFLE_ELEMENTS) -> int:
  """Elements the training shuffle buffer holds: as many as fit in the budget, at least 1 and at
  most max_elements."""
  nbytes, _ = element_bytes(element_spec)
  if nbytes == 0:
    return max_elements
  return max(1, min(max_elements, int(shuffle_buffer_mb * MIB) // nbytes))


def batch_pipeline(ds: tf.data.Dataset, batch_size: int, *, training: bool,
                   seed: Optional[int] = None, shuffle_buffer: int = MAX_SHUFFLE_ELEMENTS,
                   shuffle_buffer_mb: Optional[float] = None,
                   drop_remainder: bool = True) -> tf.data.Dataset:
  """Turns an element dataset into batches.

  Training batches are shuffled (reshuffled every epoch), repeated forever and have a fixed batch
  dimension (drop_remainder) so TPU and compiled steps see static shapes. With a seed the order is
  the same on every run. Evaluation batches keep the file order and are not repeated.

  Args:
    shuffle_buffer: the most elements the training shuffle buffer holds.
    shuffle_buffer_mb: its memory budget in MiB; None: the one `data.load` attached to `ds`
      (--data_options=shuffle_buffer_mb=...), else 512. The size chosen is logged.
  """
  if batch_size <= 0:
    raise ValueError(f"batch_size must be positive, got {batch_size}")
  if training:
    budget = shuffle_buffer_mb_of(ds) if shuffle_buffer_mb is None else shuffle_buffer_mb
    size = shuffle_buffer_size(ds.element_spec, budget, shuffle_buffer)
    nbytes, exact = element_bytes(ds.element_spec)
    logging.info("data: training shuffle buffer of %d elements x %s%d bytes = %.1f MiB "
                 "(shuffle_buffer_mb=%g, at most %d elements)", size, "" if exact else ">= ",
                 nbytes, size * nbytes / MIB, budget, shuffle_buffer)
    ds = ds.shuffle(size, seed=seed, reshuffle_each_iteration=True).repeat()
  ds = ds.batch(batch_size, drop_remainder=drop_remainder or training)
  options = tf.data.Options()
  options.deterministic = seed is not None or not training
  ds = ds.with_options(options)
  return ds.prefetch(tf.data.AUTOTUNE)
