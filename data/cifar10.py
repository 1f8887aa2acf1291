"""CIFAR-10 (LadaGAN's 32 px benchmark): the official binary files, or a prepared TFDS cifar10.

Binary version (cifar-10-binary.tar.gz, read without pickle): data_batch_1.bin ... data_batch_5.bin
(train, 50,000) and test_batch.bin (test, 10,000); each record is 3073 bytes: 1 label byte (0..9)
then 1024 red, 1024 green, 1024 blue bytes, each plane row-major 32x32. A file whose size is not a
multiple of 3073 fails at start; a label byte above 9 fails with the file and record. A record
cannot be corrupt on its own (no encoding: every byte is a valid pixel), so nothing is skipped here
and `strict` has nothing to act on; damage that changes a file's length is the size check's.
TFDS version: the PNG images are decoded here, not by TFDS, so a corrupt or truncated one is
skipped, counted and named (data.bad_records; the name is `<tfrecord file> record <i>` for a split
in one file, as TFDS writes cifar10), or fails the run with strict=True; a label outside 0..9 is
an error naming the record. A damaged TFRecord file (bad checksum, truncated, record count not
that of dataset_info.json) fails at start, naming the file: it is read through once to check.
The 60k decoded images fit in memory (180 MB as uint8), so they are cached by default.
Elements: images float32 [S, S, 3] in [-1, 1] (resized bilinearly when S != 32), labels int32.
"""
import os
from typing import Optional, Union

import tensorflow as tf

from data import bad_records
from data import image_ops
from data import resilient_decode
from data import tfds_source
from data.layout import DataLayoutError, require_file
from data.registry import DatasetSpec, register
from data.sharding import Shard

NUM_CLASSES = 10
RECORD_BYTES = 1 + 32 * 32 * 3
FILES = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}
LAYOUT = """--data_dir holds either
  the CIFAR-10 binary version: <data_dir>/data_batch_1.bin ... data_batch_5.bin, test_batch.bin
    (or the same inside <data_dir>/cifar-10-batches-bin/), or
  a prepared TFDS cifar10: <data_dir>/cifar10/<version>/dataset_info.json + tfrecords."""
HOW_TO_PREPARE = """Nothing is downloaded at run time. Either extract
https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz into <data_dir>, or run
`tfds build cifar10 --data_dir=<data_dir>` on a machine with internet access and copy the directory."""


def _binary_dir(data_dir: str) -> Optional[str]:
  for d in (data_dir, os.path.join(data_dir, "cifar-10-batches-bin")):
    if os.path.isfile(os.path.join(d, "test_batch.bin")) or os.path.isfile(
        os.path.join(d, "data_batch_1.bin")):
      return d
  return None


def _finish(image: tf.Tensor, label: tf.Tensor, image_size: int):
  image = tf.cast(image, tf.float32)
  if image_size != 32:
    image = tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=True)
  return {"images": image_ops.to_signed_unit(image), "labels": label}


def _checked_label(label: tf.Tensor, *where) -> tf.Tensor:
  check = tf.debugging.Assert(tf.logical_and(label >= 0, label < NUM_CLASSES),
                              ["CIFAR-10 label out of range 0..9:", label, "in", *where])
  with tf.control_dependencies([check]):
    return tf.identity(label)


def load_binary(data_dir: str, split: str, image_size: int = 32, *, shard: Shard = Shard(),
                seed: Optional[int] = None, shuffle: bool = False,
                cache: Union[bool, str] = True) -> tf.data.Dataset:
  """The official binary batches -> elements (every worker reads every file and keeps its
  every n-th record of each, so shards partition the data)."""
  binary_dir = _binary_dir(data_dir) or data_dir
  paths = [require_file(os.path.join(binary_dir, name), LAYOUT) for name in FILES[split]]
  for path in paths:
    size = os.path.getsize(path)
    if size == 0 or size % RECORD_BYTES:
      raise DataLayoutError(f"{path} has {size} bytes, not a positive multiple of {RECORD_BYTES}"
                            f" (1 label byte + 3072 pixel bytes per image)\n{LAYOUT}")

  def read_file(path):
    records = shard.apply(tf.data.FixedLengthRecordDataset(path, RECORD_BYTES)).enumerate()

    def parse(pos, record):
      raw = tf.io.decode_raw(record, tf.uint8)                                  # [3073]
      image = tf.transpose(tf.reshape(raw[1:], [3, 32, 32]), [1, 2, 0])        # planes -> HWC
      label = _checked_label(tf.cast(raw[0], tf.int32), path, "record",
                             pos * shard.num_shards + shard.index)
      return {"image": image, "label": label}
    return records.map(parse)

  files = tf.data.Dataset.from_tensor_slices(paths)
  if shuffle:
    files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
  ds = files.interleave(read_file, cycle_length=len(paths), block_length=1,
                        num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=True if seed is not None or not shuffle else None)
  if cache:
    ds = ds.cache("" if cache is True else cache)
  return ds.map(lambda e: _finish(e["image"], e["label"], image_size),
                num_parallel_calls=tf.data.AUTOTUNE)


def _decode_png(record):
  """{'image': PNG bytes, ...} -> the same with image uint8 [32, 32, 3] (raises on a corrupt or
  truncated PNG, or one of another size)."""
  return dict(record, image=tf.ensure_shape(tf.io.decode_png(record["image"], channels=3),
                                            [32, 32, 3]))


def _tfds_record_names(builder, split: str, shard: Shard, length: Optional[int]):
  """(prefix, step, offset, suffix): position p in this pipeline's read is the record named
  prefix + str(p * step + offset) + suffix. Exact (`<file> record <i>`) when the split is one
  file, as TFDS writes cifar10, and the read is whole or every n-th record of it (known length);
  otherwise the position in this pipeline's read order (with several files shuffled each epoch
  and cache=False, a bad record met again at another position is counted again)."""
  split_info = builder.info.splits[split]
  if split_info.num_shards == 1 and length is not None:
    return f"{split_info.filepaths[0]} record ", shard.num_shards, shard.index, ""
  return (f"tfds cifar10 {split} example #", 1, 0,
          f" of this input pipeline's read order ({split_info.num_shards} files)")


def check_tfds_files(split_info) -> None:
  """Reads a prepared split's TFRecord files once (0.2 s per 100 MB), checking every record's
  framing and checksums and each file's record count against dataset_info.json, so that a
  damaged or truncated file fails here, before training, naming the file. Needed because TFDS's
  reader under the skipping decode's ignore_errors retries such a file's error forever (a hang)
  instead of stopping, and a short file would otherwise be reported as missing images.

  Raises:
    DataLayoutError: the file, how far it was readable and what is wrong.
  """
  for path, expected in zip(split_info.filepaths, split_info.shard_lengths):
    path, count = os.fspath(path), 0
    try:
      for _ in tf.compat.v1.io.tf_record_iterator(path):
        count += 1
    except tf.errors.DataLossError as e:
      raise DataLayoutError(f"{path} is damaged after its first {count} records ({e.message}): "
                            f"copy it again or rebuild the dataset\n{HOW_TO_PREPARE}") from e
    if count != expected:
      raise DataLayoutError(f"{path} holds {count} records where dataset_info.json says "
                            f"{expected}: copy it again or rebuild the dataset\n{HOW_TO_PREPARE}")


def load_tfds(data_dir: str, split: str, image_size: int = 32, *, shard: Shard = Shard(),
              seed: Optional[int] = None, strict: bool = False, shuffle: bool = False,
              cache: Union[bool, str] = True) -> tf.data.Dataset:
  """Prepared TFDS cifar10 -> elements; the PNGs stay encoded until our decode, which skips and
  counts a corrupt one (or raises under strict) instead of failing mid-epoch."""
  builder = tfds_source.open_prepared("cifar10", data_dir, HOW_TO_PREPARE)
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  ds, length = tfds_source.as_dataset(builder, split, shard=shard, shuffle=shuffle, seed=seed,
                                      decoders={"image": tfds.decode.SkipDecoding()})
  check_tfds_files(builder.info.splits[split])
  prefix, step, offset, suffix = _tfds_record_names(builder, split, shard, length)
  tag = f"cifar10/{split}"

  def on_skipped(first, count):
    for pos in range(first, first + count):
      bad_records.record(tag, bad_records.CORRUPT_IMAGE, f"{prefix}{pos * step + offset}{suffix}",
                         strict=strict)

  def check_label(e):
    name = tf.strings.join([prefix, tf.strings.as_string(e["pos"] * step + offset), suffix])
    return {"image": e["image"], "label": _checked_label(e["label"], name)}

  def payload(e):
    return {"image": e["image"], "label": tf.cast(e["label"], tf.int32)}

  if length is not None:  # one stream of known length: the cheaper form
    ds = ds.enumerate().map(lambda pos, e: dict(payload(e), pos=pos))
    ds = resilient_decode.decode_list_skipping_bad(ds, _decode_png, length=length,
                                                   on_skipped=on_skipped)
  else:                   # whole files per pipeline: length unknown, ends with an end marker
    ds = resilient_decode.with_positions(
        ds.map(lambda e: dict(payload(e), pos=tf.constant(-1, tf.int64))))
    ds = resilient_decode.decode_skipping_bad(ds, _decode_png, on_skipped=on_skipped,
                                              validate=lambda e, pos: dict(e, pos=pos))
  # After the skipping, so a bad label fails the run instead of being skipped as a bad image.
  ds = ds.map(check_label)
  if cache:
    ds = ds.cache("" if cache is True else cache)
  return ds.map(lambda e: _finish(e["image"], e["label"], image_size),
                num_parallel_calls=tf.data.AUTOTUNE)


def load_cifar10(data_dir=None, split="train", image_size=32, shard: Shard = Shard(),
                 seed: Optional[int] = None, strict: bool = False, source: str = "auto",
                 shuffle: Optional[bool] = None, cache: Union[bool, str] = True):
  """Registry loader. Options: source ('auto'|'binary'|'tfds'), shuffle (file order; default
  split == 'train'), cache (True: memory, a path prefix: file, False: off).
  strict (--strict_data) acts on the TFDS source: a corrupt PNG fails the run instead of being
  skipped and counted. The binary files have no per-record encoding that can be corrupt (see the
  module docstring), so they take no strict option; their size check runs in both modes."""
  if not os.path.isdir(data_dir):
    raise DataLayoutError(f"missing directory {data_dir}\n{LAYOUT}\n{HOW_TO_PREPARE}")
  if shuffle is None:
    shuffle = split == "train"
  if source == "auto":
    source = "binary" if _binary_dir(data_dir) else "tfds"
  kwargs = dict(shard=shard, seed=seed, shuffle=shuffle, cache=cache)
  if source == "binary":
    return load_binary(data_dir, split, image_size, **kwargs)
  if source == "tfds":
    return load_tfds(data_dir, split, image_size, strict=strict, **kwargs)
  raise ValueError(f"source must be 'auto', 'binary' or 'tfds', got {source!r}")


SPEC = register(DatasetSpec(
    name="cifar10", loader=load_cifar10, needs_data_dir=True, num_classes=NUM_CLASSES,
    default_image_size=32, splits=("train", "test"),
    description=f"CIFAR-10, 32 px. {LAYOUT}"))
