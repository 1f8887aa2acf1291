"""Parallel decoding that skips records whose read or decode fails, and says exactly which.

tf.data has no try/except: a corrupt JPEG raises inside the map and ends the epoch. Here every
record carries its position in its source (a file of records, or the list of image files); failed
records are dropped by `ignore_errors`, and a gap in the positions of a source tells which ones
were lost. An end marker per source (position = the source's record count) catches failures at
its tail. Each gap goes to a Python callback (`on_skipped`) that names the records and counts them
in `data.bad_records` (or raises under strict mode); it only runs when something was skipped.

Two forms, both for one source (several sources: one pipeline each, interleaved):
  decode_list_skipping_bad  a source of known length (a list of files, a TFDS split): the end
                            marker is appended after decoding, so good records pay no branch.
  decode_skipping_bad       a source of unknown length (a TFDS stream sharded by files) that
                            ends with its marker (`with_positions`).
(TFRecord shards use a cheaper per-shard byte check instead: see data.tfrecord_reader.)
Order must be kept up to the gap check, so a parallel decode map is deterministic (with uniform
per-image cost this costs little). Per good record the bookkeeping is one enumerate or position
field, one scan and one filter of tiny functions.
"""
import os
from typing import Callable, Dict, Optional

import numpy as np
import tensorflow as tf

POS = "_pos"         # int64: a record's position in its source, 0, 1, ...
END = "_end"         # bool: the end marker of a source (no record; POS = the source's length)
_MARKS = (POS, END)


def _zeros(spec: tf.TensorSpec) -> tf.Tensor:
  shape = [0 if d is None else d for d in spec.shape.as_list()]
  if spec.dtype == tf.string:
    return tf.fill(shape, tf.constant("", tf.string))
  if spec.dtype == tf.bool:
    return tf.fill(shape, False)
  return tf.zeros(shape, spec.dtype)


def _placeholder(element_spec):
  return tf.nest.map_structure(_zeros, element_spec)


def _not_end(e):
  return e, False


def flag(marked, out):
  """Filter predicate on (flag, element) pairs: keeps the flagged ones (short-circuited: no
  function runs per element)."""
  del out
  return marked


def not_flag(flag, out):
  """Filter predicate on (flag, element) pairs: keeps the unflagged ones (drops end markers)."""
  del out
  return tf.logical_not(flag)


def drop_flag(flag, out):
  """Map on (flag, element) pairs: the element alone."""
  del flag
  return out


def with_positions(ds: tf.data.Dataset) -> tf.data.Dataset:
  """Numbers the (dict) records of one source 0, 1, ... and appends the source's end marker."""
  end = tf.data.Dataset.from_tensors((_placeholder(ds.element_spec), True))
  flagged = ds.map(_not_end).concatenate(end)

  def mark(pos, e_end):
    e, is_end = e_end
    e = dict(e)
    e.update({POS: pos, END: is_end})
    return e

  return flagged.enumerate().map(mark)


def ordered_decodes_in_flight() -> int:
  """Parallel calls for a decode map that must keep its order: twice the usable cores.

  An ordered map returns results in input order, so with one call per core (all AUTOTUNE allows)
  one slow image idles the other cores while their finished results wait; twice as many keeps
  them busy (+4-6% images/s for ImageNet on 2 cores in three A/B runs).
  """
  return 2 * len(os.sched_getaffinity(0))


def call_if(condition, callback, args):
  """Runs the Python callback only when condition holds; returns a tensor to depend on."""
  return tf.cond(condition, lambda: tf.py_function(callback, args, tf.int64),
                 lambda: tf.constant(0, tf.int64))


def decode_list_skipping_bad(ds: tf.data.Dataset, decode_fn: Callable, *, length: int,
                             on_skipped: Callable[[int, int, int], None],
                             num_parallel_calls: Optional[int] = None) -> tf.data.Dataset:
  """Decodes the `length` records of `ds` (one source, in order) in parallel, skipping failures.

  Args:
    ds: the records (any structure), exactly `length` of them.
    decode_fn: record -> decoded structure; anything it raises makes the record skipped.
    length: number of records in ds.
    on_skipped: Python fn(first_position, count) per run of skipped records; may raise.
    num_parallel_calls: decodes in flight (default `ordered_decodes_in_flight()`).
  """
  in_flight = num_parallel_calls or ordered_decodes_in_flight()
  decoded = ds.enumerate().map(lambda pos, r: (pos, decode_fn(r)), num_parallel_calls=in_flight,
                               deterministic=True).ignore_errors()
  end = tf.data.Dataset.from_tensors(
      (tf.constant(length, tf.int64), _placeholder(decoded.element_spec[1])))
  def callback(first, count):
    on_skipped(int(first), int(count))
    return np.int64(0)

  def find_gap(last, pos_out):  # last: position of the last record that arrived
    pos, out = pos_out
    done = call_if(pos - last > 1, callback, [last + 1, pos - last - 1])
    with tf.control_dependencies([done]):
      return pos, (tf.identity(pos) < length, out)

  ds = decoded.concatenate(end).scan(tf.constant(-1, tf.int64), find_gap)
  return ds.take_while(flag).map(drop_flag)


def decode_skipping_bad(ds: tf.data.Dataset, decode_fn: Callable[[Dict], Dict], *,
                        on_skipped: Callable[[int, int], None],
                        num_parallel_calls: Optional[int] = tf.data.AUTOTUNE,
                        validate: Optional[Callable[[Dict, tf.Tensor], Dict]] = None,
                        source: Optional[tf.Tensor] = None) -> tf.data.Dataset:
  """Decodes one source's records (from `with_positions`), dropping and reporting failures.

  Several sources are handled by running this per source, e.g. inside a parallel interleave over
  files (the cheapest arrangement: no state is shared between sources).

  Args:
    ds: one source's records with POS and END fields, ending with its end marker.
    decode_fn: payload dict -> output dict; anything it raises makes the record skipped.
    on_skipped: Python fn(first_position, count) called for each run of skipped records, or
      fn(source, first_position, count) when `source` is given; may raise (strict mode), which
      fails the iteration with its message.
    num_parallel_calls: decode parallelism (None: sequential, e.g. inside an interleave).
    validate: optional fn(decoded, position) -> decoded (same structure), run on each good record
      after the skipping, so what it raises (e.g. a label out of range, naming the record) fails
      the iteration instead of being skipped.
    source: optional int tensor naming the source (e.g. the file index inside an interleave,
      where one traced pipeline serves every file), handed to on_skipped.
  Returns:
    The decoded records in order, without the bookkeeping fields.
  """
  def payload(e):
    return {k: v for k, v in e.items() if k not in _MARKS}

  # Traced once; its output signature gives the end marker's placeholder output.
  decode_once = tf.function(decode_fn, autograph=False).get_concrete_function(
      {k: tf.TensorSpec(s.shape, s.dtype) for k, s in payload(ds.element_spec).items()})
  out_spec = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype),
                                   decode_once.structured_outputs)

  def decode(e):
    out = tf.cond(e[END], lambda: _placeholder(out_spec), lambda: decode_once(payload(e)))
    return e[POS], e[END], out

  ds = ds.map(decode, num_parallel_calls=num_parallel_calls,
              deterministic=True if num_parallel_calls else None).ignore_errors()

  def callback(*args):
    on_skipped(*(int(a) for a in args))
    return np.int64(0)

  def find_gap(last, record):  # last: position of the last record that arrived
    pos, is_end, out = record
    args = [last + 1, pos - last - 1]
    done = call_if(pos - last > 1, callback,
                    args if source is None else [tf.cast(source, tf.int64)] + args)
    with tf.control_dependencies([done]):
      pos = tf.identity(pos)
    if validate is not None:
      out = tf.cond(is_end, lambda: out, lambda: validate(out, pos))
    return pos, (is_end, out)

  ds = ds.scan(tf.constant(-1, tf.int64), find_gap)
  return ds.filter(not_flag).map(drop_flag)
