"""ImageNet (ILSVRC 2012) for class-conditional SAGAN / YLG at 128 px (and 32, 64, 256).

Two sources, picked by what --data_dir holds (or `source=`):
  tfrecord  shards in the widely used format of `build_imagenet_data.py` / `imagenet_to_gcs.py`:
            <data_dir>/train-00000-of-01024 ..., validation-00000-of-00128 ..., tf.train.Example
            with image/encoded (JPEG) and image/class/label (1..1000; 0 is background there).
            Labels become 0-based; anything outside 1..1000 is an error.
  tfds      a prepared TFDS imagenet2012 (labels already 0-based), read without downloading.
Preprocessing (TF-GAN self_attention_estimator): the largest central square (odd margins rounded
up), corner-to-corner bilinear resize to the target size (its crop_and_resize), x * 2/255 - 1.
The JPEG is decoded with decode_and_crop_jpeg, so only the square is decoded, at full resolution
by default: TF-GAN's exact pixels (faithful by default, issue 17). The opt-in speed option
`jpeg_downscale=True` decodes it at 1/2, 1/4 or 1/8 scale when the square stays >= S, a
DCT-domain low-pass that makes decoding cheaper and the final bilinear step less aliased (the
original SAGAN data, made with PIL's antialiased resize, was not aliased either); its pixels are
not TF-GAN's. A corrupt image or record is skipped, counted
and named (see data.bad_records), or fails the run with strict=True.
Elements: images float32 [S, S, 3] in [-1, 1], labels int32 in [0, 1000).
"""
import io
import os
from typing import Optional

from PIL import Image
import tensorflow as tf

from data import image_ops
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
  return sorted(tf.io.gfile.glob(os.path.join(data_dir, f"{split}-*-of-*")))


def _tiny_example(label: int, image_key: str = "image/encoded",
                  label_key: str = "image/class/label") -> bytes:
  """A serialized 1x1 black JPEG Example: stands in for end markers in the TFRecord reader."""
  buf = io.BytesIO()
  Image.new("RGB", (1, 1)).save(buf, format="JPEG")  # no TF op: input_fns may run in a TF1 graph
  jpeg = buf.getvalue()
  return tf.train.Example(features=tf.train.Features(feature={
      image_key: tf.train.Feature(bytes_list=tf.train.BytesList(value=[jpeg])),
      label_key: tf.train.Feature(int64_list=tf.train.Int64List(value=[label]))})
  ).SerializeToString()


def decode_square(encoded: tf.Tensor, image_size: int, resize_method: str,
                  jpeg_downscale: bool = False) -> tf.Tensor:
  """JPEG bytes -> float32 [S, S, 3] in [-1, 1]: central square, resized."""
  square = image_ops.decode_window(encoded, image_ops.central_square,
                                   min_side=image_size if jpeg_downscale else None,
                                   jpeg_only=True)
  return image_ops.to_signed_unit(image_ops.resize_square(square, image_size, resize_method))


def _read_examples(files, split, image_size, *, image_key, label_key, label_offset, source,
                   shard, seed, strict, shuffle, resize_method, jpeg_downscale, parallel_reads,
                   expected_records=None):
  """tf.train.Example files (ImageNet TFRecord shards or a prepared TFDS split) -> elements."""
  def decode(record):
    example = tf.io.parse_single_example(record, {
        image_key: tf.io.FixedLenFeature([], tf.string),
        label_key: tf.io.FixedLenFeature([], tf.int64)})
    return {"images": decode_square(example[image_key], image_size, resize_method,
                                    jpeg_downscale),
            "labels": tf.cast(example[label_key], tf.int32) - label_offset}

  def label_in_range(e):
    return tf.logical_and(e["labels"] >= 0, e["labels"] < NUM_CLASSES), e["labels"] + label_offset

  return tfrecord_reader.read_and_decode(
      files, decode, tiny_record=_tiny_example(label_offset, image_key, label_key),
      tag=f"imagenet/{split}", shard=shard, shuffle=shuffle, seed=seed, strict=strict,
      deterministic=True if seed is not None else None,
      parallel_reads=None if parallel_reads == 1 else parallel_reads, check=label_in_range,
      check_error=f"ImageNet {source} label out of range: {{value}} in {{where}} (expected "
                  f"{label_offset}..{NUM_CLASSES - 1 + label_offset})",
      expected_records=expected_records, expected_from="dataset_info.json")


def load_tfrecords(data_dir: str, split: str, image_size: int, *, shard: Shard = Shard(),
                   seed: Optional[int] = None, strict: bool = False, shuffle: bool = False,
                   resize_method: str = "tfgan", jpeg_downscale: bool = False,
                   parallel_reads: Optional[int] = None) -> tf.data.Dataset:
  """ImageNet TFRecord shards -> elements (see module docstring)."""
  files = _shard_files(data_dir, split)
  if not files:
    raise DataLayoutError(f"no {split}-*-of-* TFRecord shards in {data_dir}\n{LAYOUT}")
  return _read_examples(
      files, split, image_size, image_key="image/encoded", label_key="image/class/label",
      label_offset=1, source="TFRecord", shard=shard, seed=seed, strict=strict, shuffle=shuffle,
      resize_method=resize_method, jpeg_downscale=jpeg_downscale, parallel_reads=parallel_reads)


def load_tfds(data_dir: str, split: str, image_size: int, *, shard: Shard = Shard(),
              seed: Optional[int] = None, strict: bool = False, shuffle: bool = False,
              resize_method: str = "tfgan", jpeg_downscale: bool = False,
              parallel_reads: Optional[int] = None) -> tf.data.Dataset:
  """Prepared TFDS imagenet2012 -> elements.

  Its files are tf.train.Example records (image: JPEG bytes, label: 0..999), read here by the
  same resilient reader as TFRecord shards rather than by tfds.as_dataset: TFDS's reader retries
  a damaged file's DataLossError forever under a skipping decode, and the JPEGs stay encoded
  until the crop-decode anyway.
  """
  builder = tfds_source.open_prepared("imagenet2012", data_dir, HOW_TO_PREPARE)
  return _read_examples(
      tfds_source.split_files(builder, split), split, image_size, image_key="image",
      label_key="label", label_offset=0, source="TFDS", shard=shard, seed=seed, strict=strict,
      shuffle=shuffle, resize_method=resize_method, jpeg_downscale=jpeg_downscale,
      parallel_reads=parallel_reads,
      expected_records=tfds_source.split_record_counts(builder, split))


def load_imagenet(data_dir=None, split="train", image_size=128, shard: Shard = Shard(),
                  seed: Optional[int] = None, strict: bool = False, source: str = "auto",
                  shuffle: Optional[bool] = None, resize_method: str = "tfgan",
                  jpeg_downscale: bool = False, parallel_reads: Optional[int] = None):
  """Registry loader. Options: source ('auto'|'tfrecord'|'tfds'), shuffle (shard files;
  default: split == 'train'), resize_method ('tfgan' default | 'bilinear' | 'area'),
  jpeg_downscale (DCT-domain 1/2..1/8 decode when the square stays >= S, faster
  but not TF-GAN's pixels; default False: TF-GAN's full decode),
  parallel_reads (threads reading TFRecord shards; default None: 1 for a local data_dir, where
  one thread cycling through 16 shards costs least, tf.data.AUTOTUNE (-1) for remote storage,
  e.g. gs://). data_dir may be local or on any filesystem tf.io.gfile reads."""
  if resize_method not in image_ops.RESIZE_METHODS:
    raise ValueError(f"resize_method must be one of {image_ops.RESIZE_METHODS}")
  if not tf.io.gfile.isdir(data_dir):
    raise DataLayoutError(f"missing directory {data_dir}\n{LAYOUT}\n{HOW_TO_PREPARE}")
  if shuffle is None:
    shuffle = split == "train"
  if source == "auto":
    source = "tfrecord" if _shard_files(data_dir, split) else "tfds"
  kwargs = dict(shard=shard, seed=seed, strict=strict, shuffle=shuffle,
                resize_method=resize_method, jpeg_downscale=jpeg_downscale)
  if parallel_reads is None:
    parallel_reads = tf.data.AUTOTUNE if "://" in data_dir else 1
  if parallel_reads != tf.data.AUTOTUNE and parallel_reads < 1:
    raise ValueError(f"parallel_reads must be a positive number of threads or -1 (autotune), "
                     f"got {parallel_reads}")
  kwargs["parallel_reads"] = parallel_reads
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
