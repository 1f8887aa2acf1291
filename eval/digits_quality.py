"""digits_fid and digits_score of a generator, on the digits classifier's features and logits.

`DigitsQuality` accumulates generated batches (it keeps the 128-d features and 10 logits per
sample: 1000 samples are 0.5 MB) so that one pass over generated images can feed it and the
Inception evaluation together.
"""
import numpy as np

from data.digits import digits_arrays
from eval import digits_classifier
from eval.metrics import classifier_score, frechet_distance


CLASSIFIER_SIZE = 32  # the digits classifier's input (eval/digits_classifier.py)


class DigitsQuality:
  """update(batch [b, S, S, 3] in [-1, 1]) repeatedly, then result() -> (metrics, protocol).

  The classifier reads 32 px: batches of another size (a run at --image_size=128, e.g. released
  weights imported at their size and scored on digits) are area-resized to 32 px first, and the
  protocol says so."""

  def __init__(self, real_split="train", classifier=None):
    self.real_split = real_split
    self.classifier = classifier or digits_classifier.load_classifier()
    self._feats, self._logits = [], []
    self._resized_from = None

  def update(self, batch):
    batch = np.asarray(batch, np.float32)
    if batch.shape[1:3] != (CLASSIFIER_SIZE, CLASSIFIER_SIZE):
      import tensorflow as tf  # pylint: disable=import-outside-toplevel
      self._resized_from = int(batch.shape[1])
      batch = tf.image.resize(batch, [CLASSIFIER_SIZE, CLASSIFIER_SIZE], method="area")
    f, l = self.classifier(batch, training=False)
    self._feats.append(f.numpy())
    self._logits.append(l.numpy())

  def result(self):
    feats, logits = np.concatenate(self._feats), np.concatenate(self._logits)
    real_images, _ = digits_arrays(self.real_split, 32)
    real_feats = self.classifier.predict(real_images, batch_size=256, verbose=0)[0]
    metrics = {"digits_fid": frechet_distance(real_feats, feats),
               "digits_score": classifier_score(logits)}
    protocol = {"num_generated": int(len(feats)), "num_real": int(len(real_feats)),
                "real_split": f"digits/{self.real_split}",
                "classifier": f"digits_classifier_{digits_classifier.recipe_hash()}",
                "features": "fc128", "score_splits": 1}
    if self._resized_from:
      protocol["generated_resize"] = (f"{self._resized_from} px -> {CLASSIFIER_SIZE} px, "
                                      "area")
    return metrics, protocol


def evaluate_digits(image_batches, real_split="train", classifier=None):
  """Streams generated batches through the classifier; returns (metrics, protocol)."""
  quality = DigitsQuality(real_split, classifier)
  for batch in image_batches:
    quality.update(batch)
  return quality.result()
