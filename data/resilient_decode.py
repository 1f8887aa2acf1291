"""Parallel decoding that skips records whose read or decode fails, and says exactly which.

tf.data has no try/except: a corrupt JPEG raises inside the map and ends the epoch. Here every
record carries its source (a file of records, or the list of image files) and its position in that
source; failed records are dropped by `ignore_errors`, and a gap in the positions of a source tells
which ones were lost. An end marker after each source (whose position is the source's record count)
catches failures at its tail. Each gap is handed to a Python callback (`on_skipped`) that names the
records and counts them in `data.bad_records` (or raises under strict mode). The callback only runs
when something was skipped, so the cost on good data is one cheap `scan` per element.

Order inside a source must be kept up to the gap check: the decode map is deterministic (with
uniform per-image cost this costs little); sources may still be interleaved in any order.
"""
from typing import Callable, Dict

import numpy as np
import tensorflow as tf

SOURCE = "_source"   # int32: which source (shard file) the record came from
POS = "_pos"         # int64: its position in that source, 0, 1, ...
END = "_end"         # bool: the end marker of a source (no record; POS = the source's length)
_MARKS = (SOURCE, POS, END)


def _zeros(spec: tf.TensorSpec) -> tf.Tensor:
  shape = [0 if d is None else d for d in spec.shape.as_list()]
  if spec.dtype == tf.string:
    return tf.fill(shape, tf.constant("", tf.string))
  if spec.dtype == tf.bool:
    return tf.fill(shape, False)
  return tf.zeros(shape, spec.dtype)


def _not_end(e):
  return e, False


def with_positions(ds: tf.data.Dataset, source) -> tf.data.Dataset:
  """Numbers the (dict) records of one source 0, 1, ... and appends the source's end marker."""
  end = tf.data.Dataset.from_tensors(({k: _zeros(s) for k, s in ds.element_spec.items()}, True))
  flagged = ds.map(_not_end).concatenate(end)

  def mark(pos, e_end):
    e, is_end = e_end
    e = dict(e)
    e.update({SOURCE: tf.cast(source, tf.int32), POS: pos, END: is_end})
    return e

  return flagged.enumerate().map(mark)


def decode_skipping_bad(ds: tf.data.Dataset, decode_fn: Callable[[Dict], Dict], *,
                        num_sources: int,
                        on_skipped: Callable[[int, int, int], None],
                        num_parallel_calls: int = tf.data.AUTOTUNE,
                        keep_positions: bool = False) -> tf.data.Dataset:
  """Maps `decode_fn` over records in parallel, dropping (and reporting) the ones that fail.

  Args:
    ds: records from `with_positions` (possibly several sources interleaved).
    decode_fn: payload dict -> output dict; anything it raises makes the record skipped.
    num_sources: number of distinct SOURCE values (sources are 0 .. num_sources - 1).
    on_skipped: Python fn(source, first_position, count) called for each run of skipped records;
      may raise (strict mode), which fails the iteration with its message.
    num_parallel_calls: decode parallelism.
    keep_positions: keep SOURCE and POS in the output (e.g. to name a record in a later check).
  Returns:
    The decoded records in order, without the bookkeeping fields (but see keep_positions).
  """
  def payload(e):
    return {k: v for k, v in e.items() if k not in _MARKS}

  # Traced once; its output signature gives the end marker's placeholder output.
  decode_once = tf.function(decode_fn, autograph=False).get_concrete_function(
      {k: tf.TensorSpec(s.shape, s.dtype) for k, s in payload(ds.element_spec).items()})
  out_spec = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype),
                                   decode_once.structured_outputs)

  def decode(e):
    out = tf.cond(e[END], lambda: {k: _zeros(s) for k, s in out_spec.items()},
                  lambda: decode_once(payload(e)))
    out = dict(out)
    out.update({k: e[k] for k in _MARKS})
    return out

  ds = ds.map(decode, num_parallel_calls=num_parallel_calls, deterministic=True).ignore_errors()

  def find_gap(last, e):  # last: [num_sources] position of the last record that arrived
    prev = tf.gather(last, e[SOURCE])
    last = tf.tensor_scatter_nd_update(last, [[e[SOURCE]]], [e[POS]])
    return last, (e, prev + 1, e[POS] - prev - 1)

  ds = ds.scan(tf.fill([num_sources], tf.constant(-1, tf.int64)), find_gap)

  def callback(source, first, count):
    on_skipped(int(source), int(first), int(count))
    return np.int64(0)

  def report(e, first, count):
    done = tf.cond(count > 0,
                   lambda: tf.py_function(callback, [e[SOURCE], first, count], tf.int64),
                   lambda: tf.constant(0, tf.int64))
    with tf.control_dependencies([done]):
      is_end = tf.identity(e[END])
    out = payload(e)
    if keep_positions:
      out.update({SOURCE: e[SOURCE], POS: e[POS]})
    out[END] = is_end
    return out

  ds = ds.map(report).filter(lambda e: tf.logical_not(e[END]))
  return ds.map(lambda e: {k: v for k, v in e.items() if k != END})
