"""Benchmark: R-precision of generated images streams (AttnGAN evaluation, 30,000 images).

  python -m bench.r_precision [--images=3000,30000] [--pool=30000] [--batch_size=100]

One subprocess per image count runs `estimators.models.damsm.r_precision_record` (both
protocols, 'paper' and 'dmgan') over batches of generated images that are made on the fly and
dropped after scoring, against a fixed pool of candidate captions (CUB's test split has 29,330),
and reports its peak resident memory (Linux VmHWM). The pool's sentence features are the same
size in every run; what could grow with the image count is only what the accumulators keep per
query (one float32). Target: peak at 30,000 images within 10% of 3,000.

The DAMSM is a randomly initialised one with the paper's D = 256 and the small CNN image encoder
at 32 px (Inception at 299 px would take hours for 30,000 images on a CPU and streams the same
way); its scores are meaningless, the memory is what is measured.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=wrong-import-position
from absl import flags  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from bench.memory import status_kb  # pylint: disable=wrong-import-position

def define_flags(fv=flags.FLAGS):
  """Defines this benchmark's flags in `fv`; returns it. Called when it runs, not
  on import: run.py and bench/eval.py define flags of the same names (--batch_size), and
  the tests import them all into one process."""
  flags.DEFINE_list("images", ["3000", "30000"], "Generated-image counts, one subprocess each.",
                    flag_values=fv)
  flags.DEFINE_integer("pool", 30_000, "Candidate captions in the pool (CUB test: 29,330).",
                       flag_values=fv)
  flags.DEFINE_integer("batch_size", 100, "Generated images per batch.", flag_values=fv)
  flags.DEFINE_integer("words", 18, "Words per caption (CUB WORDS_NUM).", flag_values=fv)
  flags.DEFINE_integer("child", 0, "Internal: run one measurement with N images.", flag_values=fv)
  return fv


FLAGS = flags.FLAGS
VOCAB = 5450  # CUB's vocabulary size


def _tiny_damsm():
  from data import text  # pylint: disable=import-outside-toplevel
  from estimators.models import damsm  # pylint: disable=import-outside-toplevel
  config = {"image_encoder": "small_cnn", "embedding_dim": 256, "word_dim": 300,
            "words_num": FLAGS.words, "image_size": 32, "cnn_width": 32, "vocab_size": VOCAB,
            "image_weights_source": "small_cnn: random (benchmark)"}
  text_encoder, image_encoder = damsm.build_encoders(config)
  vocab = text.Vocabulary(["<end>"] + [f"w{i}" for i in range(1, VOCAB)])
  return damsm.Damsm(text_encoder, image_encoder, vocab, config, "(random, benchmark)",
                     "sha256:none")


def _captions(rng, n):
  lengths = rng.randint(4, FLAGS.words + 1, size=n).astype(np.int32)
  ids = rng.randint(1, VOCAB, size=(n, FLAGS.words)).astype(np.int32)
  ids[np.arange(FLAGS.words)[None, :] >= lengths[:, None]] = 0
  return ids, lengths


PER_IMAGE = 10  # captions per image (CUB's)
NUM_CLASSES = 50
NEGATIVES = 99  # both protocols: the true caption + 99 mismatching ones


def pool_keys_of(pool):
  """{'image_ids', 'class_ids'}: [pool] each caption's image (10 captions each) and class."""
  images = np.arange(pool) // PER_IMAGE
  return {"image_ids": images, "class_ids": images % NUM_CLASSES}


def pool_problem(pool):
  """Why a pool of `pool` captions cannot score the queries, or None: every query draws 99
  captions of other images ('paper') and of other classes ('dmgan') from it."""
  for name, keys in pool_keys_of(pool).items():
    fewest = pool - int(np.bincount(keys).max())  # mismatching captions of the worst key
    if fewest < NEGATIVES:
      smallest = next(p for p in range(pool, 100 * pool + 1000)
                      if all(p - int(np.bincount(k).max()) >= NEGATIVES
                             for k in pool_keys_of(p).values()))
      return (f"--pool={pool} is too small: a query needs {NEGATIVES} mismatching captions "
              f"and the pool holds {fewest} with another {name[:-4]}; use --pool={smallest} "
              "or more")
  return None


def child(num_images):
  """Scores num_images generated images; prints 'peak_kb seconds mean_paper mean_dmgan'."""
  from estimators.models import damsm  # pylint: disable=import-outside-toplevel
  model = _tiny_damsm()
  rng = np.random.RandomState(0)
  pool_ids, pool_lengths = _captions(rng, FLAGS.pool)
  per_image = PER_IMAGE
  pool_keys = pool_keys_of(FLAGS.pool)

  def batches():
    for start in range(0, num_images, FLAGS.batch_size):
      b = min(FLAGS.batch_size, num_images - start)
      rows = (np.arange(start, start + b) * per_image) % FLAGS.pool  # each image's first caption
      yield {"images": rng.uniform(-1, 1, (b, 32, 32, 3)).astype(np.float32),
             "captions": pool_ids[rows], "caption_length": pool_lengths[rows],
             "image_ids": pool_keys["image_ids"][rows], "class_ids": pool_keys["class_ids"][rows]}

  start = time.time()
  record = damsm.r_precision_record(model, batches(), pool_ids, pool_lengths, pool_keys,
                                    caption_split="synthetic")
  print(status_kb("VmHWM"), round(time.time() - start, 1),
        record["metrics"]["r_precision_paper"], record["metrics"]["r_precision_dmgan"])


def main(argv):
  del argv
  problem = pool_problem(FLAGS.pool)
  if problem:  # before any child starts (each would fail on its first batch)
    raise app.UsageError(problem)
  if FLAGS.child:
    child(FLAGS.child)
    return
  rows = []
  for n in (int(v) for v in FLAGS.images):
    proc = subprocess.run(
        [sys.executable, "-m", "bench.r_precision", f"--child={n}", f"--pool={FLAGS.pool}",
         f"--batch_size={FLAGS.batch_size}", f"--words={FLAGS.words}"],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        capture_output=True, text=True, check=True)
    peak_kb, seconds, paper, dmgan = proc.stdout.split()[-4:]
    rows.append((n, int(peak_kb) / 1024, float(seconds), float(paper), float(dmgan)))
  base = rows[0][1]
  print(f"Pool of {FLAGS.pool:,} captions, both protocols, batches of {FLAGS.batch_size}; a random "
        "D = 256 DAMSM (small CNN at 32 px), so R-precision is near chance (0.01).\n")
  print("| generated images | peak RSS (MB) | vs first | time (s) | R-prec paper | R-prec dmgan |")
  print("|---:|---:|---:|---:|---:|---:|")
  for n, peak, seconds, paper, dmgan in rows:
    print(f"| {n:,} | {peak:.0f} | {peak / base:.3f} | {seconds:.1f} | {paper:.4f} | "
          f"{dmgan:.4f} |")


if __name__ == "__main__":
  define_flags()
  app.run(main)
