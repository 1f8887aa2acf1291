"""ImageNet (ILSVRC 2012) for class-conditional SAGAN / YLG at 128 px (and 32, 64, 256).

Two sources, picked by what --data_dir holds (or `source=`):
  tfrecord  shards in the widely used format of `build_imagenet_data.py` / `imagenet_to_gcs.py`:
            <data_dir>/train-00000-of-01024 ..., validation-00000-of-00128 ..., tf.train.Example
            with image/encoded (JPEG) and image/class/label (1..1000; 0 is background there).
            Labels become 0-based; anything outside 1..1000 is an error.
  tfds      a prepared TFDS imagenet2012 (labels already 0-based), read without downloading.
Preprocessing (TF-GAN self_attention_estimator): the largest central square (odd margins rounded
up), bilinear crop_and_resize to the target size, x * 2/255 - 1. The JPEG is decoded with
decode_and_crop_jpeg, so only the square is decoded. A corrupt image or record is skipped, counted
and named (see data.bad_records), or fails the run with strict=True.
Elements: images float32 [S, S, 3] in [-1, 1], labels int32 in [0, 1000).
"""
import glob
import os
from typing import Optional

import tensorflow as tf

from data import bad_records
from data import image_ops
from data import resilient_decode
from data import tfds_source
from data import tfrecord_reader
from data.layout import DataLayoutError
from data.registry import DatasetSpec, register
from data.sharding import Shard

NUM_CLASSES = 1000
SPLITS = ("train", "validation")
LAYOUT = """--data_dir holds either
  ImageNet TFRecord shards: <data_dir>/train-00000-of-01024 ... and validation-00000-of-00128 ...
    (tf.train.Example: image/encoded = JPEG bytes, image/class/label = 1..1000), or
  a prepared TFDS imagenet2012: <data_dir>/imagenet2012/<version>/dataset_info.json + tfrecords."""
HOW_TO_PREPARE = """ImageNet cannot be downloaded automatically. Download ILSVRC2012_img_train.tar and
ILSVRC2012_img_val.tar from https://image-net.org into a directory MANUAL, then run once:
  tfds build imagenet2012 --data_dir=<data_dir> --manual_dir=MANUAL
(or point --data_dir at ImageNet TFRecord shards named train-00000-of-01024 ...)."""


def _shard_files(data_dir: str, split: str):
  return sorted(glob.glob(os.path.join(data_dir, f"{split}-*-of-*")))


def _check_labels(labels: tf.Tensor, raw: tf.Tensor, where) -> tf.Tensor:
  ok = tf.logical_and(labels >= 0, labels < NUM_CLASSES)
  check = tf.debugging.Assert(ok, ["ImageNet label out of range:", raw, "in", *where,
                                   f"(expected 0..{NUM_CLASSES - 1} after conversion)"])
  with tf.control_dependencies([check]):
    return tf.identity(labels)


def decode_square(encoded: tf.Tensor, image_size: int, resize_method: str) -> tf.Tensor:
  """JPEG bytes -> float32 [S, S, 3] in [-1, 1]: central square, resized."""
  square = image_ops.decode_window(encoded, image_ops.central_square)
  return image_ops.to_signed_unit(image_ops.resize_square(square, image_size, resize_method))


def load_tfrecords(data_dir: str, split: str, image_size: int, *, shard: Shard = Shard(),
                   seed: Optional[int] = None, strict: bool = False, shuffle: bool = False,
                   resize_method: str = "tfgan", label_offset: int = 1) -> tf.data.Dataset:
  """ImageNet TFRecord shards -> elements (see module docstring)."""
  files = _shard_files(data_dir, split)
  if not files:
    raise DataLayoutError(f"no {split}-*-of-* TFRecord shards in {data_dir}\n{LAYOUT}")
  tag = f"imagenet/{split}"
  records, sources, inner = tfrecord_reader.read_shards(
      files, tag=tag, shard=shard, shuffle=shuffle, seed=seed, strict=strict,
      deterministic=True if seed is not None else None)

  def decode(e):
    example = tf.io.parse_single_example(e["record"], {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/class/label": tf.io.FixedLenFeature([], tf.int64)})
    return {"images": decode_square(example["image/encoded"], image_size, resize_method),
            "raw_label": tf.cast(example["image/class/label"], tf.int32)}

  def on_skipped(source, first, count):
    for pos in range(first, first + count):
      record = pos * inner.num_shards + inner.index
      bad_records.record(tag, bad_records.CORRUPT_IMAGE, f"{sources[source]} record {record}",
                         strict=strict)

  ds = resilient_decode.decode_skipping_bad(records, decode, num_sources=len(sources),
                                            on_skipped=on_skipped, keep_positions=True)
  names = tf.constant(sources)

  def finish(e):
    where = [tf.gather(names, e[resilient_decode.SOURCE]), "record",
             e[resilient_decode.POS] * inner.num_shards + inner.index]
    labels = _check_labels(e["raw_label"] - label_offset, e["raw_label"], where)
    return {"images": e["images"], "labels": labels}

  return ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True if seed is not None else None)


def load_tfds(data_dir: str, split: str, image_size: int, *, shard: Shard = Shard(),
              seed: Optional[int] = None, strict: bool = False, shuffle: bool = False,
              resize_method: str = "tfgan") -> tf.data.Dataset:
  """Prepared TFDS imagenet2012 -> elements; images stay encoded until our crop-decode."""
  builder = tfds_source.open_prepared("imagenet2012", data_dir, HOW_TO_PREPARE)
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  ds = tfds_source.as_dataset(builder, split, shard=shard, shuffle=shuffle, seed=seed,
                              decoders={"image": tfds.decode.SkipDecoding()})
  ds = ds.map(lambda e: {"image": e["image"], "label": tf.cast(e["label"], tf.int32)})
  tag = f"imagenet/{split}"

  def on_skipped(source, first, count):
    del source
    for pos in range(first, first + count):
      bad_records.record(tag, bad_records.CORRUPT_IMAGE, f"tfds imagenet2012 {split} example "
                         f"#{pos} of this shard's read order", strict=strict)

  ds = resilient_decode.decode_skipping_bad(
      resilient_decode.with_positions(ds, 0),
      lambda e: {"images": decode_square(e["image"], image_size, resize_method),
                 "label": e["label"]},
      num_sources=1, on_skipped=on_skipped)
  return ds.map(lambda e: {"images": e["images"],
                           "labels": _check_labels(e["label"], e["label"], ["tfds", split])},
                num_parallel_calls=tf.data.AUTOTUNE)


def load_imagenet(data_dir=None, split="train", image_size=128, shard: Shard = Shard(),
                  seed: Optional[int] = None, strict: bool = False, source: str = "auto",
                  shuffle: Optional[bool] = None, resize_method: str = "tfgan"):
  """Registry loader. Options: source ('auto'|'tfrecord'|'tfds'), shuffle (shard files;
  default: split == 'train'), resize_method ('tfgan' default | 'bilinear' | 'area')."""
  if resize_method not in image_ops.RESIZE_METHODS:
    raise ValueError(f"resize_method must be one of {image_ops.RESIZE_METHODS}")
  if not os.path.isdir(data_dir):
    raise DataLayoutError(f"missing directory {data_dir}\n{LAYOUT}\n{HOW_TO_PREPARE}")
  if shuffle is None:
    shuffle = split == "train"
  if source == "auto":
    source = "tfrecord" if _shard_files(data_dir, split) else "tfds"
  kwargs = dict(shard=shard, seed=seed, strict=strict, shuffle=shuffle,
                resize_method=resize_method)
  if source == "tfrecord":
    return load_tfrecords(data_dir, split, image_size, **kwargs)
  if source == "tfds":
    return load_tfds(data_dir, split, image_size, **kwargs)
  raise ValueError(f"source must be 'auto', 'tfrecord' or 'tfds', got {source!r}")


for _name, _size in (("imagenet", 128), ("imagenet32", 32), ("imagenet64", 64),
                     ("imagenet128", 128), ("imagenet256", 256)):
  register(DatasetSpec(
      name=_name, loader=load_imagenet, needs_data_dir=True, num_classes=NUM_CLASSES,
      default_image_size=_size, splits=SPLITS,
      description=f"ILSVRC 2012 at {_size} px (central square). {LAYOUT}"))
