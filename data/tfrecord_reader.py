"""Parallel reading and decoding of TFRecord shards that survives corrupt records and shards.

Shards are read by a parallel interleave, each followed by an end marker, and decoded by a
parallel map. Records whose decode fails are dropped (`ignore_errors`); a damaged shard makes
TFRecordDataset stop early. Both are caught by one cheap check per shard: the bytes of its
records that came out, plus 16 framing bytes each, must add up to the file size when its end
marker arrives. Only when they do not (rare) is the shard read again in Python, record by record,
to name exactly which records failed to decode and where the file is damaged, in
`data.bad_records` (or to fail the run under strict mode). Good records cost one scan step and one
filter step on top of reading and decoding.

Files are split between input pipelines when there are at least as many files as pipelines;
otherwise every pipeline reads every file and keeps every n-th record of each, so the pipelines
always partition the records.
"""
import concurrent.futures
from typing import Callable, Dict, List, Optional

import numpy as np
import tensorflow as tf

from data import bad_records
from data.resilient_decode import drop_flag, not_flag
from data.sharding import Shard

_FRAMING_BYTES = 16  # uint64 length, uint32 length crc, uint32 data crc
Decoded = Dict[str, tf.Tensor]


def file_sizes(paths: List[str]) -> List[int]:
  with concurrent.futures.ThreadPoolExecutor(16) as pool:
    return list(pool.map(lambda p: tf.io.gfile.stat(p).length, paths))


def read_and_decode(files: List[str], decode_fn: Callable[[tf.Tensor], Decoded], *,
                    tiny_record: bytes, tag: str, shard: Shard = Shard(), shuffle: bool = False, seed: Optional[int] = None,
                    strict: bool = False, deterministic: Optional[bool] = None,
                    validate: Optional[Callable[[Decoded, tf.Tensor, tf.Tensor], Decoded]] = None,
                    cycle_length: int = 16) -> tf.data.Dataset:
  """Decoded records of this pipeline's part of `files`.

  Args:
    files: the shards (all pipelines').
    decode_fn: serialized record -> dict of tensors; a record it fails on is skipped and named
      ('<file> record <k>') in data.bad_records under `tag`.
    tiny_record: a small record decode_fn decodes quickly and without fail; it stands in for end
      markers and other pipelines' records, so that no per-record branch is needed.
    tag: dataset name for the skipped-record counts, e.g. 'imagenet/train'.
    shard: this input pipeline's part.
    shuffle: shuffle the order of the files every epoch (seeded by `seed`).
    seed: see shuffle.
    strict: fail at the first bad record or shard instead.
    deterministic: interleave order fixed (None: tf.data's option decides).
    validate: optional fn(decoded, file path, ignore) -> decoded (same structure), run after the
      skipping; what it raises fails the iteration (e.g. a bad label). It must let elements with
      ignore=True (the tiny record's output) pass.
    cycle_length: shards decoded at the same time.
  """
  files = sorted(files)
  if len(files) >= shard.num_shards:
    mine, inner = list(shard.take(files)), Shard()
  else:
    mine, inner = files, shard
  sizes = file_sizes(mine)
  n, i = inner.num_shards, inner.index

  def recheck(source, consumed):
    """Python: reads the shard again to name what was lost (only for shards that came short)."""
    source, consumed = int(source), int(consumed)
    path, index, failures = mine[source], -1, 0
    try:
      for index, record in enumerate(tf.data.TFRecordDataset(path)):
        if index % n != i:
          continue
        try:
          decode_fn(record)
        except (tf.errors.OpError, ValueError) as e:
          failures += 1
          bad_records.record(tag, bad_records.CORRUPT_IMAGE, f"{path} record {index}",
                             strict=strict, detail=str(e).splitlines()[0][:200])
    except tf.errors.OpError as e:
      bad_records.record(tag, bad_records.CORRUPT_SHARD, path, strict=strict,
                         detail=f"unreadable after record {index} ({str(e).splitlines()[0]}); "
                                f"the rest of the shard was skipped")
      return np.int64(0)
    if not failures:  # the bytes did not add up, yet every record decodes: say so
      bad_records.record(tag, bad_records.CORRUPT_SHARD, path, strict=strict,
                         detail=f"{consumed} of {sizes[source]} bytes accounted for")
    return np.int64(0)

  def read_one(source, path):  # (source, record to decode, its bytes, keep, end)
    records = tf.data.TFRecordDataset(path).ignore_errors()
    if n == 1:
      records = records.map(lambda r: (source, r, tf.strings.length(r), True, False))
    else:  # keep every n-th record; the others are counted but only the tiny record is decoded
      records = records.enumerate().map(
          lambda k, r: (source, tf.where(tf.equal(k % n, i), r, tiny), tf.strings.length(r),
                        tf.equal(k % n, i), False))
    return records.concatenate(tf.data.Dataset.from_tensors((source, tiny, 0, False, True)))

  def decode(source, record, nbytes, keep, is_end):
    return source, tf.cast(nbytes, tf.int64), keep, is_end, decode_fn(record)

  def count(totals, element):  # totals: [sources] bytes accounted so far
    source, nbytes, keep, is_end, out = element
    totals = tf.tensor_scatter_nd_add(
        totals, [[source]], [tf.where(is_end, tf.constant(0, tf.int64), nbytes + _FRAMING_BYTES)])
    total = tf.gather(totals, source)
    short = tf.logical_and(is_end, tf.not_equal(total, tf.gather(sizes_t, source)))
    done = tf.cond(short, lambda: tf.py_function(recheck, [source, total], tf.int64),
                   lambda: tf.constant(0, tf.int64))
    with tf.control_dependencies([done]):
      ignore = tf.logical_or(is_end, tf.logical_not(keep))
    if validate is not None:
      out = validate(out, tf.gather(names, source), ignore)
    return totals, (ignore, out)

  tiny = tf.constant(tiny_record)
  sizes_t, names = tf.constant(sizes, tf.int64), tf.constant(mine)
  files_ds = tf.data.Dataset.from_tensor_slices((np.arange(len(mine), dtype=np.int32), mine))
  if shuffle:
    files_ds = files_ds.shuffle(len(mine), seed=seed, reshuffle_each_iteration=True)
  ds = files_ds.interleave(read_one, cycle_length=min(cycle_length, len(mine)), block_length=1,
                           num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
  # Order kept from here to the byte count, so a shard's end marker comes after its records.
  ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()
  ds = ds.scan(tf.zeros([len(mine)], tf.int64), count)
  return ds.filter(not_flag).map(drop_flag)  # drop the end markers
