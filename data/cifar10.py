"""CIFAR-10 (LadaGAN's 32 px benchmark): the official binary files, or a prepared TFDS cifar10.

Binary version (cifar-10-binary.tar.gz, read without pickle): data_batch_1.bin ... data_batch_5.bin
(train, 50,000) and test_batch.bin (test, 10,000); each record is 3073 bytes: 1 label byte (0..9)
then 1024 red, 1024 green, 1024 blue bytes, each plane row-major 32x32. A file whose size is not a
multiple of 3073 fails at start; a label byte above 9 fails with the file and record. A record
cannot be corrupt on its own (no encoding: every byte is a valid pixel), so nothing is skipped here
and `strict` has nothing to act on; damage that changes a file's length is the size check's.
TFDS version: the split's TFRecord files are read by data.tfrecord_reader, as ImageNet's are, not
by tfds.as_dataset: a corrupt or truncated PNG is skipped, counted and named `<tfrecord file>
record <i>` (data.bad_records), a damaged file (bad checksum, truncated, a record count other
than dataset_info.json's) is read up to the damage and reported, both or fail the run with
strict=True; a label outside 0..9 is an error naming the file and the record's byte offset.
The 60k decoded images fit in memory (180 MB as uint8), so they are cached by default.
Elements: images float32 [S, S, 3] in [-1, 1] (resized bilinearly when S != 32), labels int32.
"""
import io
import os
from typing import Optional, Union

from PIL import Image
import tensorflow as tf

from data import image_ops
from data import tfds_source
from data import tfrecord_reader
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


def _tiny_example() -> bytes:
  """A serialized black 32x32 PNG Example, label 0: stands in for end markers and other
  pipelines' records in the TFRecord reader (built with PIL: input_fns may run in a TF1 graph)."""
  buf = io.BytesIO()
  Image.new("RGB", (32, 32)).save(buf, format="PNG")
  return tf.train.Example(features=tf.train.Features(feature={
      "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[buf.getvalue()])),
      "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[0]))})
  ).SerializeToString()


def _decode_example(record: tf.Tensor):
  """A TFDS cifar10 tf.train.Example -> {'image': uint8 [32, 32, 3], 'label': int32}; raises on a
  corrupt or truncated PNG, or one of another size (the reader then skips and names it)."""
  example = tf.io.parse_single_example(record, {
      "image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)})
  image = tf.ensure_shape(tf.io.decode_png(example["image"], channels=3), [32, 32, 3])
  return {"image": image, "label": tf.cast(example["label"], tf.int32)}


def load_tfds(data_dir: str, split: str, image_size: int = 32, *, shard: Shard = Shard(),
              seed: Optional[int] = None, strict: bool = False, shuffle: bool = False,
              cache: Union[bool, str] = True) -> tf.data.Dataset:
  """Prepared TFDS cifar10 -> elements, through the resilient TFRecord reader (module docstring).
  The label check runs on decoded records and fails the run: a bad label is not skipped."""
  builder = tfds_source.open_prepared("cifar10", data_dir, HOW_TO_PREPARE)

  def label_in_range(e):
    return tf.logical_and(e["label"] >= 0, e["label"] < NUM_CLASSES), e["label"]

  ds = tfrecord_reader.read_and_decode(
      tfds_source.split_files(builder, split), _decode_example, tiny_record=_tiny_example(),
      tag=f"cifar10/{split}", shard=shard, shuffle=shuffle, seed=seed, strict=strict,
      deterministic=True if seed is not None else None, check=label_in_range,
      check_error="CIFAR-10 TFDS label out of range 0..9: {value} in {where}",
      expected_records=tfds_source.split_record_counts(builder, split),
      expected_from="dataset_info.json")
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
