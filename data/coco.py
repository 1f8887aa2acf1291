"""COCO 2014 with 5 captions per image (AttnGAN's COCO setting: train2014 to train, val2014 to test).

Layout:
  <data_dir>/annotations/captions_train2014.json, captions_val2014.json
  <data_dir>/train2014/COCO_train2014_000000xxxxxx.jpg, <data_dir>/val2014/...
Splits: 'train' = train2014 (82,783 images), 'test' = val2014 (40,504), as AttnGAN uses them.
Images are ordered by image id. Each image keeps its first 5 good captions in annotation order
(some images have 6 or 7); a caption that is not text or has no word is skipped and counted; an
image left with fewer than 5 repeats its captions (counted), one with none is dropped (counted).
Image: no crop box; full-resolution JPEG decode (AttnGAN's PIL; jpeg_downscale=True: faster DCT
scaled decode), AttnGAN's resize of the shorter side to S*76/64, random or central S crop.
Files: an image the JSON lists (`file_name`) missing from the image folder fails at load time
(DataLayoutError); one that exists but does not decode is skipped and counted.
Vocabulary: data.text over train then val captions (AttnGAN: 27,297 words). T default 12
(AttnGAN cfg/coco_attn2.yml TEXT.WORDS_NUM).
"""
import dataclasses
import functools
import json
import os
from typing import Dict, List, Optional, Tuple, Union

from data import bad_records
from data import captioned_images
from data import index_file
from data import text
from data.layout import DataLayoutError, require_dir, require_file
from data.registry import DatasetSpec, register
from data.sharding import Shard

CAPTIONS_PER_IMAGE = 5
WORDS_NUM = 12
EVAL_WORDS_NUM = 20  # AttnGAN cfg/eval_coco.yml TEXT.WORDS_NUM (evaluation, sampling)
SPLITS = ("train", "test")
_FILES = {"train": ("captions_train2014.json", "train2014"),
          "test": ("captions_val2014.json", "val2014")}
LAYOUT = """  <data_dir>/annotations/captions_train2014.json, <data_dir>/annotations/captions_val2014.json
  <data_dir>/train2014/*.jpg, <data_dir>/val2014/*.jpg"""


@dataclasses.dataclass(frozen=True)
class CocoSplit:
  json_path: str
  image_dir: str
  files: List[str]                              # file names, by image id
  captions: Dict[str, List[List[str]]]          # file name -> good captions (at most 5)
  malformed: List[Tuple[str, str, str]]         # (file name or '', annotation key, why)


def _read_split(data_dir: str, split: str) -> CocoSplit:
  json_name, image_dir_name = _FILES[split]
  json_path = require_file(os.path.join(data_dir, "annotations", json_name), LAYOUT)
  image_dir = require_dir(os.path.join(data_dir, image_dir_name), LAYOUT)
  try:
    with open(json_path, "r", encoding="utf-8") as f:
      content = json.load(f)
    images = {int(im["id"]): str(im["file_name"]) for im in content["images"]}
    annotations = content["annotations"]
  except (ValueError, KeyError, TypeError) as e:
    raise DataLayoutError(f"{json_path}: not a COCO captions file ({e!r})\n{LAYOUT}") from e
  captions = {name: [] for name in images.values()}
  malformed = []
  for n, ann in enumerate(annotations):
    key = f"{json_path}#annotations[{n}] (id {ann.get('id') if isinstance(ann, dict) else '?'})"
    name = images.get(ann.get("image_id")) if isinstance(ann, dict) else None
    if name is None:
      malformed.append(("", key, "no such image id"))
      continue
    if len(captions[name]) == CAPTIONS_PER_IMAGE:
      continue
    caption = ann.get("caption")
    tokens = text.tokenize(caption) if isinstance(caption, str) else None
    if not tokens:
      malformed.append((name, key, "not text" if tokens is None else f"no words in {caption!r}"))
      continue
    captions[name].append(tokens)
  files = [images[i] for i in sorted(images)]
  return CocoSplit(json_path, image_dir, files, captions, malformed)


@functools.lru_cache(maxsize=2)
def read_coco(data_dir: str) -> Dict[str, CocoSplit]:
  require_dir(data_dir, LAYOUT)
  return {split: _read_split(data_dir, split) for split in SPLITS}


def vocabulary(data_dir: str, **unused) -> text.Vocabulary:
  """The word ids `load_coco` uses: train then val captions, first occurrence order."""
  del unused
  return _vocabulary(os.path.abspath(data_dir))


@functools.lru_cache(maxsize=2)
def _vocabulary(data_dir: str) -> text.Vocabulary:
  splits = read_coco(data_dir)
  return text.Vocabulary.build(
      c for split in SPLITS for name in splits[split].files for c in splits[split].captions[name])


def _records(coco: CocoSplit, vocab: text.Vocabulary, tag: str, strict: bool):
  for _, key, why in coco.malformed:
    bad_records.record(tag, bad_records.MALFORMED_CAPTION, key, strict=strict, detail=why)
  records = []
  for name in coco.files:
    ids = captioned_images.encode_image_captions(
        coco.captions[name], vocab, per_image=CAPTIONS_PER_IMAGE, tag=tag, key=name,
        strict=strict)
    if ids is not None:
      records.append(index_file.ImageRecord(path=os.path.join(coco.image_dir, name),
                                            captions=ids))
  return records


def load_coco(data_dir=None, split="train", image_size=256, shard: Shard = Shard(),
              seed: Optional[int] = None, strict: bool = False, max_words: Optional[int] = None,
              augment: Optional[bool] = None, shuffle: Optional[bool] = None,
              vocabulary: Union[None, str, text.Vocabulary] = None,  # pylint: disable=redefined-outer-name
              jpeg_downscale: bool = False, cache: Union[bool, str] = False,
              index_dir: Optional[str] = None):
  """Registry loader; options as for CUB (max_words default 12; jpeg_downscale default False,
  AttnGAN's full-resolution decode)."""
  data_dir = os.path.abspath(data_dir)
  coco = read_coco(data_dir)[split]
  if isinstance(vocabulary, str):
    vocabulary = text.Vocabulary.load(vocabulary)
  tag = f"coco/{split}"
  records = _records(coco, vocabulary or _vocabulary(data_dir), tag, strict)
  return captioned_images.captioned_image_dataset(
      records, tag=tag, image_dir=coco.image_dir, listing=coco.json_path,
      num_listed=len(coco.files), layout=LAYOUT, image_size=image_size,
      max_words=max_words or WORDS_NUM, captions_per_image=CAPTIONS_PER_IMAGE, use_boxes=False,
      with_labels=False,
      augment=split == "train" if augment is None else augment, jpeg_downscale=jpeg_downscale,
      shard=shard, shuffle=split == "train" if shuffle is None else shuffle, seed=seed,
      strict=strict, cache=cache, index_dir=index_dir)


SPEC = register(DatasetSpec(
    name="coco", loader=load_coco, needs_data_dir=True, num_classes=0, default_image_size=256,
    splits=SPLITS,
    description="COCO 2014 + 5 captions per image: annotations/captions_{train,val}2014.json, "
                "train2014/, val2014/ ('test' = val2014, as in AttnGAN)",
    has_captions=True, captions_per_image=CAPTIONS_PER_IMAGE, default_max_words=WORDS_NUM,
    eval_max_words=EVAL_WORDS_NUM,
    vocabulary=vocabulary))
