"""Unconditional image sets stored as files: CelebA, FFHQ, LSUN exported to images, any folder.

Every .jpg/.jpeg/.png below --data_dir (any depth, sorted paths) is an example: the largest central
square (or a central `crop_size` square, e.g. 140 for CelebA faces) is cut, resized to S (bilinear
with antialiasing by default) and scaled to [-1, 1]. `resize_to_square=true` resizes the whole
image straight to S x S instead (no crop, aspect not kept), as LadaGAN's official code prepares
CelebA, FFHQ and LSUN (with resize_method=plain_bilinear, jpeg_downscale=false for its pixels). JPEGs are decoded only inside the square,
at 1/2, 1/4 or 1/8 scale (DCT domain) when it stays >= S (`jpeg_downscale`).
Splits: 'all' is every file; 'train'/'test'/'validation' use <data_dir>/<split>/ when it exists, or
CelebA's list_eval_partition.txt (0 train, 1 validation, 2 test) when it is in <data_dir> or its
parent (a file it lists for the split but that is not there is an error at load time);
otherwise 'train' is every file and the other splits are an error. A split without images is an
error (DataLayoutError); corrupt files are skipped and counted.
Elements: images float32 [S, S, 3] in [-1, 1].
"""
import os
from typing import List, Optional, Tuple, Union

from absl import logging
import tensorflow as tf

from data import bad_records
from data import file_images
from data import image_ops
from data import index_file
from data.layout import DataLayoutError, missing_listed_files, require_dir, table_rows
from data.registry import DatasetSpec, register
from data.sharding import Shard

EXTENSIONS = (".jpg", ".jpeg", ".png")
SPLITS = ("train", "test", "validation", "all")
_CELEBA_PARTITION = {"train": "0", "validation": "1", "test": "2"}
LAYOUT = """  <data_dir>/**/*.jpg|*.jpeg|*.png   (any tree; sub-directories train/, test/, validation/
  select splits; CelebA's list_eval_partition.txt beside img_align_celeba/ also works)"""


def list_images(directory: str) -> List[str]:
  """Every image file below `directory`, sorted, following symlinks."""
  found = []
  for root, dirs, files in os.walk(directory, followlinks=True):
    dirs.sort()
    found.extend(os.path.join(root, f) for f in files if f.lower().endswith(EXTENSIONS))
  return sorted(found)


def _celeba_partition(data_dir: str) -> Optional[str]:
  for d in (data_dir, os.path.dirname(os.path.abspath(data_dir))):
    path = os.path.join(d, "list_eval_partition.txt")
    if os.path.isfile(path):
      return path
  return None


def split_files(data_dir: str, split: str) -> Tuple[List[str], str]:
  """The split's image files and where they come from (for the error when there are none)."""
  require_dir(data_dir, LAYOUT)
  if split != "all" and os.path.isdir(os.path.join(data_dir, split)):
    return list_images(os.path.join(data_dir, split)), os.path.join(data_dir, split)
  partition = _celeba_partition(data_dir) if split != "all" else None
  if partition:
    image_dir = os.path.join(data_dir, "img_align_celeba")
    image_dir = image_dir if os.path.isdir(image_dir) else data_dir
    wanted = [name for _, (name, part) in table_rows(partition, 2, LAYOUT)
              if part == _CELEBA_PARTITION[split]]
    wanted_set = set(wanted)
    found = [p for p in list_images(image_dir) if os.path.basename(p) in wanted_set]
    found_names = {os.path.basename(p) for p in found}
    missing = [os.path.join(image_dir, n) for n in wanted if n not in found_names]
    if missing:  # listed by the partition file: a missing one is a layout error, as for CUB/COCO
      raise missing_listed_files(missing, len(wanted), f"{partition} (split {split!r})", LAYOUT)
    return found, f"{image_dir}, split {split!r} of {partition}"
  if split in ("train", "all"):
    if split == "train":
      logging.info("image folder %s has no train/ sub-directory: 'train' is every image", data_dir)
    return list_images(data_dir), data_dir
  raise DataLayoutError(f"split {split!r} needs {os.path.join(data_dir, split)}/ or CelebA's "
                        f"list_eval_partition.txt\nexpected layout:\n{LAYOUT}")


def load_image_folder(data_dir=None, split="train", image_size=64, shard: Shard = Shard(),
                      seed: Optional[int] = None, strict: bool = False,
                      shuffle: Optional[bool] = None, crop_size: Optional[int] = None,
                      resize_method: str = "bilinear", jpeg_downscale: bool = True,
                      cache: Union[bool, str] = False, index_dir: Optional[str] = None,
                      resize_to_square: bool = False, name: str = "image_folder"):
  """Registry loader. Options: shuffle (file order; default split == 'train'), crop_size (central
  crop before resizing; default the largest square), resize_method, jpeg_downscale (JPEGs decoded
  at 1/2..1/8 scale in the DCT domain while the square stays >= S), cache, resize_to_square
  (the whole image resized to S x S, LadaGAN's preparation; not with crop_size)."""
  if resize_to_square and crop_size:
    raise ValueError("resize_to_square resizes the whole image; it takes no crop_size")
  if resize_method not in image_ops.RESIZE_METHODS:
    raise ValueError(f"resize_method must be one of {image_ops.RESIZE_METHODS}")
  tag = f"{name}/{split}"
  records = []
  paths, where = split_files(data_dir, split)
  for path in paths:
    if index_file.has_unsupported_characters(path):
      bad_records.record(tag, bad_records.UNSUPPORTED_PATH, repr(path), strict=strict,
                         detail="tab or newline in the file name")
      continue
    records.append(index_file.ImageRecord(path))
  window = (image_ops.whole_image if resize_to_square else
            image_ops.centre_crop_of(crop_size) if crop_size else image_ops.central_square)

  def decode(line):
    square = image_ops.decode_window(tf.io.read_file(index_file.path_of(line)), window,
                                     min_side=image_size if jpeg_downscale else None)
    return {"images": image_ops.to_signed_unit(
        image_ops.resize_square(square, image_size, resize_method))}

  return file_images.image_files_dataset(
      records, tag=tag, source=f"no {', '.join(EXTENSIONS)} file in {where}", layout=LAYOUT,
      decode_fn=decode, shard=shard,
      shuffle=split == "train" if shuffle is None else shuffle, seed=seed, strict=strict,
      cache=cache, index_dir=index_dir)


def _named(name: str):
  def loader(data_dir=None, split="train", image_size=64, shard: Shard = Shard(),
             seed: Optional[int] = None, strict: bool = False, shuffle: Optional[bool] = None,
             crop_size: Optional[int] = None, resize_method: str = "bilinear",
             jpeg_downscale: bool = True, cache: Union[bool, str] = False,
             index_dir: Optional[str] = None, resize_to_square: bool = False):
    return load_image_folder(data_dir, split, image_size, shard, seed, strict, shuffle,
                             crop_size, resize_method, jpeg_downscale, cache, index_dir,
                             resize_to_square=resize_to_square, name=name)
  return loader


for _name, _size, _what in (("image_folder", 64, "any folder of images"),
                            ("celeba", 64, "CelebA (img_align_celeba/ + list_eval_partition.txt)"),
                            ("ffhq", 128, "FFHQ exported to png/jpg"),
                            ("lsun", 128, "LSUN exported from LMDB to jpg/png files")):
  register(DatasetSpec(name=_name, loader=_named(_name), needs_data_dir=True, num_classes=0,
                       default_image_size=_size, splits=SPLITS,
                       description=f"{_what}: any tree of .jpg/.png, centre square + resize"))
