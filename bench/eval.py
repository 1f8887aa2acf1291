"""Benchmark of the evaluation pipeline: throughput overhead and memory growth with sample count.

  python bench/eval.py [--inception_path=DIR] [--tfhub_cache_dir=DIR] [--throughput_samples=256]
                       [--memory_samples=5000,50000]

1. Throughput: images/s through the classifier alone (resize to 299 + forward) and through
   `eval.evaluate.evaluate` streaming the same batches (accumulators included; real statistics
   cached beforehand), plus the fixed finalisation time (FID on 2048-d moments, KID, P/R), which
   does not depend on the sample count. Target: streaming overhead < 10% of the bare forward.
   Uses the TF-GAN Inception if `load_inception` finds it offline (no download is attempted),
   else a stand-in with Inception's cost (Keras InceptionV3, random weights), and says so.
2. Memory: one subprocess per sample count runs a full `evaluate` with the cheap stand-in
   classifier (same 1008/2048 outputs, resize to 299 included) and reports its peak RSS.
   Target: 50k within 10% of 5k. The feature subsets for KID and P/R are protocol buffers of
   at most `feature_subset_size` rows per side (float32, plus float64 copies while KID and P/R
   run); the runs use `--memory_feature_subset_size` (default 5000) so both hold the same
   buffers. With the 10000 default, the 5k run holds only 5000 rows and the 50k run ~160 MB
   more. Linux only (/proc VmHWM).
"""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=wrong-import-position
from absl import flags  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from bench.memory import status_kb  # pylint: disable=wrong-import-position
from eval import inception  # pylint: disable=wrong-import-position  (defines --tfhub_cache_dir)

def define_flags(fv=flags.FLAGS):
  """Defines this benchmark's flags in `fv`; returns it. Called when it runs, not
  on import: run.py and bench/r_precision.py define flags of the same names (--batch_size), and
  the tests import them all into one process."""
  flags.DEFINE_string("inception_path", None,
                      "Local TF-GAN Inception module (else cache/stand-in).", flag_values=fv)
  flags.DEFINE_integer("throughput_samples", 256, "Generated images timed for throughput.",
                       flag_values=fv)
  flags.DEFINE_integer("rounds", 2, "Alternating timing rounds; the best of each is reported.",
                       flag_values=fv)
  flags.DEFINE_integer("batch_size", 64, "Images per classifier call.", flag_values=fv)
  flags.DEFINE_integer("image_size", 32, "Resolution of the synthetic generated/real images.",
                       flag_values=fv)
  flags.DEFINE_list("memory_samples", ["5000", "50000"], "Sample counts for the memory runs.",
                    flag_values=fv)
  flags.DEFINE_integer("memory_real_samples", 5000, "Real images in the memory runs.",
                       flag_values=fv)
  flags.DEFINE_integer("feature_subset_size", 10_000, "KID / precision-recall subset per side.",
                       flag_values=fv)
  flags.DEFINE_integer("memory_feature_subset_size", 5000,
                       "Feature subset in the memory runs: at most the smallest sample count, so "
                       "every run holds the same protocol buffers and only streaming can differ.",
                       flag_values=fv)
  flags.DEFINE_list("parts", ["memory", "throughput"], "Which measurements to run.", flag_values=fv)
  flags.DEFINE_integer("memory_child", 0, "Internal: run one memory measurement with N samples.",
                       flag_values=fv)
  return fv


FLAGS = flags.FLAGS

PROVENANCE = {"seed": 0, "checkpoint_step": None, "ema_weights": False}


def _random_images(rng, n, size):
  return np.tanh(rng.normal(0, 1, size=(n, size, size, 3))).astype(np.float32)


def _real_dataset(n, size, seed):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  images = _random_images(np.random.RandomState(seed), n, size)
  return tf.data.Dataset.from_tensor_slices({"images": images})


def _classifier_for_throughput():
  from eval import standin_classifier  # pylint: disable=import-outside-toplevel
  try:
    classifier = inception.load_inception(FLAGS.inception_path, FLAGS.tfhub_cache_dir,
                                          allow_download=False)
    return classifier, f"TF-GAN Inception from {classifier.source}"
  except inception.InceptionUnavailableError:
    model = standin_classifier.inception_v3_standin()
    classifier = inception.InceptionClassifier(
        model, content_hash="standin:keras_inception_v3_random", source="standin")
    return classifier, ("STAND-IN: Keras InceptionV3 with random weights (TF-GAN Inception not "
                        "found offline); same cost, its values are not IS/FID")


class _TimedClassifier:
  """Passes calls through and adds up the seconds spent inside the classifier."""

  def __init__(self, inner):
    self.inner, self.seconds = inner, 0.0
    self.content_hash, self.protocol = inner.content_hash, inner.protocol

  def __call__(self, images):
    start = time.perf_counter()
    outputs = self.inner(images)
    self.seconds += time.perf_counter() - start
    return outputs


def _throughput():
  from eval import evaluate as evaluate_lib  # pylint: disable=import-outside-toplevel
  classifier, description = _classifier_for_throughput()
  n, b = FLAGS.throughput_samples, FLAGS.batch_size
  batches = [_random_images(np.random.RandomState(i), b, FLAGS.image_size)
             for i in range(-(-n // b))]
  timed = _TimedClassifier(classifier)
  settings = dict(num_samples=n, cache_key_parts={"dataset": "bench", "split": "synthetic"},
                  provenance=PROVENANCE, num_real_samples=2 * b, batch_size=b,
                  cache_dir=tempfile.mkdtemp(prefix="bench_eval_"),
                  feature_subset_size=FLAGS.feature_subset_size)
  real = _real_dataset(2 * b, FLAGS.image_size, seed=10_000)
  evaluate_lib.evaluate(iter(batches), real, timed, **settings)  # warm-up, fills the real cache
  bare, streamed = [], []
  for _ in range(FLAGS.rounds):  # alternate, keep the best of each: the CPU may be shared
    start = time.perf_counter()
    for batch in batches:
      classifier(batch)
    bare.append(time.perf_counter() - start)
    timed.seconds = 0.0
    result = evaluate_lib.evaluate(iter(batches), real, timed, **settings)
    assert result.protocol["real_stats_cached"]
    streamed.append((result.timing["generated_seconds"], timed.seconds,
                     result.timing["finalize_seconds"]))
  bare_s = min(bare)
  stream_s, inside_s, finalize_s = min(streamed)
  return [
      ("classifier", description),
      ("classifier alone (resize + forward), images/s", f"{n / bare_s:.2f}"),
      ("evaluate() streaming, images/s", f"{n / stream_s:.2f}"),
      ("streaming overhead vs classifier alone",
       f"{100 * (stream_s - bare_s) / bare_s:+.1f}% (target < 10%)"),
      ("  of which outside classifier calls (accumulators)",
       f"{100 * (stream_s - inside_s) / inside_s:+.1f}%"),
      ("fixed finalize (FID 2048-d, KID, P/R), s", f"{finalize_s:.1f} (once per evaluation)"),
      ("images timed x rounds / batch size", f"{n} x {FLAGS.rounds} / {b}"),
  ]


def _memory_child(num_samples):
  """Runs one full evaluation with the cheap stand-in; prints peak RSS and buffer sizes."""
  from eval import evaluate as evaluate_lib  # pylint: disable=import-outside-toplevel
  from eval import standin_classifier  # pylint: disable=import-outside-toplevel
  classifier = inception.InceptionClassifier(
      standin_classifier.StandinModule(), content_hash="standin:projection", source="standin")
  rng = np.random.RandomState(1)
  sampler = lambda: _random_images(rng, FLAGS.batch_size, FLAGS.image_size)
  result = evaluate_lib.evaluate(
      sampler, _real_dataset(FLAGS.memory_real_samples, FLAGS.image_size, seed=2), classifier,
      num_samples=num_samples, cache_key_parts={"dataset": "bench", "split": "synthetic"},
      provenance=PROVENANCE, num_real_samples=FLAGS.memory_real_samples,
      batch_size=FLAGS.batch_size, feature_subset_size=FLAGS.feature_subset_size)
  rows = result.protocol["num_generated_features"] + result.protocol["num_real_features"]
  subset_mb = rows * 2048 * 4 / 2**20
  peak_mb = status_kb("VmHWM") / 1024
  seconds = sum(result.timing.values())
  print(f"RESULT {num_samples} {peak_mb:.0f} {subset_mb:.0f} {seconds:.0f}")


def _memory():
  rows, peaks = [], {}
  for count in FLAGS.memory_samples:
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), f"--memory_child={count}",
         f"--feature_subset_size={FLAGS.memory_feature_subset_size}",
         f"--memory_real_samples={FLAGS.memory_real_samples}", f"--batch_size={FLAGS.batch_size}",
         f"--image_size={FLAGS.image_size}"],
        check=True, capture_output=True, text=True).stdout
    _, n, peak, subset, seconds = next(l for l in out.splitlines() if l.startswith("RESULT")).split()
    peaks[int(n)] = float(peak)
    rows.append((f"peak RSS, {int(n)} samples (stand-in, subset "
                 f"{FLAGS.memory_feature_subset_size})",
                 f"{peak} MB (feature subsets {subset} MB, {seconds} s)"))
  low, high = min(peaks), max(peaks)
  rows.append((f"peak RSS {high} vs {low}",
               f"{100 * (peaks[high] - peaks[low]) / peaks[low]:+.1f}% (target within 10%)"))
  return rows


def main(argv):
  del argv
  if FLAGS.memory_child:
    _memory_child(FLAGS.memory_child)
    return
  rows = (_memory() if "memory" in FLAGS.parts else []) + (
      _throughput() if "throughput" in FLAGS.parts else [])
  width = max(len(name) for name, _ in rows)
  print(f"| {'measurement'.ljust(width)} | value |")
  print(f"|{'-' * (width + 2)}|-------|")
  for name, value in rows:
    print(f"| {name.ljust(width)} | {value} |")


if __name__ == "__main__":
  define_flags()
  app.run(main)
