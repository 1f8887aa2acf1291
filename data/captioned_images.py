"""Text-to-image examples as AttnGAN feeds them (CUB and COCO share this).

Image (AttnGAN `get_imgs` + its train transform): optional bounding-box crop (CUB), resize so the
shorter side is int(S * 76 / 64) (bilinear, antialiased like PIL's), then a random S x S crop and
a random horizontal flip for training (`augment`), or the central S x S crop for evaluation;
x * 2/255 - 1. JPEGs are decoded at full resolution, as AttnGAN's PIL does. `jpeg_downscale=True`
is a named speed-up, not AttnGAN: decode at 1/2..1/8 scale in the DCT domain (libjpeg's scaled
IDCT, a different low-pass than PIL's resize) while the crop stays at least S * 76/64 pixels.
Captions: every image has K captions (token ids, see data.text); each becomes T = max_words ids
(`caption_ops.subsample_words`) and one is picked at random. All randomness is stateless, drawn
from one per-example seed of `tf.data.Dataset.random(seed)`, so a seed reproduces a run exactly.
Elements:
  images float32 [S, S, 3] in [-1, 1]
  captions int32 [T], caption_length int32 [], caption_index int32 [] (which of the K)
  all_captions int32 [K, T], all_caption_lengths int32 [K]  (every caption, for evaluation)
  labels int32 [] (only with with_labels: CUB's bird class, used to mask DAMSM negatives)
"""
from typing import Optional, Sequence, Union

import tensorflow as tf

from data import bad_records
from data import caption_ops
from data import file_images
from data import image_ops
from data import index_file
from data.layout import require_listed_files
from data.sharding import Shard

EVAL_SEED = 0  # evaluation picks the same captions every time when no seed is given


def encode_image_captions(captions: Sequence[str], vocab, *, per_image: int, tag: str,
                          key: str, strict: bool):
  """An image's captions as token-id tuples, exactly `per_image` of them, or None to skip it.

  Captions that encode to nothing are dropped; an image left with none is skipped and counted
  (NO_CAPTIONS), one with fewer than `per_image` has them repeated and is counted
  (TOO_FEW_CAPTIONS). `key` names the image or caption file in data.bad_records.
  """
  ids = [tuple(i) for i in (vocab.encode(c) for c in captions) if i]
  if not ids:
    bad_records.record(tag, bad_records.NO_CAPTIONS, key, strict=strict,
                       detail="no usable caption; image skipped")
    return None
  if len(ids) < per_image:
    bad_records.record(tag, bad_records.TOO_FEW_CAPTIONS, key, strict=strict,
                       detail=f"{len(ids)} of {per_image}; repeated to fill")
    ids = [ids[i % len(ids)] for i in range(per_image)]
  return tuple(ids)


def attngan_box_window(box: tf.Tensor):
  """AttnGAN's CUB crop: a square of side 2r, r = int(0.75 * max(w, h)), around the box centre
  (int((2x + w) / 2), int((2y + h) / 2)), clipped to the image. box = int32 [x, y, w, h]."""
  def window(height, width):
    x, y, w, h = box[0], box[1], box[2], box[3]
    r = (tf.maximum(w, h) * 3) // 4
    cx, cy = (2 * x + w) // 2, (2 * y + h) // 2
    y1, y2 = tf.maximum(0, cy - r), tf.minimum(height, cy + r)
    x1, x2 = tf.maximum(0, cx - r), tf.minimum(width, cx + r)
    return tf.stack([y1, x1, y2 - y1, x2 - x1])
  return window


def _centre_crop(image: tf.Tensor, size: int) -> tf.Tensor:
  """torchvision CenterCrop: offsets round((dim - size) / 2)."""
  shape = tf.shape(image)
  top = tf.cast(tf.round(tf.cast(shape[0] - size, tf.float32) / 2.0), tf.int32)
  left = tf.cast(tf.round(tf.cast(shape[1] - size, tf.float32) / 2.0), tf.int32)
  return image[top:top + size, left:left + size, :]


def captioned_image_dataset(records: Sequence[index_file.ImageRecord], *, tag: str,
                            image_dir: str, listing: str, num_listed: int, layout: str,
                            image_size: int, max_words: int, captions_per_image: int,
                            use_boxes: bool,
                            with_labels: bool, augment: bool, jpeg_downscale: bool = False,
                            shard: Shard = Shard(),
                            shuffle: bool = False, seed: Optional[int] = None,
                            strict: bool = False, cache: Union[bool, str] = False,
                            index_dir: Optional[str] = None) -> tf.data.Dataset:
  """The examples of `records` (see the module docstring).

  `listing` is the metadata file that lists the split's `num_listed` images (records lacks those
  without a usable caption), all under `image_dir`; a listed file that is missing fails here,
  before any iteration, with `layout` (DataLayoutError), instead of being skipped as corrupt.
  """
  if max_words < 1:
    raise ValueError(f"max_words must be positive, got {max_words}")
  require_listed_files([r.path for r in records], listing, layout)
  source = (f"images under {image_dir}: {num_listed} listed by {listing}, "
            f"{num_listed - len(records)} of them without a usable caption")
  load_size = int(image_size * 76 / 64)

  def decode(line):
    r = index_file.parse_line(line)
    window = attngan_box_window(r["box"]) if use_boxes else image_ops.whole_image
    image = image_ops.decode_window(tf.io.read_file(r["path"]), window,
                                    min_side=load_size if jpeg_downscale else None)
    return {"image": image_ops.resize_shorter_side(image, load_size),   # float [h, w, 3] 0..255
            "label": r["label"], "captions": r["captions"]}

  ds = file_images.image_files_dataset(records, tag=tag, source=source, layout=layout,
                                       decode_fn=decode, shard=shard,
                                       shuffle=shuffle, seed=seed, strict=strict, cache=cache,
                                       index_dir=index_dir)
  if seed is None and not augment:
    seed = EVAL_SEED
  seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=augment)

  def finish(e, r):
    crop_seed, flip_seed, words_seed, pick_seed = tf.unstack(
        tf.random.experimental.stateless_split(tf.stack([r, tf.constant(0, tf.int64)]), 4))
    image = e["image"]
    if augment:
      image = tf.image.stateless_random_crop(image, [image_size, image_size, 3], crop_seed)
      image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    else:
      image = _centre_crop(image, image_size)
    image = tf.ensure_shape(image_ops.to_signed_unit(image), [image_size, image_size, 3])
    tokens, lengths = index_file.parse_captions(e["captions"])
    tokens = tf.ensure_shape(tokens, [captions_per_image, None])
    all_captions, all_lengths = caption_ops.subsample_words(tokens, lengths, max_words, words_seed)
    caption, length, index = caption_ops.pick_caption(all_captions, all_lengths, pick_seed)
    out = {"images": image, "captions": caption, "caption_length": length,
           "caption_index": index, "all_captions": all_captions,
           "all_caption_lengths": all_lengths}
    if with_labels:
      out["labels"] = e["label"]
    return out

  return tf.data.Dataset.zip((ds, seeds)).map(
      finish, num_parallel_calls=tf.data.AUTOTUNE,
      deterministic=True if seed is not None else None)
