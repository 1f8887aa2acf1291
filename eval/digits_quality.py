"""digits_fid and digits_score of a generator, on the digits classifier's features and logits."""
import numpy as np

from data.digits import digits_arrays
from eval import digits_classifier
from eval.metrics import classifier_score, frechet_distance


def evaluate_digits(image_batches, real_split="train", classifier=None):
  """Streams generated batches through the classifier; returns (metrics, protocol).

  Args:
    image_batches: iterable of [b, 32, 32, 3] float arrays in [-1, 1].
    real_split: digits split used as the real reference.
  """
  classifier = classifier or digits_classifier.load_classifier()
  feats, logits = [], []
  for batch in image_batches:
    f, l = classifier(np.asarray(batch, np.float32), training=False)
    feats.append(f.numpy())
    logits.append(l.numpy())
  feats, logits = np.concatenate(feats), np.concatenate(logits)
  real_images, _ = digits_arrays(real_split, 32)
  real_feats = classifier.predict(real_images, batch_size=256, verbose=0)[0]
  metrics = {"digits_fid": frechet_distance(real_feats, feats),
             "digits_score": classifier_score(logits)}
  protocol = {"num_generated": int(len(feats)), "num_real": int(len(real_feats)),
              "real_split": f"digits/{real_split}", "classifier":
              f"digits_classifier_{digits_classifier.recipe_hash()}", "features": "fc128",
              "score_splits": 1}
  return metrics, protocol
