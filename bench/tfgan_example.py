"""This project's SAGAN training step next to TF-GAN's own SAGAN example, interleaved in one process.

  python -m bench.tfgan_example                                # 16:8 and 32:16
  python -m bench.tfgan_example --settings=16:8 --steps=20
  python -m bench.tfgan_example --ours=default,gan_estimator   # our engines side by side
  python -m bench.tfgan_example --model=ylg_sagan --settings=32:8,32:16 --ylg_dir=DIR
                                          # YLG-SAGAN against the official YLG code in DIR

With --model=ylg_sagan the reference is the official YLG code (giannisdaras/ylg: TF-GAN's example
with YLG's dense masked 8-head attention, `ops.sn_attention_block_sim`) imported from a checkout
given by --ylg_dir (the directory holding ylg/; not part of this project: fetch it yourself). Its
own input_fn reads `Dataset.output_shapes`, gone in TF 2.x, so it trains on TF-GAN's example's
input_fn (the same fake data: zero images and noise, labels 0). Without --ylg_dir the reference
is TF-GAN's example (SAGAN's dense single-head attention), and the table says so. YLG's 8 heads
need 64 channels at the discriminator's 32x32 block (2 df): gf = df >= 32.

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

All contenders train at once in one process, each in its own thread, but take turns step by step
(`Turns`): TF-GAN's step 1, ours step 1, TF-GAN's step 2, ... Only one computes at any moment and
neighbouring steps of different contenders see the same background load, so the ratio stays fair
on a shared machine even when absolute numbers do not. A step is timed from taking the turn to the
start of the contender's next step (every hook's session.run included). The first --warmup steps
(graph build, session start, step-0 checkpoint and summaries) are not timed; images/s = batch /
median step time (robust to a burst of load; the mean over all timed steps is shown too); the
ratio is each variant's images/s over TF-GAN's, both at the median step.
"""
import argparse
import os
import statistics
import sys
import tempfile
import threading
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
    "gan_estimator": {"engine": "gan_estimator"},    # TF-GAN's GANEstimator (sequential hooks)
    "in_graph": {"engine": "in_graph"},              # one train op: G update, then D update
    "one_device": {"distribution": "one_device"},    # the in-graph step under tf.distribute
    "xla": {"xla": True},
}


def parse_settings(text, model="sagan"):
  """'16:8,32:16' -> [(width, batch)]."""
  settings = []
  for item in filter(None, (s.strip() for s in text.split(","))):
    width, sep, batch = item.partition(":")
    if not sep or not width.isdigit() or not batch.isdigit() or not int(width) or not int(batch):
      raise ValueError(f"setting {item!r} is not WIDTH:BATCH with positive integers (e.g. 16:8)")
    if int(width) % 8:
      raise ValueError(f"setting {item!r}: the attention block needs a width divisible by 8")
    if model == "ylg_sagan" and int(width) % 32:
      raise ValueError(f"setting {item!r}: YLG's 8 heads need 64 channels at the "
                       "discriminator's 32x32 block (2 x df): a width divisible by 32")
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


class Turns:
  """Step-by-step interleaving of contenders that each train in their own thread.

  A contender waits for its turn before it builds its graph and before each step; it hands the
  turn on when its step (every hook included) is done, and after its last step only when its
  estimator.train has returned (end-of-training checkpoint included). So only one contender
  computes at a time, builds never overlap, and consecutive steps of different contenders see
  the same background load.
  """

  def __init__(self, names):
    self._order = list(names)
    self._turn = 0
    self._cond = threading.Condition()

  def acquire(self, name):
    with self._cond:
      self._cond.wait_for(lambda: self._order[self._turn] == name)

  def release(self, name, finished=False):
    with self._cond:
      index = self._order.index(name)
      if finished:
        self._order.pop(index)
        self._turn = index % len(self._order) if self._order else 0
      else:
        self._turn = (index + 1) % len(self._order)
      self._cond.notify_all()


def turn_hook(turns, name):
  """A SessionRunHook (first in the list) that takes turns and times each step from taking the
  turn to the start of the next step (its after_run hooks included); the last step ends at end()."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  class TurnHook(tf.estimator.SessionRunHook):
    def __init__(self):
      self.step_seconds = []
      self._start = None

    def _finish_step(self):
      if self._start is not None:
        self.step_seconds.append(time.perf_counter() - self._start)
        self._start = None

    def before_run(self, run_context):
      if self._start is not None:  # the previous step is over: hand on the turn
        self._finish_step()
        turns.release(name)
        turns.acquire(name)
      self._start = time.perf_counter()

    def end(self, session):
      self._finish_step()
  return TurnHook()


def import_ylg_official(ylg_dir):
  """The official YLG code's train_experiment module from a checkout (`ylg_dir`/ylg/*.py, flat
  imports: its directory goes on sys.path)."""
  path = os.path.join(os.path.abspath(ylg_dir), "ylg")
  if not os.path.isfile(os.path.join(path, "train_experiment.py")):
    raise ValueError(f"--ylg_dir {ylg_dir!r} has no ylg/train_experiment.py: give the root of a "
                     "checkout of giannisdaras/ylg")
  _import_tfgan_example()  # the getargspec shim; the flags marked parsed
  if path not in sys.path:
    sys.path.insert(0, path)
  import train_experiment  # pylint: disable=import-outside-toplevel,import-error
  if not train_experiment.__file__.startswith(path):
    raise ValueError(f"another train_experiment module ({train_experiment.__file__}) shadows "
                     f"the one in {path}")
  _adapt_ylg_networks(train_experiment)
  return train_experiment


def _adapt_ylg_networks(te):
  """The released train_experiment.py unpacks `generator(...)` and `discriminator(...)` as
  (output, variables), but the released generator.py returns (images, attention map) and
  discriminator.py (logits, features, attention map, variables): training as released fails
  (it iterates over the attention tensor). This hands train_experiment networks that return
  what it expects (the same graph: only the return values are picked), in this process only."""
  import types  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  gen, dis = te.gen_module, te.dis_module
  if getattr(gen, "_bench_adapted", False):
    return

  def generator(*args, **kwargs):
    images, _ = gen.generator(*args, **kwargs)
    return images, tf.compat.v1.trainable_variables("generator")

  def discriminator(*args, **kwargs):
    logits, _, _, variables = dis.discriminator(*args, **kwargs)
    return logits, variables
  te.gen_module = types.SimpleNamespace(**{**vars(gen), "generator": generator,
                                           "_bench_adapted": True})
  te.dis_module = types.SimpleNamespace(**{**vars(dis), "discriminator": discriminator})


def train_tfgan(width, batch, total, hooks, ylg_dir=None):
  """Trains TF-GAN's example (or, with `ylg_dir`, the official YLG code) `total` steps with
  `hooks` (its GANEstimator, TF-GAN's example's fake data)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  te = _import_tfgan_example()
  code = te if ylg_dir is None else import_ylg_official(ylg_dir)
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
    estimator = code.make_estimator(hparams)
    estimator.train(te.train_eval_input_fn, max_steps=total, hooks=hooks)
  return "GANEstimator (TF-GAN's sequential hooks, its MirroredStrategy RunConfig)"


def train_ours(width, batch, overrides, total, hooks, model="sagan"):
  from bench import train_step  # pylint: disable=import-outside-toplevel
  config = train_step.Config(model, IMAGE_SIZE, width, width, batch, ATTENTION)
  same = dict(generator_lr=LR_G, discriminator_lr=LR_D, beta1=BETA1, beta2=BETA2,
              sn_bound="tfgan")  # z 128: run_one's
  same.update(overrides)
  distribution = same.pop("distribution", None)
  xla = same.pop("xla", False)
  result = train_step.run_one(config, steps=total - 1, warmup=1, num_classes=NUM_CLASSES,
                              distribution=distribution, xla=xla, overrides=same, hooks=hooks)
  return f"engine {result['engine']}, distribution {result['distribution']}, xla {xla}"


def reference_name(model, ylg_dir):
  return "YLG official" if model == "ylg_sagan" and ylg_dir else "TF-GAN example"


def compare(setting, variants, *, steps, warmup, model="sagan", ylg_dir=None):
  """Trains the reference (TF-GAN's example, or the official YLG code for ylg_sagan with
  `ylg_dir`) and each variant of our `model` step-interleaved; returns
  {name: (engine description, [seconds of each timed step])}, the reference first."""
  width, batch = setting
  total = warmup + steps
  ylg_dir = ylg_dir if model == "ylg_sagan" else None
  contenders = [(reference_name(model, ylg_dir), None)] + list(variants)
  turns = Turns([name for name, _ in contenders])
  results, errors = {}, {}

  def run(name, overrides):
    hook = turn_hook(turns, name)
    turns.acquire(name)
    try:
      engine = (train_tfgan(width, batch, total, [hook], ylg_dir) if overrides is None
                else train_ours(width, batch, overrides, total, [hook], model))
      timed = hook.step_seconds[warmup:]
      if len(timed) != steps:
        raise RuntimeError(f"{name}: expected {steps} timed steps, got {len(timed)}")
      results[name] = (engine, timed)
    except BaseException as e:  # pylint: disable=broad-except  (reported below)
      errors[name] = e
    finally:
      turns.release(name, finished=True)

  threads = [threading.Thread(target=run, args=c, name=c[0]) for c in contenders]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  if errors:
    name, error = next(iter(errors.items()))
    raise RuntimeError(f"{name} failed: {error!r}") from error
  return {name: results[name] for name, _ in contenders}


def format_table(rows, reference="TF-GAN"):
  """rows: [((width, batch), contender, images/s at the median step, images/s over all timed
  steps, median ms/step, ratio or None)] -> markdown."""
  lines = ["| gf = df | batch | contender | median ms/step | images/s (median step) "
           f"| images/s (all timed steps) | vs {reference} (median step) |",
           "|---:|---:|---|---:|---:|---:|---:|"]
  for (width, batch), name, rate, mean_rate, median_ms, ratio in rows:
    lines.append(f"| {width} | {batch} | {name} | {median_ms:,.0f} | {rate:.1f} | {mean_rate:.1f} "
                 f"| {'1.00 (reference)' if ratio is None else f'{ratio:.2f}x'} |")
  return "\n".join(lines)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--settings", default=DEFAULT_SETTINGS,
                 help=f"WIDTH:BATCH,... with gf = df = WIDTH at 128 px (default {DEFAULT_SETTINGS})")
  p.add_argument("--ours", default="default",
                 help=f"our engine variants, comma-separated, each from {', '.join(VARIANTS)} "
                 "or several joined by '+' (default: default)")
  p.add_argument("--model", default="sagan", choices=("sagan", "ylg_sagan"),
                 help="our model; ylg_sagan is compared with the official YLG code if --ylg_dir "
                 "is given, else with TF-GAN's example")
  p.add_argument("--ylg_dir", help="root of a checkout of giannisdaras/ylg (holding ylg/)")
  p.add_argument("--steps", type=int, default=8, help="timed steps per contender and round")
  p.add_argument("--warmup", type=int, default=3, help="untimed steps first (>= 1)")
  args = p.parse_args(argv)
  try:
    settings, variants = parse_settings(args.settings, args.model), parse_variants(args.ours)
    if args.ylg_dir and args.model == "ylg_sagan":
      import_ylg_official(args.ylg_dir)  # before any thread imports it
  except ValueError as e:
    p.error(str(e))
  if any(overrides.get("xla") for _, overrides in variants):  # before TensorFlow's first device
    from estimators.engines import precision  # pylint: disable=import-outside-toplevel
    precision.allow_cpu_autoclustering()
  if args.steps < 1 or args.warmup < 1:
    p.error("--steps and --warmup must be >= 1")
  _import_tfgan_example()  # the shim and the flags, before any thread imports it
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  load_before, start = os.getloadavg()[0], time.time()
  rows, engines = [], {}
  for setting in settings:
    results = compare(setting, variants, steps=args.steps, warmup=args.warmup, model=args.model,
                      ylg_dir=args.ylg_dir)
    reference = None
    for name, (engine, seconds) in results.items():
      engines[name] = engine
      median_ms = statistics.median(seconds) * 1000
      rate = setting[1] * 1000 / median_ms  # the median step: robust to a burst of load
      reference = reference or rate
      rows.append((setting, name, rate, setting[1] * len(seconds) / sum(seconds), median_ms,
                   None if name == reference_name(args.model, args.ylg_dir) else rate / reference))
      print(f"  gf=df={setting[0]} batch {setting[1]} {name}: {rate:.2f} images/s",
            file=sys.stderr, flush=True)
  ref = reference_name(args.model, args.ylg_dir)
  print(f"\n{args.model} against {ref}{'' if args.model == 'sagan' or args.ylg_dir else ' (no --ylg_dir: the official YLG code not given)'}; "
        f"128 px, {NUM_CLASSES} classes, attention at {ATTENTION}x{ATTENTION}, float32; "
        f"{args.warmup} warm-up + {args.steps} timed steps per contender, interleaved step by "
        f"step in one process; {os.cpu_count()} CPUs, load average "
        f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}; ran {time.time() - start:.0f} s. "
        "Engines: " + "; ".join(f"{k}: {v}" for k, v in engines.items()) + "\n")
  print(format_table(rows, ref))
  return rows


if __name__ == "__main__":
  main()
