"""This project's SAGAN training step next to TF-GAN's own SAGAN example, interleaved in one process.

  python -m bench.tfgan_example                                # 16:8 and 32:16, 2 rounds
  python -m bench.tfgan_example --settings=16:8 --rounds=3 --steps=10
  python -m bench.tfgan_example --ours=default,gan_estimator   # our engines side by side

TF-GAN's example is `tensorflow_gan.examples.self_attention_estimator` imported from the installed
wheel (not copied): `train_experiment.make_estimator` (its GANEstimator and RunConfig) trained with
`train_experiment.train_eval_input_fn` on its own fake data (`DebugParams.fake_data`: zero images,
zero noise, labels 0). Python 3.11 needs the `inspect.getargspec` shim (estimators.compat) and its
data_provider's absl flags are marked parsed (nothing here parses a command line for them).

Both sides: 128 px, gf = df = WIDTH, batch BATCH, 1000 classes, attention at 32x32 (the example's
fixed layout), z 128, float32, Adam lr_G 1e-4 / lr_D 4e-4, beta1 0 and beta2 0.999 (the example
passes only beta1), TF-GAN's spectral-norm bound (W / max(1, sigma) outside attention), one D step
per G step, no EMA, no checkpoint or summary inside the timed window. Ours trains through
`bench.train_step.run_one` (our estimator as `run.py` builds it) on 64 random images held in memory.

Rounds alternate TF-GAN and each of our engine variants in one process, so they share whatever
else the machine runs at that moment; a contender's images/s is the median over rounds, and the
ratio column is each variant's median over TF-GAN's. A timed window starts after --warmup steps
(graph build, session start, step-0 checkpoint and summaries) and ends with the last step.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if sys.path[0] != ROOT:
  sys.path.insert(0, ROOT)

IMAGE_SIZE, NUM_CLASSES, ATTENTION, Z_DIM = 128, 1000, 32, 128
LR_G, LR_D, BETA1, BETA2 = 1e-4, 4e-4, 0.0, 0.999  # the example's Adam(lr, beta1)
DEFAULT_SETTINGS = "16:8,32:16"  # WIDTH:BATCH (gf = df = WIDTH)

# Our engine variants: name -> GANConfig overrides ('+' joins several: one_device+xla).
VARIANTS = {
    "default": {},                                   # whatever `python run.py` trains with
    "gan_estimator": {"distribution": "none"},       # TF-GAN's GANEstimator (sequential hooks)
    "one_device": {"distribution": "one_device"},    # the in-graph D-then-G step
    "xla": {"xla": True},
}


def parse_settings(text):
  """'16:8,32:16' -> [(width, batch)]."""
  settings = []
  for item in filter(None, (s.strip() for s in text.split(","))):
    width, sep, batch = item.partition(":")
    if not sep or not width.isdigit() or not batch.isdigit() or not int(width) or not int(batch):
      raise ValueError(f"setting {item!r} is not WIDTH:BATCH with positive integers (e.g. 16:8)")
    if int(width) % 8:
      raise ValueError(f"setting {item!r}: the attention block needs a width divisible by 8")
    settings.append((int(width), int(batch)))
  if not settings:
    raise ValueError("no settings given")
  return settings


def parse_variants(text):
  """'default,gan_estimator+xla' -> [(name, overrides)]."""
  variants = []
  for item in filter(None, (s.strip() for s in text.split(","))):
    overrides = {}
    for part in item.split("+"):
      if part not in VARIANTS:
        raise ValueError(f"engine variant {part!r} unknown; choose from {', '.join(VARIANTS)} "
                         "(join with '+')")
      overrides.update(VARIANTS[part])
    variants.append((item, overrides))
  if not variants:
    raise ValueError("no engine variants given")
  return variants


def _import_tfgan_example():
  """The example's train_experiment module from the installed wheel, importable on Py 3.11."""
  from estimators import compat  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  from absl import flags  # pylint: disable=import-outside-toplevel
  from tensorflow_gan.examples.self_attention_estimator import train_experiment  # pylint: disable=import-outside-toplevel
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()  # data_provider's --imagenet_data_dir keeps its default
  return train_experiment


def run_tfgan(width, batch, *, steps, warmup):
  """Trains TF-GAN's example warmup + steps steps; returns {'images_per_sec', ...}."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from bench.train_step import _step_timer_hook  # pylint: disable=import-outside-toplevel
  te = _import_tfgan_example()
  total = warmup + steps
  with tempfile.TemporaryDirectory(prefix="bench_tfgan_example_") as tmp:
    hparams = te.HParams(
        train_batch_size=batch, eval_batch_size=batch, predict_batch_size=batch,
        generator_lr=LR_G, discriminator_lr=LR_D, beta1=BETA1, gf_dim=width, df_dim=width,
        num_classes=NUM_CLASSES, shuffle_buffer_size=1, z_dim=Z_DIM, model_dir=tmp,
        max_number_of_steps=total, train_steps_per_eval=10 * total + 1000, num_eval_steps=1,
        debug_params=te.DebugParams(use_tpu=False, eval_on_tpu=False, fake_nets=False,
                                    fake_data=True, continuous_eval_timeout_secs=None),
        tpu_params=te.TPUParams(use_tpu_estimator=False, tpu_location=None, gcp_project=None,
                                tpu_zone=None, tpu_iterations_per_loop=1))
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    estimator = te.make_estimator(hparams)
    timer = _step_timer_hook(warmup)
    estimator.train(te.train_eval_input_fn, max_steps=total, hooks=[timer])
  return _rate(timer.timed(), batch, steps)


def run_ours(width, batch, overrides, *, steps, warmup):
  from bench import train_step  # pylint: disable=import-outside-toplevel
  config = train_step.Config("sagan", IMAGE_SIZE, width, width, batch, ATTENTION)
  same = dict(generator_lr=LR_G, discriminator_lr=LR_D, beta1=BETA1, beta2=BETA2,
              sn_bound="tfgan")  # z 128: run_one's
  same.update(overrides)
  distribution = same.pop("distribution", None)
  xla = same.pop("xla", False)
  result = train_step.run_one(config, steps=steps, warmup=warmup, num_classes=NUM_CLASSES,
                              distribution=distribution, xla=xla, overrides=same)
  return {"images_per_sec": result["images_per_sec"], "median_step_ms": result["median_step_ms"],
          "engine": result["distribution"]}


def _rate(timed, batch, steps):
  if len(timed) != steps + 1:
    raise RuntimeError(f"expected {steps} timed steps, the hook saw {len(timed) - 1}")
  seconds = timed[-1] - timed[0]
  step_ms = [1000 * (b - a) for a, b in zip(timed, timed[1:])]
  return {"images_per_sec": batch * steps / seconds, "median_step_ms": statistics.median(step_ms)}


def format_table(rows):
  """rows: [(setting, contender, [images/s per round], ratio or None)] -> markdown."""
  lines = ["| gf = df | batch | contender | images/s per round | median images/s | vs TF-GAN |",
           "|---:|---:|---|---|---:|---:|"]
  for (width, batch), name, rates, ratio in rows:
    per_round = ", ".join(f"{r:.1f}" for r in rates)
    lines.append(f"| {width} | {batch} | {name} | {per_round} | {statistics.median(rates):.1f} "
                 f"| {'1.00 (reference)' if ratio is None else f'{ratio:.2f}x'} |")
  return "\n".join(lines)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--settings", default=DEFAULT_SETTINGS,
                 help=f"WIDTH:BATCH,... with gf = df = WIDTH at 128 px (default {DEFAULT_SETTINGS})")
  p.add_argument("--ours", default="default",
                 help=f"our engine variants, comma-separated, each from {', '.join(VARIANTS)} "
                 "or several joined by '+' (default: default)")
  p.add_argument("--rounds", type=int, default=2, help="alternating rounds (>= 1)")
  p.add_argument("--steps", type=int, default=8, help="timed steps per contender and round")
  p.add_argument("--warmup", type=int, default=3, help="untimed steps first (>= 1)")
  args = p.parse_args(argv)
  try:
    settings, variants = parse_settings(args.settings), parse_variants(args.ours)
  except ValueError as e:
    p.error(str(e))
  if args.rounds < 1 or args.steps < 1 or args.warmup < 1:
    p.error("--rounds, --steps and --warmup must be >= 1")
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  load_before, start = os.getloadavg()[0], time.time()
  rows, engines = [], {}
  for setting in settings:
    rates = {"TF-GAN example": []}
    rates.update({name: [] for name, _ in variants})
    for r in range(args.rounds):
      # Alternate who goes first, so neither always runs right after a graph build.
      order = [("TF-GAN example", None)] + variants
      order = order if r % 2 == 0 else order[::-1]
      for name, overrides in order:
        width, batch = setting
        kw = dict(steps=args.steps, warmup=args.warmup)
        result = (run_tfgan(width, batch, **kw) if overrides is None
                  else run_ours(width, batch, overrides, **kw))
        engines[name] = result.get("engine", "GANEstimator (TF-GAN's hooks)")
        rates[name].append(result["images_per_sec"])
        print(f"  gf=df={width} batch {batch} round {r + 1} {name}: "
              f"{result['images_per_sec']:.2f} images/s", file=sys.stderr, flush=True)
    reference = statistics.median(rates["TF-GAN example"])
    for name, values in rates.items():
      rows.append((setting, name, values,
                   None if name == "TF-GAN example" else statistics.median(values) / reference))
  print(f"\n128 px, {NUM_CLASSES} classes, attention at {ATTENTION}x{ATTENTION}, float32; "
        f"{args.warmup} warm-up + {args.steps} timed steps per contender, {args.rounds} "
        f"alternating rounds in one process; {os.cpu_count()} CPUs, load average "
        f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}; ran {time.time() - start:.0f} s. "
        "Engines: " + "; ".join(f"{k} = {v}" for k, v in engines.items()) + "\n")
  print(format_table(rows))
  return rows


if __name__ == "__main__":
  main()
