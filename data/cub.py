"""CUB-200-2011 birds with 10 captions per image, read as AttnGAN reads it.

Layout (AttnGAN's data/birds; the caption files are Reed et al.'s, 10 lines each):
  <data_dir>/CUB_200_2011/images/<class dir>/<image>.jpg, images.txt, bounding_boxes.txt,
      image_class_labels.txt, train_test_split.txt
  <data_dir>/text/<class dir>/<image>.txt           (also accepted: text_c10/)
  <data_dir>/train/filenames.pickle, test/filenames.pickle   (AttnGAN's split, optional)
The CUB_200_2011 files may also sit directly in <data_dir>.
Split (`split_source`):
  attngan   AttnGAN/StackGAN's class-disjoint split, 8,855 train / 2,933 test images, from
            train|test/filenames.pickle (a list of '<class dir>/<image>'; read with an unpickler
            that accepts nothing but a list of strings) or train|test/filenames.txt (one per line)
  official  CUB's own train_test_split.txt (5,994 / 5,794): not comparable with AttnGAN's numbers
  auto      (default) attngan when its files exist, else official, with a warning.
Image: the AttnGAN bounding-box crop (see captioned_images.attngan_box_window); bounding boxes are
truncated to integers as AttnGAN's `astype(int)` does; JPEGs decoded at full resolution (AttnGAN)
unless jpeg_downscale=True. Labels: the bird class, 0..199.
Files: a split's image missing from images/ fails at load time (DataLayoutError, with the count
and the first paths); an image that exists but does not decode is skipped and counted.
Captions: the first 10 good lines of each file; malformed lines are skipped and counted; an image
with fewer good captions repeats them (counted), one with none is dropped (counted).
Vocabulary: data.text, built from the train then test captions (AttnGAN: 5,450 words).
"""
import dataclasses
import functools
import os
import pickle
from typing import Dict, List, Optional, Tuple, Union

from absl import logging

from data import bad_records
from data import captioned_images
from data import index_file
from data import text
from data.layout import (DataLayoutError, first_existing, parse_number, require_dir, require_file,
                         table_rows)
from data.registry import DatasetSpec, register
from data.sharding import Shard

NUM_CLASSES = 200
CAPTIONS_PER_IMAGE = 10
WORDS_NUM = 18  # AttnGAN cfg/bird_attn2.yml TEXT.WORDS_NUM
EVAL_WORDS_NUM = 25  # AttnGAN cfg/eval_bird.yml TEXT.WORDS_NUM (evaluation, sampling)
SPLITS = ("train", "test")
LAYOUT = """  <data_dir>/CUB_200_2011/images/<class dir>/<image>.jpg, images.txt, bounding_boxes.txt,
      image_class_labels.txt, train_test_split.txt   (or these directly in <data_dir>)
  <data_dir>/text/<class dir>/<image>.txt   (10 captions, one per line; or text_c10/)
  <data_dir>/train/filenames.pickle, <data_dir>/test/filenames.pickle   (AttnGAN's split)"""


@dataclasses.dataclass(frozen=True)
class CubText:
  """Everything read from the metadata and caption files (cached per data_dir)."""
  root: str
  text_dir: str
  split_source: str
  names: Dict[str, List[str]]                       # split -> '<class dir>/<image>' in order
  labels: Dict[str, int]                            # name -> class 0..199
  boxes: Dict[str, Tuple[int, int, int, int]]       # name -> x, y, w, h
  captions: Dict[str, List[List[str]]]              # name -> good captions (at most 10)
  malformed: Dict[str, List[Tuple[int, str]]]       # name -> rejected caption lines
  split_files: Dict[str, str]                       # split -> the file that lists its images
  vocabulary: text.Vocabulary


class _ListOfNames(pickle.Unpickler):
  """Unpickles only plain lists of strings: no class is ever looked up, so nothing can run."""

  def find_class(self, module, name):
    raise pickle.UnpicklingError(f"expected a list of file names, found a {module}.{name}")


def _read_names(path: str) -> List[str]:
  if path.endswith(".pickle"):
    with open(path, "rb") as f:
      try:
        names = _ListOfNames(f, encoding="latin1").load()
      except Exception as e:  # pylint: disable=broad-except
        raise DataLayoutError(f"{path}: cannot read the list of file names: {e}") from e
    if not isinstance(names, list) or not all(isinstance(n, (str, bytes)) for n in names):
      raise DataLayoutError(f"{path}: expected a list of '<class dir>/<image>' names")
    return [n.decode("utf-8") if isinstance(n, bytes) else n for n in names]
  with open(path, "r", encoding="utf-8") as f:
    return [line.strip() for line in f if line.strip()]


def _attngan_split_files(data_dir: str) -> Optional[Dict[str, str]]:
  for ext in ("pickle", "txt"):
    files = {s: os.path.join(data_dir, s, f"filenames.{ext}") for s in SPLITS}
    if all(os.path.isfile(p) for p in files.values()):
      return files
  return None


def _locate(data_dir: str) -> Tuple[str, str]:
  require_dir(data_dir, LAYOUT)
  nested = os.path.join(data_dir, "CUB_200_2011")
  root = nested if os.path.isdir(nested) else data_dir
  text_dir = first_existing([os.path.join(data_dir, "text"), os.path.join(data_dir, "text_c10"),
                             os.path.join(root, "text")], LAYOUT, kind="dir")
  require_dir(os.path.join(root, "images"), LAYOUT)
  return root, text_dir


@functools.lru_cache(maxsize=4)
def read_cub(data_dir: str, split_source: str = "auto") -> CubText:
  """Reads and checks the metadata and every caption file (fails before training if one is
  missing or a metadata table is malformed)."""
  if split_source not in ("auto", "attngan", "official"):
    raise ValueError(f"split_source must be 'auto', 'attngan' or 'official', got {split_source!r}")
  root, text_dir = _locate(data_dir)
  id_to_name = {}
  images_txt = os.path.join(root, "images.txt")
  for lineno, (image_id, rel) in table_rows(images_txt, 2, LAYOUT):
    id_to_name[parse_number(image_id, images_txt, lineno)] = os.path.splitext(rel)[0]
  boxes_txt = os.path.join(root, "bounding_boxes.txt")
  boxes = {}
  for lineno, fields in table_rows(boxes_txt, 5, LAYOUT):
    image_id = parse_number(fields[0], boxes_txt, lineno)
    boxes[id_to_name.get(image_id, image_id)] = tuple(
        int(parse_number(v, boxes_txt, lineno, float)) for v in fields[1:])
  labels_txt = os.path.join(root, "image_class_labels.txt")
  labels = {}
  for lineno, (image_id, cls) in table_rows(labels_txt, 2, LAYOUT):
    label = parse_number(cls, labels_txt, lineno) - 1
    if not 0 <= label < NUM_CLASSES:
      raise DataLayoutError(f"{labels_txt}:{lineno}: class {cls} outside 1..{NUM_CLASSES}")
    labels[id_to_name.get(parse_number(image_id, labels_txt, lineno), image_id)] = label

  attngan = _attngan_split_files(data_dir) if split_source != "official" else None
  if attngan:
    names = {s: _read_names(p) for s, p in attngan.items()}
    used, split_files = "attngan", attngan
  elif split_source == "attngan":
    raise DataLayoutError(
        f"AttnGAN's split files are missing: {data_dir}/train/filenames.pickle and "
        f"{data_dir}/test/filenames.pickle (from AttnGAN's birds metadata), or the same as "
        f"filenames.txt with one '<class dir>/<image>' per line. split_source='official' uses "
        f"CUB's train_test_split.txt instead.\nexpected layout:\n{LAYOUT}")
  else:
    split_txt = os.path.join(root, "train_test_split.txt")
    names = {"train": [], "test": []}
    for lineno, (image_id, is_train) in table_rows(split_txt, 2, LAYOUT):
      name = id_to_name.get(parse_number(image_id, split_txt, lineno))
      if name is None:
        raise DataLayoutError(f"{split_txt}:{lineno}: image id {image_id} is not in images.txt")
      names["train" if is_train == "1" else "test"].append(name)
    used, split_files = "official", {s: split_txt for s in SPLITS}
    if split_source == "auto":
      logging.warning("CUB: AttnGAN's split files (train/filenames.pickle) not found in %s; "
                      "using CUB's official train_test_split.txt, whose scores are not "
                      "comparable with AttnGAN's (8,855 / 2,933 class-disjoint split).", data_dir)

  captions, malformed = {}, {}
  for split in SPLITS:
    for name in names[split]:
      if name not in boxes or name not in labels:
        raise DataLayoutError(f"{name} (in the {used} {split} split) is not in images.txt / "
                              f"bounding_boxes.txt / image_class_labels.txt of {root}")
      path = require_file(os.path.join(text_dir, name + ".txt"), LAYOUT)
      with open(path, "rb") as f:
        parsed = text.parse_caption_lines(f.read(), CAPTIONS_PER_IMAGE)
      captions[name], malformed[name] = parsed.captions, parsed.malformed
  vocabulary = text.Vocabulary.build(
      c for split in SPLITS for name in names[split] for c in captions[name])
  return CubText(root, text_dir, used, names, labels, boxes, captions, malformed, split_files,
                 vocabulary)


def vocabulary(data_dir: str, split_source: str = "auto", **unused) -> text.Vocabulary:
  """The word ids `load_cub` uses (save it with the run)."""
  del unused
  return read_cub(os.path.abspath(data_dir), split_source).vocabulary


def _records(cub: CubText, split: str, vocab: text.Vocabulary, tag: str, strict: bool):
  records = []
  for name in cub.names[split]:
    caption_path = os.path.join(cub.text_dir, name + ".txt")
    for lineno, why in cub.malformed[name]:
      bad_records.record(tag, bad_records.MALFORMED_CAPTION, f"{caption_path}:{lineno}",
                         strict=strict, detail=why)
    ids = captioned_images.encode_image_captions(
        cub.captions[name], vocab, per_image=CAPTIONS_PER_IMAGE, tag=tag, key=caption_path,
        strict=strict)
    if ids is not None:
      records.append(index_file.ImageRecord(
          path=os.path.join(cub.root, "images", name + ".jpg"), label=cub.labels[name],
          box=cub.boxes[name], captions=ids))
  return records


def load_cub(data_dir=None, split="train", image_size=256, shard: Shard = Shard(),
             seed: Optional[int] = None, strict: bool = False, max_words: Optional[int] = None,
             augment: Optional[bool] = None, shuffle: Optional[bool] = None,
             split_source: str = "auto",
             vocabulary: Union[None, str, text.Vocabulary] = None,  # pylint: disable=redefined-outer-name
             jpeg_downscale: bool = False, cache: Union[bool, str] = False,
             index_dir: Optional[str] = None):
  """Registry loader. Options: max_words (T, default 18), augment (random crop + flip; default
  split == 'train'), shuffle (file order; default split == 'train'), split_source, vocabulary (a
  Vocabulary or vocab file to encode with instead of the one built from the data), jpeg_downscale
  (default False: full-resolution decode as AttnGAN; True: a faster DCT-domain 1/2..1/8 decode
  with slightly different pixels, see data.captioned_images), cache.

  Raises DataLayoutError (before any iteration) when a listed image file is missing or the split
  has no image."""
  cub = read_cub(os.path.abspath(data_dir), split_source)
  if isinstance(vocabulary, str):
    vocabulary = text.Vocabulary.load(vocabulary)
  tag = f"cub/{split}"
  records = _records(cub, split, vocabulary or cub.vocabulary, tag, strict)
  return captioned_images.captioned_image_dataset(
      records, tag=tag, image_dir=os.path.join(cub.root, "images"),
      listing=cub.split_files[split], num_listed=len(cub.names[split]), layout=LAYOUT,
      image_size=image_size, max_words=max_words or WORDS_NUM,
      captions_per_image=CAPTIONS_PER_IMAGE, use_boxes=True, with_labels=True,
      augment=split == "train" if augment is None else augment, jpeg_downscale=jpeg_downscale,
      shard=shard, shuffle=split == "train" if shuffle is None else shuffle, seed=seed,
      strict=strict, cache=cache, index_dir=index_dir)


SPEC = register(DatasetSpec(
    name="cub", loader=load_cub, needs_data_dir=True, num_classes=NUM_CLASSES,
    default_image_size=256, splits=SPLITS,
    description="CUB-200-2011 birds + 10 captions per image (AttnGAN's data/birds): "
                "CUB_200_2011/{images/,images.txt,bounding_boxes.txt,image_class_labels.txt,"
                "train_test_split.txt}, text/<class dir>/<image>.txt, train|test/filenames.pickle",
    has_captions=True, captions_per_image=CAPTIONS_PER_IMAGE, default_max_words=WORDS_NUM,
    eval_max_words=EVAL_WORDS_NUM,
    vocabulary=vocabulary))
