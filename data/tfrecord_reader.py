"""Parallel reading of TFRecord shards that survives a corrupt or truncated shard.

A damaged shard makes TFRecordDataset raise DataLossError, which ends the epoch; skipping the
error silently loses the rest of the shard. Here each shard's records are counted in bytes
(each record takes its length + 16 framing bytes), and a shard that ends short of its file size is
reported in `data.bad_records` (and fails the run under strict mode) with what was lost.

Shards are read with a parallel interleave. Files are split between input pipelines when there
are at least as many files as pipelines; otherwise every pipeline reads every file and keeps every
n-th record of each, so the pipelines always partition the records.
"""
import concurrent.futures
from typing import List, Optional, Tuple

import numpy as np
import tensorflow as tf

from data import bad_records
from data import resilient_decode
from data.sharding import Shard

_FRAMING_BYTES = 16  # uint64 length, uint32 length crc, uint32 data crc


def file_sizes(paths: List[str]) -> List[int]:
  with concurrent.futures.ThreadPoolExecutor(16) as pool:
    return list(pool.map(lambda p: tf.io.gfile.stat(p).length, paths))


def read_shards(files: List[str], *, tag: str, shard: Shard = Shard(), shuffle: bool = False,
                seed: Optional[int] = None, strict: bool = False, deterministic: Optional[bool] = None,
                cycle_length: int = 16) -> Tuple[tf.data.Dataset, List[str], Shard]:
  """Records of this pipeline's part of `files`, numbered per file for `resilient_decode`.

  Returns:
    (dataset of {'record': bytes} + position fields, the files in source order, the record-level
    shard applied inside each file) -- record p of source s is record
    p * inner.num_shards + inner.index of files[s].
  """
  files = sorted(files)
  if len(files) >= shard.num_shards:
    mine, inner = list(shard.take(files)), Shard()
  else:
    mine, inner = files, shard
  sizes = file_sizes(mine)

  def on_short_shard(source, consumed):
    source, consumed = int(source), int(consumed)
    bad_records.record(tag, bad_records.CORRUPT_SHARD, mine[source], strict=strict,
                       detail=f"readable up to byte {consumed} of {sizes[source]}; "
                              f"the records after that were skipped")
    return np.int64(0)

  def read_one(source, path, size):
    records = tf.data.TFRecordDataset(path).ignore_errors()
    flagged = records.map(lambda r: (r, False)).concatenate(
        tf.data.Dataset.from_tensors((tf.constant(""), True)))

    def count_bytes(total, r_end):
      r, is_end = r_end
      total += tf.where(is_end, tf.constant(0, tf.int64),
                        tf.cast(tf.strings.length(r), tf.int64) + _FRAMING_BYTES)
      return total, (r, is_end, total)

    def check(r, is_end, total):
      short = tf.logical_and(is_end, tf.not_equal(total, size))
      done = tf.cond(short, lambda: tf.py_function(on_short_shard, [source, total], tf.int64),
                     lambda: tf.constant(0, tf.int64))
      with tf.control_dependencies([done]):
        return {"record": tf.identity(r), "_keep": tf.logical_not(is_end)}

    records = (flagged.scan(tf.constant(0, tf.int64), count_bytes).map(check)
               .filter(lambda e: e["_keep"]).map(lambda e: {"record": e["record"]}))
    return resilient_decode.with_positions(inner.apply(records), source)

  files_ds = tf.data.Dataset.from_tensor_slices(
      (np.arange(len(mine), dtype=np.int32), mine, np.array(sizes, np.int64)))
  if shuffle:
    files_ds = files_ds.shuffle(len(mine), seed=seed, reshuffle_each_iteration=True)
  ds = files_ds.interleave(read_one, cycle_length=min(cycle_length, len(mine)), block_length=1,
                           num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
  return ds, mine, inner
