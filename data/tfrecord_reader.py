"""Parallel reading and decoding of TFRecord shards that survives corrupt records and shards.

Each shard's records are tagged with the shard's index by a zip (no per-record function) and
followed by an end marker; shards are interleaved and decoded by a parallel map. Records whose
decode fails are dropped (`ignore_errors`); a damaged shard makes TFRecordDataset stop early.
Both are caught by one cheap check per shard: the bytes of its records that came out, plus 16
framing bytes each, must add up to the file size when its end marker arrives. Only when they do
not (rare) is the shard read again in Python, record by record, to name exactly which records
failed to decode and where the file is damaged, in `data.bad_records` (or to fail the run under
strict mode). Given the number of records each file should hold (a TFDS split's shard lengths),
an intact file with another count is reported as a damaged shard too.
The comparison itself runs in Python at each end marker (once per shard and epoch),
so records pay only for adding their bytes. Checks of decoded values (e.g. a label's range) are computed in the decode map and
fail the run, naming the shard, when one does not hold.

Per good record this costs, besides reading and decoding: a zip step, one scan step (adding its
bytes, and a branch into Python taken only at end markers and failed checks) and a
short-circuited filter and map (no function runs) that drop the end markers.

Files are split between input pipelines when there are at least as many files as pipelines;
otherwise every pipeline reads every file and keeps every n-th record of each, so the pipelines
always partition the records.
"""
import concurrent.futures
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from data import bad_records
from data.resilient_decode import call_if, drop_flag, flag, ordered_decodes_in_flight
from data.sharding import Shard

_FRAMING_BYTES = 16  # uint64 length, uint32 length crc, uint32 data crc
Decoded = Dict[str, tf.Tensor]
# decoded -> (holds: bool scalar, value: int64 scalar to name in the error when it does not)
Check = Callable[[Decoded], Tuple[tf.Tensor, tf.Tensor]]


class RecordCheckError(ValueError):
  """A decoded record fails a check (e.g. a label out of range): the data is wrong, not damaged."""


def file_sizes(paths: List[str]) -> List[int]:
  with concurrent.futures.ThreadPoolExecutor(16) as pool:
    return list(pool.map(lambda p: tf.io.gfile.stat(p).length, paths))


def read_and_decode(files: List[str], decode_fn: Callable[[tf.Tensor], Decoded], *,
                    tiny_record: bytes, tag: str, shard: Shard = Shard(), shuffle: bool = False,
                    seed: Optional[int] = None, strict: bool = False,
                    deterministic: Optional[bool] = None, check: Optional[Check] = None,
                    check_error: str = "{value} in {where}", cycle_length: int = 16,
                    parallel_reads: Optional[int] = None,
                    num_parallel_calls: Optional[int] = None,
                    expected_records: Optional[Dict[str, int]] = None,
                    expected_from: str = "its index") -> tf.data.Dataset:
  """Decoded records of this pipeline's part of `files`.

  Args:
    files: the shards (all pipelines').
    decode_fn: serialized record -> dict of tensors; a record it fails on is skipped and named
      ('<file> record <k>') in data.bad_records under `tag`.
    tiny_record: a small record decode_fn decodes quickly and without fail (and that passes
      `check`); it stands in for end markers and other pipelines' records, so that no
      per-record branch is needed.
    tag: dataset name for the skipped-record counts, e.g. 'imagenet/train'.
    shard: this input pipeline's part.
    shuffle: shuffle the order of the files every epoch (seeded by `seed`).
    seed: see shuffle.
    strict: fail at the first bad record or shard instead.
    deterministic: interleave order fixed when reads are parallel (None: tf.data's option).
    check: optional fn(decoded) -> (holds, value), run in the decode map; a record for which it
      does not hold fails the iteration (in any mode) with `check_error` formatted with the value
      and the record's place ('<file>, record at byte <offset>').
    check_error: see check.
    cycle_length: shards read at the same time.
    parallel_reads: shards read in parallel threads (None: one thread reads the cycle in turn,
      the cheapest for local files; tf.data.AUTOTUNE or a number for remote storage).
    num_parallel_calls: decodes in flight (default `resilient_decode.ordered_decodes_in_flight()`:
      the decode map keeps its order, since end markers must follow their records).
    expected_records: optional {file: number of records it holds} (e.g. a TFDS split's shard
      lengths); a file whose bytes add up but that holds another number of records (an intact
      but short or foreign copy) is reported as a damaged shard, "holds <k> records where
      <expected_from> says <m>". Costs one more addition per record.
    expected_from: see expected_records.
  """
  files = sorted(files)
  if len(files) >= shard.num_shards:
    mine, inner = list(shard.take(files)), Shard()
  else:
    mine, inner = files, shard
  sizes = file_sizes(mine)
  n, i = inner.num_shards, inner.index
  expected = None if expected_records is None else [expected_records[f] for f in mine]

  def recheck(source, consumed):
    """Python: reads the shard again to name what was lost (only for shards that came short)."""
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
      return
    if not failures:  # the bytes did not add up, yet every record decodes: say so
      bad_records.record(tag, bad_records.CORRUPT_SHARD, path, strict=strict,
                         detail=f"{consumed} of {sizes[source]} bytes accounted for")

  def report(source, totals, records, nbytes, is_end, failed, value):
    """Python, only at a shard's end marker (once per shard and epoch) or a failed check."""
    source, total = int(source), int(totals[int(source)])
    if bool(failed):
      failed_check.add(source)  # its bytes are not counted: a prefetch may still reach the end
      raise RecordCheckError(check_error.format(
          value=int(value), where=f"{mine[source]}, record at byte {total - int(nbytes[0])}"))
    if not bool(is_end) or source in failed_check:
      return np.int64(0)
    if total != sizes[source]:
      recheck(source, total)
    elif expected is not None and int(records[source]) != expected[source]:
      bad_records.record(tag, bad_records.CORRUPT_SHARD, mine[source], strict=strict,
                         detail=f"holds {int(records[source])} records where {expected_from} "
                                f"says {expected[source]}")
    return np.int64(0)

  failed_check = set()
  tiny = tf.constant(tiny_record)

  def read_one(source, path):  # ((source, is_end)[, position in the shard]), record
    tags = tf.data.Dataset.from_tensors((source, False)).repeat()
    end = (source, True)
    if n > 1:
      tags, end = tf.data.Dataset.zip((tags, tf.data.Dataset.range(2**62))), (end, np.int64(-1))
    return tf.data.Dataset.zip((tags, tf.data.TFRecordDataset(path).ignore_errors())).concatenate(
        tf.data.Dataset.from_tensors((end, tiny)))

  def decode(tags, record):
    if n > 1:  # another pipeline's record: counted, but only the tiny record is decoded
      (source, is_end), position = tags
      keep = tf.logical_and(tf.logical_not(is_end), tf.equal(position % n, i))
      record_bytes, record = tf.strings.length(record), tf.where(keep, record, tiny)
    else:
      source, is_end = tags
      keep, record_bytes = tf.logical_not(is_end), tf.strings.length(record)
    out = decode_fn(record)
    if check is None:
      failed, value = tf.constant(False), tf.constant(0, tf.int64)
    else:
      holds, value = check(out)
      failed, value = tf.logical_and(keep, tf.logical_not(holds)), tf.cast(value, tf.int64)
    nbytes = tf.where(is_end, tf.constant(0, tf.int64),
                      tf.cast(record_bytes, tf.int64) + _FRAMING_BYTES)
    return (source, tf.reshape(source, [1, 1]), tf.reshape(nbytes, [1]), is_end, failed,
            tf.logical_or(is_end, failed), value, keep, out)

  def count(state, element):  # state: [sources] bytes accounted so far, [sources] records
    (totals, records), (source, index, nbytes, is_end, failed, alarm, value, keep, out) = (
        state, element)
    totals = tf.tensor_scatter_nd_add(totals, index, nbytes)
    if expected is not None:
      records = tf.tensor_scatter_nd_add(
          records, index, tf.reshape(tf.cast(tf.logical_not(is_end), tf.int64), [1]))
    done = call_if(alarm, report, [source, totals, records, nbytes, is_end, failed, value])
    with tf.control_dependencies([done]):
      return (totals, records), (tf.identity(keep), out)

  files_ds = tf.data.Dataset.from_tensor_slices((np.arange(len(mine), dtype=np.int32), mine))
  if shuffle:
    files_ds = files_ds.shuffle(len(mine), seed=seed, reshuffle_each_iteration=True)
  ds = files_ds.interleave(read_one, cycle_length=min(cycle_length, len(mine)), block_length=1,
                           num_parallel_calls=parallel_reads,
                           deterministic=deterministic if parallel_reads else None)
  # Order kept from here to the byte count, so a shard's end marker comes after its records.
  if num_parallel_calls is None:
    num_parallel_calls = ordered_decodes_in_flight()
  ds = ds.map(decode, num_parallel_calls=num_parallel_calls, deterministic=True).ignore_errors()
  ds = ds.scan((tf.zeros([len(mine)], tf.int64), tf.zeros([len(mine)], tf.int64)), count)
  return ds.filter(flag).map(drop_flag)  # drop end markers and other pipelines' records
