"""Captioned digits: the embedded text-to-image dataset (scikit-learn's bundled digits + captions).

Each of the 1,797 digit images gets 10 captions (like CUB) that state its class and three
attributes MEASURED from its 8x8 pixels (values 0..16, x = value / 16, rows r and columns c):
  stroke weight  ink = sum x                                       thin / regular / thick
  slant          -cov(r, c) / var(r), intensity-weighted moments   leans left / upright / right
                 (positive: the top of the digit lies to the right of its bottom)
  width          sqrt of the intensity-weighted variance of c      narrow / average / wide
Each attribute is split at the tertiles of its values over the images of the SAME class (a
"thick one" is thick for a one), over all 1,797 images, so the words carry information the class
does not, and train and test share the thresholds. Captions use varied templates and synonyms
(`TEMPLATES`, `PHRASES`), chosen by a RNG seeded with the image's index: the same on every machine.
Every caption names the class (a number word) and at least two attributes; the marker words of
each attribute value (`MARKERS`) belong to that value only, so a caption can be checked
against the pixels (data/digits_captions_test.py does).

Images as data.digits (bilinear upsampling to S x S, RGB, [-1, 1]); no flip or crop (a flip
would reverse the slant). Splits: digits' fixed stratified 80/20 split ('train' 1,438, 'test'
359, 'all'). Vocabulary: data.text over the train then test captions. Elements as
data.captioned_images: images, captions [T], caption_length, caption_index, all_captions [K, T],
all_caption_lengths [K], labels.
"""
import functools
import re
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import tensorflow as tf
import tensorflow.experimental.numpy as tnp

from data import caption_ops
from data import digits
from data import text
from data.registry import DatasetSpec, register

CAPTIONS_PER_IMAGE = 10
WORDS_NUM = 16  # the longest template has 13 words: nothing is sub-sampled by default
NUM_CLASSES = digits.NUM_CLASSES
_CAPTION_SEED = 1311  # any fixed value; it must never change
ATTRIBUTES = ("weight", "slant", "width")
VALUES = {"weight": ("thin", "regular", "thick"),
          "slant": ("left", "upright", "right"),
          "width": ("narrow", "average", "wide")}
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# Phrases per attribute value and grammatical slot; {digit} is the number word.
PHRASES = {
    "weight": {"thin": ["thin", "light", "faint"],
               "regular": ["regular", "medium", "normal"],
               "thick": ["thick", "bold", "heavy"]},
    "weight_ink": {"thin": ["thin", "light", "faint"],
                   "regular": ["medium", "regular", "normal"],
                   "thick": ["thick", "heavy", "bold"]},
    "slant_verb": {"left": ["leans to the left", "tilts left", "slants to the left"],
                   "upright": ["stands upright", "stands straight", "stays vertical"],
                   "right": ["leans to the right", "tilts right", "slants to the right"]},
    "slant_adj": {"left": ["slanted left", "tilted to the left", "leaning left"],
                  "upright": ["upright", "straight", "vertical"],
                  "right": ["slanted right", "tilted to the right", "leaning right"]},
    "width": {"narrow": ["narrow", "slim", "skinny"],
              "average": ["ordinary", "standard", "typical"],
              "wide": ["wide", "broad", "round"]},
}
# Tokens that mark each attribute value (and no other value of any attribute).
MARKERS = {
    "weight": {"thin": {"thin", "light", "faint"}, "regular": {"regular", "medium", "normal"},
               "thick": {"thick", "bold", "heavy"}},
    "slant": {"left": {"left"}, "upright": {"upright", "straight", "vertical"},
              "right": {"right"}},
    "width": {"narrow": {"narrow", "slim", "skinny"},
              "average": {"ordinary", "standard", "typical"},
              "wide": {"wide", "broad", "round"}},
}
TEMPLATES = (
    "a {weight} {digit} that {slant_verb}",
    "this {width} {digit} {slant_verb} and is drawn in {weight_ink} ink",
    "the {digit} is written with {weight_ink} strokes and {slant_verb}",
    "a {width} handwritten {digit} with {weight_ink} strokes",
    "the number {digit} drawn {slant_adj} in {weight_ink} ink",
    "a {slant_adj} {width} {digit}",
    "an image of a {weight} {width} digit {digit}",
    "handwritten {digit} {slant_adj} with a {width} shape",
    "the digit {digit} has {weight_ink} lines and a {width} body",
    "a {weight} {digit} {slant_adj} and {width}",
)
_SLOT_ATTRIBUTE = {"weight": "weight", "weight_ink": "weight", "slant_verb": "slant",
                   "slant_adj": "slant", "width": "width"}


def measure(images8: np.ndarray) -> Dict[str, np.ndarray]:
  """Raw attribute measurements of [N, 8, 8] images (0..16): {'weight', 'slant', 'width'} [N]."""
  x = np.asarray(images8, np.float64) / 16.0
  r, c = np.mgrid[0:8, 0:8].astype(np.float64)
  ink = x.sum(axis=(1, 2))  # [N]
  mean_r = (x * r).sum(axis=(1, 2)) / ink
  mean_c = (x * c).sum(axis=(1, 2)) / ink
  dr = r[None] - mean_r[:, None, None]
  dc = c[None] - mean_c[:, None, None]
  var_r = (x * dr ** 2).sum(axis=(1, 2)) / ink
  var_c = (x * dc ** 2).sum(axis=(1, 2)) / ink
  cov = (x * dr * dc).sum(axis=(1, 2)) / ink
  return {"weight": ink, "slant": -cov / var_r, "width": np.sqrt(var_c)}


@functools.lru_cache(maxsize=1)
def _all_digits():
  from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel
  bunch = load_digits()
  return bunch.images.astype(np.uint8), bunch.target.astype(np.int32)


@functools.lru_cache(maxsize=1)
def thresholds() -> Dict[str, np.ndarray]:
  """{attribute: [10 classes, 2] float}: the per-class tertiles over all images."""
  images, labels = _all_digits()
  values = measure(images)
  return {a: np.stack([np.percentile(values[a][labels == k], [100 / 3, 200 / 3])
                       for k in range(NUM_CLASSES)]) for a in ATTRIBUTES}


def attribute_values(images8: np.ndarray, labels: np.ndarray) -> Dict[str, np.ndarray]:
  """{attribute: [N] int} 0, 1 or 2 (the VALUES index) of each image, from its pixels."""
  values, cuts = measure(images8), thresholds()
  labels = np.asarray(labels)
  return {a: (values[a] > cuts[a][labels, 0]).astype(np.int32)
             + (values[a] > cuts[a][labels, 1]).astype(np.int32) for a in ATTRIBUTES}


def caption_texts(index: int, label: int, attributes: Dict[str, int]) -> List[str]:
  """The 10 captions of image `index` (of all 1,797), class `label`, attribute indices."""
  rng = np.random.RandomState([_CAPTION_SEED, index])
  order = rng.permutation(len(TEMPLATES))[:CAPTIONS_PER_IMAGE]
  captions = []
  for t in order:
    fields = {"digit": NUMBER_WORDS[label]}
    for slot, attribute in _SLOT_ATTRIBUTE.items():
      options = PHRASES[slot][VALUES[attribute][attributes[attribute]]]
      fields[slot] = options[rng.randint(len(options))]
    caption = TEMPLATES[t].format(**fields)
    captions.append(re.sub(r"\ba (?=[aeiou])", "an ", caption))
  return captions


@functools.lru_cache(maxsize=1)
def all_captions() -> Tuple[Tuple[str, ...], ...]:
  """The captions of all 1,797 images, in scikit-learn's order."""
  images, labels = _all_digits()
  attrs = attribute_values(images, labels)
  return tuple(tuple(caption_texts(i, int(labels[i]), {a: int(attrs[a][i]) for a in ATTRIBUTES}))
               for i in range(len(labels)))


def split_indices(split: str) -> np.ndarray:
  _, labels = _all_digits()
  return digits._split_indices(labels, split)  # pylint: disable=protected-access


@functools.lru_cache(maxsize=1)
def _vocabulary() -> text.Vocabulary:
  captions = all_captions()
  return text.Vocabulary.build(text.tokenize(c) for split in ("train", "test")
                               for i in split_indices(split) for c in captions[i])


def vocabulary(data_dir=None, **unused) -> text.Vocabulary:
  """The word ids of the captions (train then test, AttnGAN's order)."""
  del data_dir, unused
  return _vocabulary()


def split_arrays(split: str, vocab: Optional[text.Vocabulary] = None):
  """(images8 [N, 8, 8] uint8, labels [N], ids [N, K, L] int32 zero-padded, lengths [N, K])."""
  vocab = vocab or _vocabulary()
  images, labels = _all_digits()
  idx = split_indices(split)
  captions = all_captions()
  encoded = [[vocab.encode_text(c) for c in captions[i]] for i in idx]
  width = max(len(ids) for caps in encoded for ids in caps)
  ids = np.zeros((len(idx), CAPTIONS_PER_IMAGE, width), np.int32)
  lengths = np.zeros((len(idx), CAPTIONS_PER_IMAGE), np.int32)
  for n, caps in enumerate(encoded):
    for k, row in enumerate(caps):
      if not row:
        raise ValueError(f"caption {k} of digit {idx[n]} has no word in the vocabulary")
      ids[n, k, :len(row)] = row
      lengths[n, k] = len(row)
  return images[idx], labels[idx], ids, lengths


def load_digits_captions(data_dir=None, split="train", image_size=32, seed: Optional[int] = None,
                         max_words: Optional[int] = None,
                         vocabulary: Union[None, str, text.Vocabulary] = None):  # pylint: disable=redefined-outer-name
  """Registry loader. Options: max_words (T, default 16), vocabulary (a Vocabulary or vocab file
  to encode with). The caption picked per element and the sub-sampled words are stateless
  functions of `seed` and the element (evaluation: seed 0)."""
  del data_dir  # bundled with scikit-learn
  if isinstance(vocabulary, str):
    vocabulary = text.Vocabulary.load(vocabulary)
  images8, labels, ids, lengths = split_arrays(split, vocabulary)
  max_words = max_words or WORDS_NUM
  ds = tf.data.Dataset.from_tensor_slices(
      {"images8": images8, "labels": labels, "ids": ids, "lengths": lengths})
  seeds = tf.data.Dataset.random(seed=0 if seed is None else seed)

  def finish(e, r):
    words_seed, pick_seed = tf.unstack(
        tf.random.experimental.stateless_split(tf.stack([r, tf.constant(0, tf.int64)]), 2))
    image = digits.upsample_to_rgb(e["images8"][None], image_size, tnp)[0]  # [S, S, 3]
    all_ids, all_lengths = caption_ops.subsample_words(e["ids"], e["lengths"], max_words,
                                                       words_seed)
    caption, length, index = caption_ops.pick_caption(all_ids, all_lengths, pick_seed)
    return {"images": tf.convert_to_tensor(image, tf.float32), "captions": caption,
            "caption_length": length, "caption_index": index, "all_captions": all_ids,
            "all_caption_lengths": all_lengths, "labels": e["labels"]}

  return tf.data.Dataset.zip((ds, seeds)).map(finish, num_parallel_calls=tf.data.AUTOTUNE,
                                               deterministic=True)


SPEC = register(DatasetSpec(
    name="digits_captions", loader=load_digits_captions, needs_data_dir=False,
    num_classes=NUM_CLASSES, default_image_size=32, splits=("train", "test", "all"),
    description="scikit-learn's bundled digits with 10 generated captions each (class, stroke "
                "weight, slant, width measured from the pixels; no files needed)",
    has_captions=True, captions_per_image=CAPTIONS_PER_IMAGE, default_max_words=WORDS_NUM,
    vocabulary=vocabulary))
