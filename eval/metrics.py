"""Metric functions on activations and logits, computed with TF-GAN's eval functions.

Everything here is pure: numpy or tensors in, Python floats out. Which network made the
activations is the caller's business and goes into the metric's name (`digits_fid` vs `fid`).
"""
import numpy as np
import tensorflow as tf
import tensorflow_gan as tfgan


def frechet_distance(acts_a, acts_b) -> float:
  """Frechet distance between Gaussians fitted to two activation sets, in float64.

  Uses `tfgan.eval.frechet_classifier_distance_from_activations` (symmetric matrix square root).
  Args:
    acts_a, acts_b: [N, D] activations (N may differ between the two).
  """
  a = np.asarray(acts_a, np.float64)
  b = np.asarray(acts_b, np.float64)
  if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
    raise ValueError(f"activations must be [N, D] with equal D, got {a.shape} and {b.shape}")
  if len(a) < 2 or len(b) < 2:
    raise ValueError("Frechet distance needs at least 2 samples per set")
  value = tfgan.eval.frechet_classifier_distance_from_activations(
      tf.constant(a), tf.constant(b))
  return float(value)


def classifier_score(logits) -> float:
  """Classifier score exp(E_x KL(p(y|x) || p(y))) as TF-GAN computes it: one value, no splits."""
  logits = np.asarray(logits, np.float64)
  if logits.ndim != 2:
    raise ValueError(f"logits must be [N, classes], got {logits.shape}")
  return float(tfgan.eval.classifier_score_from_logits(tf.constant(logits)))
