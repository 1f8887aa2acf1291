"""Generator-agnostic evaluation: stream samples through Inception, return metrics + protocol.

`evaluate` takes batches of generated images from any source (a checkpoint's generator, a
SavedModel, a test array), streams them and the real images through the classifier with the
accumulators of `eval.streaming`, and returns an `EvalResult`. Real-data statistics come from
the on-disk cache when present (`eval.real_stats_cache`).

Metric names (sample-count convention: every metric of one record uses the same
`protocol.num_generated` generated samples and `protocol.num_real` real ones; names carry no
counts, the protocol does, and values are comparable only at equal protocols):
  inception_score                TF-GAN's Inception score of all generated samples (one value).
  inception_score_<S>split_mean  Salimans et al.: mean and population std over S contiguous
  inception_score_<S>split_std   splits of N/S samples (standard: 50000 samples, S = 10).
  fid                            Frechet distance of pool_3 Gaussians, float64, all N samples
                                 vs all real samples (streamed moments).
  kid_mean, kid_stderr           KID with TF-GAN's block estimator on the feature subsets;
                                 kid_stderr is TF-GAN's standard error (null for one block).
  precision_k<k>, recall_k<k>    improved precision/recall on the feature subsets.
Feature subsets: uniform random `feature_subset_size` pool_3 rows of each side (all of them when
there are fewer), `protocol.feature_subset_size`; that buffer is all that is kept per sample.
"""
import time
from typing import Callable, Iterable, NamedTuple, Union

import numpy as np
import tensorflow as tf

from data import registry
from eval import metrics
from eval import real_stats_cache
from eval import streaming

REQUIRED_PROVENANCE = ("seed", "checkpoint_step", "ema_weights")
REQUIRED_CACHE_KEY_PARTS = ("dataset", "split")


class EvalResult(NamedTuple):
  """metrics: name -> float or None; protocol: how they were made; timing: seconds per stage."""
  metrics: dict
  protocol: dict
  timing: dict

  def to_record(self) -> dict:
    """The metrics.jsonl / TensorBoard record (see `eval.metrics_log`)."""
    return {"step": self.protocol.get("checkpoint_step"),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "metrics": dict(self.metrics), "protocol": dict(self.protocol),
            "timing": dict(self.timing)}


def with_resolved_data_options(cache_key_parts: dict) -> dict:
  """The key parts plus 'resolved_data_options': every loader option of a registered dataset
  with its value, defaults included (data.registry.resolved_options of the given
  'data_options'), so that a changed default changes the key: statistics cached when
  `jpeg_downscale` defaulted to true (issue 17) are not reused now that it defaults to false.
  'data_options' keeps the given options that differ from the defaults, so giving a default
  explicitly reuses the default's entry. Pipeline options (shuffle_buffer_mb) are left out of
  both: they shape training batches only. A dataset that is not registered gets no resolved
  options.
  """
  parts = dict(cache_key_parts)
  given = {k: v for k, v in (parts.pop("data_options", None) or {}).items()
           if k not in registry.PIPELINE_OPTIONS}
  resolved = None
  if registry.is_registered(parts["dataset"]):
    resolved = {k: v for k, v in registry.resolved_options(parts["dataset"], given).items()
                if k not in registry.PIPELINE_OPTIONS}
    defaults = registry.resolved_options(parts["dataset"])
    given = {k: v for k, v in given.items() if v != defaults[k]}
  if given:
    parts["data_options"] = given
  if resolved is not None:
    parts["resolved_data_options"] = resolved
  return parts


def evaluate(sample_batches: Union[Iterable, Callable[[], object]], real_dataset: tf.data.Dataset,
             classifier, *, num_samples: int, cache_key_parts: dict, provenance: dict,
             num_real_samples: int = 50_000, splits: int = 10, batch_size: int = 64,
             cache_dir: str = None, feature_subset_size: int = 10_000,
             kid_block_size: int = 1024, pr_k: int = 3, subset_seed: int = 0) -> EvalResult:
  """Inception score, FID, KID and precision/recall of generated samples, with provenance.

  Args:
    sample_batches: an iterable of image batches, or a zero-argument callable returning one
      batch per call: float32 [B, H, W, 3] in [-1, 1] (numpy or tensors). Consumed until
      `num_samples` images arrived (the last batch is cut); ending early is an error.
    real_dataset: unbatched tf.data.Dataset of dict elements with 'images' [H, W, 3] in [-1, 1],
      in random order: its first `num_real_samples` elements are used.
    classifier: `eval.inception.InceptionClassifier` or any object with the same
      `__call__(images) -> {'logits', 'pool_3'}`, `content_hash` and `protocol`.
    num_samples: generated samples (standard protocol: 50000).
    cache_key_parts: what identifies the real data: must hold 'dataset' and 'split'; add
      resolution, preprocessing and anything else that changes the real images.
    provenance: recorded as given; must hold 'seed' (sampling seed), 'checkpoint_step' (None
      for a SavedModel) and 'ema_weights' (bool).
    num_real_samples: real samples to use at most (fewer if the split is smaller; recorded).
    splits: Inception-score splits. batch_size: real-image batch size through the classifier.
    cache_dir: real-statistics cache directory; None disables the cache.
    feature_subset_size: pool_3 rows kept per side for KID and precision/recall.
    kid_block_size: TF-GAN's KID `max_block_size`. pr_k: precision/recall neighbourhood size.
    subset_seed: seed of the feature-subset reservoirs.
  """
  missing = [k for k in REQUIRED_PROVENANCE if k not in provenance]
  missing += [f"cache_key_parts[{k!r}]" for k in REQUIRED_CACHE_KEY_PARTS
              if k not in cache_key_parts]
  if missing:
    raise ValueError(f"evaluate() needs provenance keys {missing}")
  timing = {}
  start = time.perf_counter()
  real_key = {**with_resolved_data_options(cache_key_parts),
              # the classifier by content, not by where it was loaded from
              **{k: v for k, v in classifier.protocol.items() if k != "classifier_source"},
              "real_image_spec": str(real_dataset.element_spec["images"]),
              "num_real_samples_requested": num_real_samples,
              "feature_subset_size": feature_subset_size, "subset_seed": subset_seed}
  real, real_cached = real_stats_cache.load_or_compute(
      cache_dir, real_key, lambda: _real_stats(real_dataset, classifier, num_real_samples,
                                               batch_size, feature_subset_size, subset_seed))
  timing["real_seconds"] = time.perf_counter() - start

  start = time.perf_counter()
  scores = moments = reservoir = None
  seen = 0
  for batch in _batches(sample_batches):
    batch = _check_images(batch)[:num_samples - seen]
    outputs = classifier(batch)
    if scores is None:
      scores = streaming.SplitScoreAccumulator(num_samples, splits, outputs["logits"].shape[1])
      moments = streaming.MomentAccumulator(outputs["pool_3"].shape[1])
      reservoir = streaming.FeatureReservoir(feature_subset_size, outputs["pool_3"].shape[1],
                                             seed=subset_seed, expected_total=num_samples)
    scores.update(outputs["logits"])
    moments.update(outputs["pool_3"])
    reservoir.update(outputs["pool_3"])
    seen += len(batch)
    if seen >= num_samples:
      break
  if seen < num_samples:
    raise ValueError(f"sample_batches ended after {seen} of {num_samples} samples")
  timing["generated_seconds"] = time.perf_counter() - start

  start = time.perf_counter()
  split_scores = scores.split_scores()
  kid_mean, kid_stderr = metrics.kernel_inception_distance(
      real.features, reservoir.features, max_block_size=kid_block_size)
  precision, recall = metrics.improved_precision_recall(real.features, reservoir.features, pr_k)
  values = {
      "inception_score": scores.overall_score(),
      f"inception_score_{splits}split_mean": float(np.mean(split_scores)),
      f"inception_score_{splits}split_std": float(np.std(split_scores)),
      "fid": metrics.frechet_distance_from_moments(
          moments.mean, moments.covariance, real.mean, real.covariance),
      "kid_mean": kid_mean,
      "kid_stderr": kid_stderr if np.isfinite(kid_stderr) else None,
      f"precision_k{pr_k}": precision,
      f"recall_k{pr_k}": recall,
  }
  timing["finalize_seconds"] = time.perf_counter() - start
  protocol = {
      **provenance, **classifier.protocol,
      "num_generated": num_samples, "num_real": real.num_samples,
      "num_real_requested": num_real_samples, "real_dataset": cache_key_parts["dataset"],
      "real_split": cache_key_parts["split"], "real_data_key": real_key,
      "real_stats_cached": real_cached, "is_splits": splits, "fid_dtype": "float64",
      "feature_subset_size": feature_subset_size,
      "num_generated_features": len(reservoir.features),
      "num_real_features": len(real.features), "kid_block_size": kid_block_size,
      "pr_k": pr_k, "subset_seed": subset_seed,
  }
  return EvalResult(values, protocol, timing)


def _real_stats(dataset, classifier, num_real_samples, batch_size, subset_size, seed):
  images = dataset.map(lambda element: element["images"]).take(num_real_samples)
  moments = reservoir = None
  for batch in images.batch(batch_size).prefetch(2):
    pool = classifier(_check_images(batch))["pool_3"]  # [B, D]
    if moments is None:
      moments = streaming.MomentAccumulator(pool.shape[1])
      reservoir = streaming.FeatureReservoir(subset_size, pool.shape[1], seed=seed + 1,
                                             expected_total=num_real_samples)
    moments.update(pool)
    reservoir.update(pool)
  if moments is None or moments.count < 2:
    raise ValueError("the real dataset yielded fewer than 2 images")
  return real_stats_cache.RealStats(moments.count, moments.mean, moments.covariance,
                                    reservoir.features.copy())


def _batches(sample_batches):
  if callable(sample_batches) and not hasattr(sample_batches, "__iter__"):
    while True:
      yield sample_batches()
  else:
    yield from sample_batches


def _check_images(batch):
  if isinstance(batch, dict):
    batch = batch["images"]
  batch = np.asarray(batch, np.float32)
  if batch.ndim != 4 or batch.shape[-1] != 3:
    raise ValueError(f"image batches must be [B, H, W, 3], got {batch.shape}")
  low, high = float(batch.min()), float(batch.max())
  if low < -1.001 or high > 1.001:
    raise ValueError(f"images must be in [-1, 1], got values in [{low:.3g}, {high:.3g}]")
  return batch
