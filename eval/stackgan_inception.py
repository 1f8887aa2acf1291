"""StackGAN's CUB Inception score: the classifier and the computation the bird IS of StackGAN and
AttnGAN (AttnGAN Table 2: 4.36 +/- 0.03) was measured with, as a named evaluation classifier.

What hanzhanggit/StackGAN-inception-model's `inception_score.py` does (read there; the checkpoint,
`inception_finetuned_models/birds_valid299/model.ckpt-5000`, is on the Google Drive its README
links, "StackGAN inception model for birds and flowers evaluation"):

  network      tensorflow/models' 2016 inception/slim Inception-v3 (eval.slim_inception_v3),
               fine-tuned on CUB, `num_classes = 50 + 1`: the 50 test classes of the zero-shot
               split and class 0, "reserved for an (unused) background class" (flowers: 20 + 1)
  weights      the ExponentialMovingAverage(0.9999) copy of every variable, BN statistics included
  images       image files read as uint8 (AttnGAN writes its samples with
               `((x + 1) * 127.5).astype(np.uint8)`, i.e. truncated), scipy.misc.imresize to
               299x299 'bilinear' (PIL's bilinear resize of the uint8 image, uint8 out), then
               x / 127.5 - 1
  prediction   softmax over the logits without column 0 (the background): [N, 50]
  score        the images in a random order (np.random.shuffle), only floor(N / 64) * 64 of them
               (whole batches of 64), 10 contiguous splits [i N // 10, (i + 1) N // 10): per split
               exp(mean_x KL(p(y|x) || mean p(y))) with float32 numpy; mean and np.std (population)

`StackGANInception` reproduces this with PIL's resize (Pillow; scipy.misc.imresize called it) and
a seeded shuffle; `StackGANInceptionScore` streams generated batches through it for the
evaluation (metrics `stackgan_cub_is_10split_mean` / `_std`).
"""
import hashlib
import os
from typing import Dict, Optional

import numpy as np
import tensorflow as tf
from PIL import Image

from eval import slim_inception_v3
from eval.inception import InceptionUnavailableError

NAME = "stackgan_cub"
CUB_CLASSES = 50  # test classes of the CUB zero-shot split StackGAN evaluates on
IMAGE_SIZE = 299
SCRIPT_BATCH = 64  # inception_score.py --batch_size: only whole batches are scored
CHECKPOINT_SOURCE = (
    "StackGAN's fine-tuned Inception-v3 (model.ckpt-5000 of inception_finetuned_models/"
    "birds_valid299), from the Google Drive link in the README of "
    "https://github.com/hanzhanggit/StackGAN-inception-model (\"StackGAN inception model for "
    "birds and flowers evaluation\")")


class StackGANInceptionUnavailableError(InceptionUnavailableError):
  """The checkpoint is not given, not there, or not this network; the message says what to do
  (an InceptionUnavailableError, which run.py reports as an error line)."""


def checkpoint_sha256(prefix: str) -> str:
  """sha256 over the checkpoint's files (index and data shards), sorted by name."""
  directory, base = os.path.split(prefix)
  digest = hashlib.sha256()
  for name in sorted(os.listdir(directory or ".")):
    if name.startswith(base + ".") and not name.endswith(".meta"):
      digest.update(name[len(base):].encode() + b"\0")
      with open(os.path.join(directory, name), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):  # pylint: disable=cell-var-from-loop
          digest.update(block)
  return "sha256:" + digest.hexdigest()


def quantize(images) -> np.ndarray:
  """Float images in [-1, 1] -> uint8 as AttnGAN saves its samples ((x + 1) * 127.5, truncated)."""
  return np.clip((np.asarray(images, np.float32) + 1.0) * 127.5, 0, 255).astype(np.uint8)


def preprocess(images_uint8) -> np.ndarray:
  """uint8 [N, H, W, 3] -> float32 [N, 299, 299, 3]: PIL bilinear resize (scipy.misc.imresize's
  'bilinear'), then x / 127.5 - 1, as inception_score.py's preprocess."""
  out = np.empty([len(images_uint8), IMAGE_SIZE, IMAGE_SIZE, 3], np.float32)
  for i, image in enumerate(images_uint8):
    resized = Image.fromarray(image, "RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
    out[i] = np.asarray(resized, np.float32) / 127.5 - 1.0
  return out


def stackgan_inception_score(probs, splits: int = 10, seed: Optional[int] = 0,
                             batch_size: int = SCRIPT_BATCH):
  """(mean, std, scores) of inception_score.py's get_inception_score on predictions [N, C].

  The script shuffles the images (unseeded; here `seed`, None keeps the given order) and scores
  the first floor(N / batch_size) * batch_size of that order (its batch loop drops the rest).
  """
  probs = np.asarray(probs, np.float32)
  order = np.arange(len(probs)) if seed is None else np.random.RandomState(seed).permutation(
      len(probs))
  preds = probs[order[:len(probs) // batch_size * batch_size]]
  if len(preds) < splits:
    raise ValueError(f"{len(probs)} images leave {len(preds)} in whole batches of {batch_size}: "
                     f"fewer than the {splits} splits")
  scores = []
  for i in range(splits):
    part = preds[i * len(preds) // splits:(i + 1) * len(preds) // splits]
    kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
    scores.append(np.exp(np.mean(np.sum(kl, 1))))
  return float(np.mean(scores)), float(np.std(scores)), np.array(scores)


class StackGANInception:
  """uint8 images -> StackGAN's predictions: softmax over the logits without the background."""

  def __init__(self, variables: Dict[str, np.ndarray], *, source: str, content_hash: str,
               depth_divisor: int = 1, averaged: bool = True):
    self._variables = {k: tf.constant(v) for k, v in variables.items()}
    self.num_classes = int(variables[slim_inception_v3.LOGITS_BIASES].shape[0])
    self.source, self.content_hash, self.averaged = source, content_hash, averaged
    self._forward = tf.function(
        lambda x: slim_inception_v3.forward(self._variables, x, depth_divisor),
        input_signature=[tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32)])

  def logits(self, images_uint8) -> np.ndarray:
    """All logits [N, 1 + classes] (column 0: background) of uint8 images [N, H, W, 3]."""
    return self._forward(tf.constant(preprocess(images_uint8)))[0].numpy()

  def predictions(self, images_uint8) -> np.ndarray:
    """pred_op: softmax(logits[:, 1:]) [N, classes]."""
    known = self.logits(images_uint8)[:, 1:]
    return tf.nn.softmax(known).numpy()

  @property
  def protocol(self) -> dict:
    return {"classifier": NAME, "checkpoint": self.source, "checkpoint_sha256": self.content_hash,
            "weights": "ExponentialMovingAverage" if self.averaged else "training values",
            "classes": self.num_classes - 1, "background_class_dropped": True,
            "preprocessing": "uint8 (AttnGAN's truncation), PIL bilinear to 299, x / 127.5 - 1"}


def load(checkpoint: Optional[str], depth_divisor: int = 1, averaged: bool = True,
         expect_classes: int = CUB_CLASSES) -> StackGANInception:
  """The classifier from the authors' checkpoint prefix (.../model.ckpt-5000).

  Raises:
    StackGANInceptionUnavailableError: no checkpoint given or there, or not this network (the
      message names the mismatching keys and shapes, or the class count).
  """
  flag = "--stackgan_inception_checkpoint"
  if not checkpoint:
    raise StackGANInceptionUnavailableError(
        f"the {NAME} Inception score needs {CHECKPOINT_SOURCE}; download it and pass its prefix "
        f"as {flag}=DIR/model.ckpt-5000")
  if not tf.io.gfile.exists(checkpoint + ".index"):
    raise StackGANInceptionUnavailableError(
        f"{flag}={checkpoint}: no {checkpoint}.index there. Give the checkpoint prefix (the path "
        f"without .index / .data-*) of {CHECKPOINT_SOURCE}")
  try:
    variables, report = slim_inception_v3.load_checkpoint(checkpoint, averaged, depth_divisor)
  except (slim_inception_v3.CheckpointMismatchError, tf.errors.OpError, ValueError) as e:
    raise StackGANInceptionUnavailableError(
        f"{flag}={checkpoint} is not StackGAN's evaluation Inception: {e}") from None
  if report.num_classes != expect_classes + 1:
    raise StackGANInceptionUnavailableError(
        f"{flag}={checkpoint} has {report.num_classes} logits; StackGAN's CUB model has "
        f"{expect_classes} + 1 (background). {report.num_classes - 1} + 1 is another fine-tuning "
        f"(the flowers model has 20 + 1)")
  return StackGANInception(variables, source=checkpoint, content_hash=checkpoint_sha256(checkpoint),
                           depth_divisor=depth_divisor, averaged=averaged)


class StackGANInceptionScore:
  """Streams generated batches (float [B, H, W, 3] in [-1, 1]) through StackGAN's classifier;
  result() gives the 10-split score as inception_score.py computes it, and its protocol."""

  def __init__(self, classifier: StackGANInception, splits: int = 10, seed: int = 0):
    self.classifier, self.splits, self.seed = classifier, splits, seed
    self._preds = []

  def update(self, images):
    self._preds.append(self.classifier.predictions(quantize(images)))

  def result(self):
    preds = np.concatenate(self._preds) if self._preds else np.zeros([0, 1], np.float32)
    mean, std, _ = stackgan_inception_score(preds, self.splits, self.seed)
    scored = len(preds) // SCRIPT_BATCH * SCRIPT_BATCH
    key = f"{NAME}_is_{self.splits}split"
    protocol = {**self.classifier.protocol, "num_generated": len(preds), "num_scored": scored,
                "is_splits": self.splits, "shuffle_seed": self.seed,
                "note": f"inception_score.py scores whole batches of {SCRIPT_BATCH} only"}
    return {f"{key}_mean": mean, f"{key}_std": std}, {NAME: protocol}
