"""This project's LadaGAN training step next to the official TF code's, interleaved in one process.

  python -m bench.lada_official --official_dir=CHECKOUT/tensorflow            # batch 16 and 64
  python -m bench.lada_official --official_dir=DIR --batches=16 --steps=8 --ours=default,xla
  python -m bench.lada_official --official_dir=DIR --setup --rounds=2         # set-up time
  python -m bench.lada_official --official_dir=DIR --breakdown --batches=16 --steps=3  # per op

The official side is milmor/LadaGAN's tensorflow/ directory (a checkout or `git archive` of it,
never copied into this project): its model.py Generator and Discriminator, trainer.py's LadaGAN
and utils.py's 'nsl' losses, imported from --official_dir (huggingface_hub, which only its
release downloader uses, is stubbed). Its `train_step` is a tf.function with jit_compile=True
(XLA, the code's default); the `official_no_xla` contender runs the same Python function under
tf.function(jit_compile=False). It reads a batch per step from a tf.data iterator as train.py
does (here 64 random images held in memory, cached, repeated, batched, prefetched).

Ours trains through `bench.train_step.run_one` (our estimator as `run.py` builds it, the default
in-graph step; `xla`: --xla, auto-clustering, TF_XLA_FLAGS=--tf_xla_cpu_global_jit set before
TensorFlow starts, which compiles nothing outside a session that asks for it).

Both sides: the CIFAR-10 release config (32 px, z 128, G widths 1024/256/64, 4 heads, MLP 512,
D 128/256 then 512/1024, no conv decoder), DiffAugment color,translation on reals and fakes,
R1 (1e-4) every step on the augmented reals, no bCR, non-saturating loss, Adam 2e-4 (0.5, 0.99,
Keras epsilon 1e-7), EMA 0.999 of all G weights, D step then G step with fresh noise, float32.

Contenders take turns step by step (bench.tfgan_example's `Turns`): only one computes at a time
and neighbouring steps see the same background load. A step is timed from taking the turn to the
start of the contender's next step. The first --warmup steps (building, tracing, XLA compiling,
the step-0 checkpoint) are not timed; images/s = batch / median step time; the ratio is each
contender's images/s over the faster official contender's. Peak RSS is the process's (all
contenders together); each contender's RSS growth over its build and first steps is shown.

The table's last column is the process's CPU seconds over the step's wall seconds (how many of
the cores the contender kept busy; only the contender holding the turn computes).

--breakdown: the official XLA-off step and ours take turns as above, each step after the warm-up
under tf.profiler; bench.op_profile reads each trace (one event per executed node, for the eager
tf.function and the estimator session alike) and the tables give both sides' op milliseconds per
step (summed over threads) by bucket (G / D, forward / backward, optimiser, other) and by op
type. LADA_PROFILE_DUMP=FILE also writes the raw per-step node times (name, type, us, thread,
start) as JSON.

--setup: seconds from a fresh process's start to the end of the first training step, ours
(bench.setup_time's `measure` of ladagan:paper, run.py's flags from
configs/ladagan_cifar10_paper.cfg) against the official code at the same paper config (bCR 1.0,
color,translation,cutout, batch 128), as its train.py does it (Config, G and D built and called
once, LadaGAN, Adam, create_ckpt, the dataset iterator, the first train_step with its tracing and
XLA compilation), each in its own process, rows alternating for --rounds.
"""
import argparse
import concurrent.futures
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if sys.path[0] != ROOT:
  sys.path.insert(0, ROOT)

from bench.memory import status_kb  # pylint: disable=wrong-import-position
from bench.tfgan_example import Turns, turn_hook  # pylint: disable=wrong-import-position

# The CIFAR-10 release's config.json (official config.py keys), as ladagan_import reads it.
RELEASE = dict(img_size=32, noise_dim=128, g_dim=[1024, 256, 64], g_heads=[4, 4, 4],
               g_mlp=[512, 512, 512], d_enc_dim=[128, 256], d_out_dim=[512, 1024], d_heads=4,
               d_mlp=512, dec_dim=False, g_lr=2e-4, g_beta1=0.5, g_beta2=0.99, d_lr=2e-4,
               d_beta1=0.5, d_beta2=0.99, gp_weight=1e-4, policy="color,translation",
               loss="nsl", ema_decay=0.999, bcr=False, cr_weight=0.1,
               g_initializer="orthogonal", d_initializer="orthogonal")
# configs/ladagan_cifar10_paper.cfg in the official code's terms (set-up time).
PAPER = dict(RELEASE, batch_size=128, policy="color,translation,cutout", bcr=True, cr_weight=1.0)
OFFICIAL = {"official_xla": True, "official_no_xla": False}  # name -> jit_compile
OURS = {"default": {}, "xla": {"xla": True}}
NUM_IMAGES = 64


def check_official_dir(official_dir):
  """ValueError unless `official_dir` holds the official tensorflow/ modules this bench runs."""
  missing = [f for f in ("model.py", "trainer.py", "utils.py", "diffaug.py")
             if not os.path.isfile(os.path.join(official_dir, f))]
  if missing:
    raise ValueError(f"--official_dir={official_dir} is not milmor/LadaGAN's tensorflow/ "
                     f"directory (missing {', '.join(missing)}); `git archive` the repository "
                     "and pass its tensorflow/ folder")


def import_official(official_dir):
  """(model, trainer, utils) modules of the official tensorflow/ directory."""
  check_official_dir(official_dir)
  if official_dir not in sys.path:
    sys.path.insert(0, official_dir)
  sys.modules.setdefault("huggingface_hub", types.SimpleNamespace(hf_hub_download=None))
  import model, trainer, utils  # pylint: disable=import-outside-toplevel,import-error
  return model, trainer, utils


def build_official(official_dir, settings, jit_compile):
  """(step(), its LadaGAN) as train.py builds it; step() reads a batch and trains one step."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  model, trainer, utils = import_official(official_dir)
  conf = types.SimpleNamespace(**settings)
  noise = tf.random.normal([conf.batch_size, conf.noise_dim])
  generator = model.Generator(img_size=conf.img_size, model_dim=conf.g_dim, heads=conf.g_heads,
                              mlp_dim=conf.g_mlp, dec_dim=conf.dec_dim)
  generator(noise)
  discriminator = model.Discriminator(
      img_size=conf.img_size, enc_dim=conf.d_enc_dim, out_dim=conf.d_out_dim,
      heads=conf.d_heads, mlp_dim=conf.d_mlp, initializer=conf.d_initializer)
  discriminator(tf.ones([conf.batch_size, conf.img_size, conf.img_size, 3]))
  gan = trainer.LadaGAN(generator=generator, discriminator=discriminator, conf=conf)
  g_loss, d_loss = utils.get_loss(conf.loss)
  gan.build(g_optimizer=tf.keras.optimizers.Adam(conf.g_lr, conf.g_beta1, conf.g_beta2),
            d_optimizer=tf.keras.optimizers.Adam(conf.d_lr, conf.d_beta1, conf.d_beta2),
            g_loss=g_loss, d_loss=d_loss)
  images = tf.random.stateless_uniform([NUM_IMAGES, conf.img_size, conf.img_size, 3], [1, 2],
                                       minval=-1.0, maxval=1.0)
  # repeat before batching: a batch larger than the images held (the paper config's 128) too
  data = iter(tf.data.Dataset.from_tensor_slices(images).cache().shuffle(NUM_IMAGES).repeat()
              .batch(conf.batch_size, drop_remainder=True).prefetch(2))
  raw = type(gan).train_step.python_function  # the decorated method's own Python function
  train_step = tf.function(functools.partial(raw, gan), jit_compile=jit_compile)

  def step():
    train_step(next(data))
  return step, gan


def train_official(official_dir, batch, jit_compile, total, hook):
  """Trains the official code `total` steps, calling the turn hook as an estimator would."""
  step, _ = build_official(official_dir, dict(RELEASE, batch_size=batch), jit_compile)
  for _ in range(total):
    hook.before_run(None)
    step()
  hook.end(None)
  return f"official train_step, tf.function(jit_compile={jit_compile})"


def train_ours(batch, overrides, total, hook):
  from bench import train_step  # pylint: disable=import-outside-toplevel
  config = train_step.Config("ladagan", 32, None, None, batch, None)
  same = dict(overrides)
  xla = same.pop("xla", False)
  result = train_step.run_one(config, steps=total - 1, warmup=1, xla=xla, overrides=same,
                              hooks=[hook])
  return f"engine {result['engine']}, xla {xla}"


def compare(official_dir, batch, official, ours, *, steps, warmup, profile_dir=None):
  """{name: (description, [seconds of each timed step], RSS growth MB)}, step-interleaved;
  with `profile_dir` each timed step is profiled (profiling_hook) into profile_dir/<name>."""
  total = warmup + steps
  contenders = [(n, None) for n in official] + [(n, OURS[n]) for n in ours]
  turns = Turns([name for name, _ in contenders])

  def run(name, overrides):  # in the contender's own thread; hands the turn on when done
    hook = cpu_hook(turn_hook(turns, name))
    if profile_dir:
      hook = profiling_hook(hook, warmup, os.path.join(profile_dir, name))
    turns.acquire(name)
    rss = status_kb("VmRSS")
    try:
      description = (train_official(official_dir, batch, OFFICIAL[name], total, hook)
                     if overrides is None else train_ours(batch, overrides, total, hook))
      cores = [c / w for c, w in zip(hook.cpu_seconds[warmup:], hook.wall_seconds[warmup:])]
      return (description, hook.step_seconds[warmup:], (status_kb("VmRSS") - rss) / 1024,
              statistics.median(cores) if cores else float("nan"))
    finally:
      turns.release(name, finished=True)

  with concurrent.futures.ThreadPoolExecutor(len(contenders)) as pool:
    futures = {name: pool.submit(run, name, overrides) for name, overrides in contenders}
  results = {name: future.result() for name, future in futures.items()}  # re-raises a failure
  short = [name for name, (_, timed, *_) in results.items() if len(timed) != steps]
  if short:
    raise RuntimeError(f"{short}: fewer than {steps} timed steps")
  return results


def rows_of(batch, results):
  """[(batch, name, images/s at the median step, median ms, ratio vs the best official, RSS,
  CPU cores busy)]."""
  rates = {n: batch / statistics.median(s) for n, (_, s, *_) in results.items()}
  best = max(rates[n] for n in results if n in OFFICIAL)
  return [(batch, n, rates[n], 1000 * statistics.median(s),
           None if n in OFFICIAL else rates[n] / best, rss, cores)
          for n, (_, s, rss, cores) in results.items()]


# --- per-op breakdown (--breakdown) -------------------------------------------------------------

def cpu_hook(hook):
  """Wraps a turn hook: records each step's process CPU seconds (all threads; only the contender
  holding the turn computes) beside its wall seconds, in `cpu_seconds` / `wall_seconds`."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  class Cpu(tf.estimator.SessionRunHook):
    def __init__(self):
      self.step_seconds = hook.step_seconds
      self.cpu_seconds, self.wall_seconds, self._start = [], [], None

    def _finish(self):
      if self._start is not None:
        self.cpu_seconds.append(time.process_time() - self._start[0])
        self.wall_seconds.append(time.perf_counter() - self._start[1])
        self._start = None

    def before_run(self, run_context):
      self._finish()
      hook.before_run(run_context)
      self._start = (time.process_time(), time.perf_counter())

    def end(self, session):
      self._finish()
      hook.end(session)
  return Cpu()


def profiling_hook(hook, warmup, logdir):
  """Wraps a turn hook: each step after the first `warmup` runs under tf.profiler (started once
  the turn is taken, stopped before it is handed on), its trace in logdir/<step>."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  class Profiled(tf.estimator.SessionRunHook):
    def __init__(self):
      self.count, self.active = 0, False
      self.step_seconds = hook.step_seconds
      self.cpu_seconds, self.wall_seconds = hook.cpu_seconds, hook.wall_seconds

    def _stop(self):
      if self.active:
        tf.profiler.experimental.stop()
        self.active = False

    def before_run(self, run_context):
      self._stop()
      self.count += 1
      hook.before_run(run_context)
      if self.count > warmup:
        tf.profiler.experimental.start(os.path.join(logdir, str(self.count)))
        self.active = True

    def after_run(self, run_context, run_values):  # (ours) before the end's checkpoint
      self._stop()

    def end(self, session):
      self._stop()
      hook.end(session)
  return Profiled()


def breakdown(official_dir, batch, *, steps, warmup, logdir):
  """{'official_no_xla': summary, 'ours': summary} (bench.op_profile.summarise): the two take
  turns step by step (as `compare`), each step after the warm-up under tf.profiler."""
  from bench import op_profile  # pylint: disable=import-outside-toplevel
  compare(official_dir, batch, ["official_no_xla"], ["default"], steps=steps, warmup=warmup,
          profile_dir=logdir)
  raw = {}
  for name in ("official_no_xla", "default"):
    raw[name] = [op_profile.op_times(os.path.join(logdir, name, str(k)), True)
                 for k in range(warmup + 1, warmup + steps + 1)]
  if os.environ.get("LADA_PROFILE_DUMP"):  # the raw node times, for a closer look
    with open(os.environ["LADA_PROFILE_DUMP"], "w", encoding="utf-8") as f:
      json.dump(raw, f)
  return {("ours" if name == "default" else name):
          op_profile.summarise([t for step in per_step for t in step], steps)
          for name, per_step in raw.items()}


def format_breakdown(sides, top=25):
  """Markdown: buckets, then the `top` op types by the larger side's ms/step."""
  names = list(sides)
  lines = ["| bucket | " + " | ".join(f"{n} ms/step" for n in names) + " |",
           "|---|" + "---:|" * len(names)]
  buckets = sorted({b for s in sides.values() for b in s[1]})
  for b in buckets + ["total"]:
    cells = [s[2] if b == "total" else s[1].get(b, 0.0) for s in sides.values()]
    lines.append(f"| {b} | " + " | ".join(f"{c:,.1f}" for c in cells) + " |")
  kinds = sorted({k for s in sides.values() for k in s[0]},
                 key=lambda k: -max(s[0].get(k, 0.0) for s in sides.values()))
  lines += ["", "| op type | " + " | ".join(f"{n} ms/step" for n in names) + " |",
            "|---|" + "---:|" * len(names)]
  for k in kinds[:top]:
    lines.append(f"| {k} | " + " | ".join(f"{s[0].get(k, 0.0):,.1f}" for s in sides.values())
                 + " |")
  rest = [sum(v for k, v in s[0].items() if k not in kinds[:top]) for s in sides.values()]
  lines.append(f"| {len(kinds) - top} other types | " + " | ".join(f"{r:,.1f}" for r in rest)
               + " |")
  return "\n".join(lines)


def format_table(rows):
  lines = ["| batch | contender | median ms/step | images/s (median step) | vs best official "
           "| RSS growth MB | CPU s / wall s |", "|---:|---|---:|---:|---:|---:|---:|"]
  for batch, name, rate, ms, ratio, rss, cores in rows:
    label = name if name in OFFICIAL else f"ours {name}"
    lines.append(f"| {batch} | {label} | {ms:,.0f} | {rate:.2f} | "
                 f"{'-' if ratio is None else f'{ratio:.2f}x'} | {rss:,.0f} | {cores:.2f} |")
  return "\n".join(lines)


# --- set-up time --------------------------------------------------------------------------------

def official_setup_one(official_dir, process_start):
  """Seconds from `process_start` to the end of the official code's first step (this process)."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # as train.py
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  imported = time.time()
  with tempfile.TemporaryDirectory(prefix="bench_lada_official_") as tmp:
    step, gan = build_official(official_dir, PAPER, jit_compile=True)
    gan.create_ckpt(tmp, max_ckpt_to_keep=2, restore_best=False)
    built = time.time()
    step()
    tf.reduce_sum(gan.generator.weights[0]).numpy()  # the step has finished
  done = time.time()
  return {"start": imported - process_start, "build": built - imported,
          "first step": done - built, "total": done - process_start}


def _official_setup(official_dir):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
             PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
  start = time.time()
  out = subprocess.run([sys.executable, "-m", "bench.lada_official", "--setup_one",
                        f"--official_dir={official_dir}", f"--start={start!r}"],
                       env=env, cwd=ROOT, capture_output=True, text=True)
  if out.returncode != 0:
    return {"error": (out.stderr.strip().splitlines() or ["(no stderr)"])[-1]}
  return json.loads(out.stdout.strip().splitlines()[-1])


def setup_rounds(official_dir, rounds):
  """{'ours': [totals], 'official': [totals]} and the last rounds' phase dicts."""
  from bench import setup_time  # pylint: disable=import-outside-toplevel
  totals, last = {"official": [], "ours": []}, {}
  for index in range(rounds):
    for name in ("official", "ours"):
      r = _official_setup(official_dir) if name == "official" else setup_time.measure(
          "ladagan", "paper")
      if "error" in r:
        raise RuntimeError(f"set-up time, {name}: {r['error']}")
      totals[name].append(r["total"])
      last[name] = r
      print(f"  set-up round {index + 1}, {name}: {r['total']:.1f} s", file=sys.stderr,
            flush=True)
  return totals, last


def format_setup(totals, last):
  official = statistics.median(totals["official"])
  lines = ["| code | phases (last round), s | total s (median) | vs official |",
           "|---|---|---:|---:|"]
  for name in ("official", "ours"):
    phases = ", ".join(f"{k} {v:.1f}" for k, v in last[name].items() if k != "total")
    total = statistics.median(totals[name])
    lines.append(f"| {name} | {phases} | {total:.1f} | {total / official:.2f}x |")
  return "\n".join(lines)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--official_dir", required=True,
                 help="milmor/LadaGAN's tensorflow/ directory (a checkout or git archive)")
  p.add_argument("--batches", default="16,64", help="comma-separated batch sizes")
  p.add_argument("--official", default=",".join(OFFICIAL),
                 help=f"official contenders from {', '.join(OFFICIAL)}")
  p.add_argument("--ours", default=",".join(OURS), help=f"ours from {', '.join(OURS)}")
  p.add_argument("--steps", type=int, default=6, help="timed steps per contender")
  p.add_argument("--warmup", type=int, default=2, help="untimed steps first (>= 1)")
  p.add_argument("--setup", action="store_true", help="also the set-up time (fresh processes)")
  p.add_argument("--rounds", type=int, default=1, help="--setup rounds (median)")
  p.add_argument("--breakdown", action="store_true",
                 help="per-op time (tf.profiler) of the official XLA-off step and ours instead")
  p.add_argument("--setup_one", action="store_true", help=argparse.SUPPRESS)
  p.add_argument("--start", type=float, help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  official_dir = os.path.abspath(args.official_dir)
  try:
    check_official_dir(official_dir)
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    official = [n for n in args.official.split(",") if n.strip()]
    ours = [n for n in args.ours.split(",") if n.strip()]
    unknown = [n for n in official if n not in OFFICIAL] + [n for n in ours if n not in OURS]
    if unknown or not official or min(batches, default=1) < 1 or not (batches or args.setup):
      raise ValueError(f"unknown contenders {unknown}, or no official contender, or a bad batch "
                       "(--batches= with nothing needs --setup)")
  except ValueError as e:
    p.error(str(e))
  if args.setup_one:
    print(json.dumps(official_setup_one(official_dir, args.start)))
    return None
  if args.steps < 1 or args.warmup < 1:
    p.error("--steps and --warmup must be >= 1")
  if args.breakdown:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import_official(official_dir)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_lada_profile_") as logdir:
      for batch in batches:
        sides = breakdown(official_dir, batch, steps=args.steps, warmup=args.warmup,
                          logdir=os.path.join(logdir, str(batch)))
        print(f"\nbatch {batch}: op time per step (tf.profiler, summed over threads), "
              f"{args.warmup} warm-up + {args.steps} profiled steps per side, the sides "
              f"alternating step by step; load average {load:.1f} -> {os.getloadavg()[0]:.1f}\n")
        print(format_breakdown(sides))
    return None
  if "xla" in ours:  # before TensorFlow's first device
    from estimators.engines import precision  # pylint: disable=import-outside-toplevel
    precision.allow_cpu_autoclustering()
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import_official(official_dir)  # before any thread imports it
  load_before, began = os.getloadavg()[0], time.time()
  rows, descriptions = [], {}
  for batch in batches:  # none with --setup --batches=
    results = compare(official_dir, batch, official, ours, steps=args.steps, warmup=args.warmup)
    for name, (description, *_) in results.items():
      descriptions[name] = description
    rows += rows_of(batch, results)
    for row in rows[-len(results):]:
      print(f"  batch {batch} {row[1]}: {row[2]:.2f} images/s", file=sys.stderr, flush=True)
  if rows:
    print(f"\nLadaGAN CIFAR-10 release config, float32; {args.warmup} warm-up + {args.steps} "
          f"timed steps per contender, interleaved step by step in one process; "
          f"{os.cpu_count()} CPUs, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}; "
          f"peak RSS {status_kb('VmHWM') / 1024:,.0f} MB (all contenders); ran "
          f"{time.time() - began:.0f} s. "
          + "; ".join(f"{k}: {v}" for k, v in descriptions.items()) + "\n")
    print(format_table(rows))
  if args.setup:
    totals, last = setup_rounds(official_dir, args.rounds)
    print(f"\nSet-up, seconds from a fresh process's start to the end of the first step, paper "
          f"config (bCR, cutout, batch 128), median of {args.rounds} round(s), rows "
          f"alternating; load average {os.getloadavg()[0]:.1f}\n")
    print(format_setup(totals, last))
  return rows


if __name__ == "__main__":
  main()
