"""Training-step speed of any registered model's real training step on synthetic in-memory data.

  python -m bench.train_step                      # quick CPU defaults: 32 and 64 px, batch 16
  python -m bench.train_step --full               # paper scale: 128 px, gf = df = 64, batch 256
  python -m bench.train_step --configs=sagan:64:32:32 --steps=20 --distribution=mirrored
  python -m bench.train_step --configs=attngan:32:paper:4 --set=branch_num=2 --set=damsm_dir=DIR

Each config, MODEL:IMAGE_SIZE:GF[/DF]:BATCH[:ATTENTION] (DF defaults to GF, BATCH is the global
batch, ATTENTION the attention block's feature-map size; for models without gf/df, e.g.
`ladagan:32:paper:16`, WIDTHS `paper` keeps the model's own widths at that image size), runs in
its own subprocess: `estimators.engines.build.build_estimator` on a GANConfig, trained
with `estimator.train` on 64 random images held in memory (`make_train_input_fn`'s dataset_fn
hook, cached, so input costs next to nothing), with random captions when the model draws from
captions (the first embedded dataset it accepts decides: estimators.replica_check). --set
passes run settings or hyperparameters (`--set=NAME=VALUE`); the model's `prepare` runs first,
so a model that reads files of its own gets them from --set (AttnGAN: --set=damsm_dir=DIR of a
pretrained DAMSM, or --set=pretrain_damsm_first=true). A SessionRunHook stamps the end of every step;
the first --warmup steps (graph build, session start, first-step summaries and the step-0
checkpoint all fall before them) are excluded, and the next --steps are timed from the end of
the last warm-up step to the end of the last timed step. One step is what the estimator calls a
step: one generator update and one discriminator update (--engine: the in-graph step, default,
or TF-GAN's GANEstimator with its sequential train hooks).
images/s = global batch x steps/s. Peak RSS is the subprocess's resident high-water mark
(VmHWM: TensorFlow itself, the graph, variables and activations). The CPU may be shared with
other work: the table header shows the load average.
"""
import argparse
import collections
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from bench.memory import status_kb  # pylint: disable=wrong-import-position

# MODEL:IMAGE_SIZE:GF[/DF]:BATCH[:ATTENTION_RESOLUTION], MODEL any registered model with gf_dim,
# df_dim and attention_resolution hyperparameters. YLG's 8 heads need >= 64 channels at the
# attention block, which at 32 and 64 px means df >= 32 (D has 2 df channels at 16x16).
QUICK_CONFIGS = ("sagan:32:16/32:16,ylg_sagan:32:16/32:16,"
                 "sagan:64:16/32:16:16,ylg_sagan:64:16/32:16:16")
FULL_CONFIGS = "sagan:128:64:256,ylg_sagan:128:64:256"
# Default attention feature-map size: the model's `suggested_hparams(image_size)` (SAGAN's
# headline is Table 1's feat64; YLG's code keeps TF-GAN's feat32; smaller images: the largest
# size both networks have, 16 at 32 px).
NUM_SYNTHETIC_IMAGES = 64


PAPER = "paper"  # WIDTHS of a config that keeps the model's own (paper) widths
Config = collections.namedtuple("Config", "model image_size gf_dim df_dim batch attention")


def parse_configs(text):
  """'sagan:32:16/32:16,...' -> [Config], validated."""
  configs = []
  for item in filter(None, (s.strip() for s in text.split(","))):
    parts = item.split(":")
    if len(parts) not in (4, 5):
      raise ValueError(f"config {item!r} is not MODEL:IMAGE_SIZE:GF[/DF]:BATCH[:ATTENTION]")
    model, size = parts[0], int(parts[1])
    from estimators.models import get_model  # pylint: disable=import-outside-toplevel
    try:
      spec = get_model(model)
      suggested = spec.suggested_hparams(size)
    except ValueError as e:
      raise ValueError(f"config {item!r}: {e}") from None
    if parts[2] == PAPER:  # the model's own widths (e.g. LadaGAN's released configs)
      gf = df = attention = None
      if len(parts) == 5:
        raise ValueError(f"config {item!r}: ATTENTION goes with explicit widths only")
    else:
      names = {f.name for f in dataclasses.fields(spec.hparams_class)}
      if not {"gf_dim", "df_dim", "attention_resolution"} <= names:
        raise ValueError(f"config {item!r}: {model} has no gf_dim/df_dim/attention_resolution; "
                         f"give '{PAPER}' as the widths")
      gf, _, df = parts[2].partition("/")
      gf, df = int(gf), int(df or gf)
      attention = int(parts[4]) if len(parts) == 5 else suggested["attention_resolution"]
    config = Config(model, size, gf, df, int(parts[3]), attention)
    if min(w for w in (config.gf_dim, config.df_dim, config.batch) if w is not None) <= 0:
      raise ValueError(f"config {item!r}: widths and batch must be positive")
    configs.append(config)
  if not configs:
    raise ValueError("no configs given")
  return configs


def config_text(c):
  if c.gf_dim is None:
    return f"{c.model}:{c.image_size}:{PAPER}:{c.batch}"
  return f"{c.model}:{c.image_size}:{c.gf_dim}/{c.df_dim}:{c.batch}:{c.attention}"


def _synthetic_dataset_fn(image_size, num_classes):
  """dataset_fn for make_train_input_fn: NUM_SYNTHETIC_IMAGES random images in [-1, 1]."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  def element(i):
    image = tf.random.stateless_uniform([image_size, image_size, 3], seed=tf.stack([i, 0]),
                                        minval=-1.0, maxval=1.0)  # [S, S, 3]
    return {"images": image, "labels": tf.cast(i % max(num_classes, 1), tf.int32)}

  def dataset_fn():
    return tf.data.Dataset.range(NUM_SYNTHETIC_IMAGES).map(element).cache()
  return dataset_fn


def synthetic_captioned(image_size, max_words, vocab_size, num=NUM_SYNTHETIC_IMAGES):
  """dataset_fn: `num` random images and captions (8..max_words random word ids, 0-padded)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  def element(i):
    seed = tf.stack([i, 0])
    image = tf.random.stateless_uniform([image_size, image_size, 3], seed=seed, minval=-1.0,
                                        maxval=1.0)  # [S, S, 3]
    length = tf.random.stateless_uniform([], seed=tf.stack([i, 1]), minval=min(8, max_words),
                                         maxval=max_words + 1, dtype=tf.int32)
    words = tf.random.stateless_uniform([max_words], seed=tf.stack([i, 2]), minval=1,
                                        maxval=vocab_size, dtype=tf.int32)  # [T]
    captions = tf.where(tf.range(max_words) < length, words, 0)
    return {"images": image, "captions": captions, "caption_length": length,
            "labels": tf.cast(i % 10, tf.int32)}

  return lambda: tf.data.Dataset.range(num).map(element).cache()


def _dataset_fn(cfg):
  """The synthetic data of cfg's dataset: images (+ labels), and captions of its vocabulary and
  training length for a caption dataset."""
  import data  # pylint: disable=import-outside-toplevel
  spec = data.get_spec(cfg.dataset)
  if not spec.has_captions:
    return _synthetic_dataset_fn(cfg.image_size, cfg.num_classes)
  vocab_size = len(spec.vocabulary(cfg.data_dir, **dict(cfg.data_options)))
  return synthetic_captioned(cfg.image_size, cfg.max_words or spec.default_max_words, vocab_size)


def parse_settings_for(model, pairs):
  """{name: value} of --set's NAME=VALUE strings for `model` (estimators.replica_check's)."""
  from estimators.replica_check import parse_settings  # pylint: disable=import-outside-toplevel
  return parse_settings(model, pairs)


def _step_timer_hook(warmup):
  """A SessionRunHook that stamps the end of each step; `times[warmup - 1:]` bound the timed ones."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  class StepTimer(tf.estimator.SessionRunHook):
    def __init__(self):
      self.times = []  # perf_counter at the end of each step (after every hook's run)

    def after_run(self, run_context, run_values):
      self.times.append(time.perf_counter())

    def timed(self):
      return self.times[warmup - 1:] if warmup else self.times

  return StepTimer()


def run_one(config, *, steps, warmup, num_classes=10, distribution=None, num_devices=0,
            mixed_precision=False, mixed_precision_dtype="auto", cpu_devices=1, xla=False,
            overrides=None, hooks=()):
  """Trains warmup + steps steps of `config` (a Config) in this process; returns a dict.

  cpu_devices > 1 splits the CPU into that many logical devices first (no GPU: what
  --distribution=mirrored then mirrors over; they share the same cores). `overrides`: further
  GANConfig run settings or hyperparameters (estimators.testing.tiny_config names), e.g.
  beta2 or sn_bound to match another code's settings. `hooks`: more SessionRunHooks.
  """
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  if xla:  # before TensorFlow's first device (else --xla is refused: precision.configure_session)
    from estimators.engines import precision  # pylint: disable=import-outside-toplevel
    precision.allow_cpu_autoclustering()
  from estimators.replica_check import configure_cpu_devices  # pylint: disable=import-outside-toplevel
  configure_cpu_devices(cpu_devices)
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from estimators.engines.build import build_estimator  # pylint: disable=import-outside-toplevel
  from estimators.engines.input_fn import make_train_input_fn  # pylint: disable=import-outside-toplevel
  from estimators.models import get_model  # pylint: disable=import-outside-toplevel
  from estimators.replica_check import default_dataset  # pylint: disable=import-outside-toplevel
  from estimators.testing import tiny_config  # pylint: disable=import-outside-toplevel
  if warmup < 1 or steps < 1:
    raise ValueError("warmup and steps must be >= 1 (the first step builds and traces)")
  tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
  with tempfile.TemporaryDirectory(prefix="bench_train_step_") as tmp:
    total = warmup + steps
    widths = {"z_dim": 128} if config.gf_dim is None else dict(
        gf_dim=config.gf_dim, df_dim=config.df_dim, attention_resolution=config.attention,
        z_dim=128)
    cfg = tiny_config(
        tmp, model=config.model, image_size=config.image_size, batch_size=config.batch,
        num_classes=num_classes, max_steps=total,
        # No checkpoint or summary inside the timed window (only at step 0 and at the end).
        save_checkpoints_steps=10 * total + 1000, save_summary_steps=10 * total + 1000,
        num_devices=num_devices, mixed_precision=mixed_precision,
        mixed_precision_dtype=mixed_precision_dtype, xla=xla,
        **({} if distribution is None else {"distribution": distribution}),
        **{**widths, **dict(overrides or {})})  # --set wins over the config's widths
    if "dataset" not in dict(overrides or {}):
      cfg = cfg.replace(dataset=default_dataset(config.model, config.image_size, cfg.hparams))
    get_model(config.model).prepare(cfg)
    estimator = build_estimator(cfg)
    input_fn = make_train_input_fn(cfg, dataset_fn=_dataset_fn(cfg))
    timer = _step_timer_hook(warmup)
    start = time.perf_counter()
    estimator.train(input_fn, hooks=[timer] + list(hooks), max_steps=total)
    wall = time.perf_counter() - start
  timed = timer.timed()
  if len(timed) != steps + 1:
    raise RuntimeError(f"expected {total} steps, the hook saw {len(timer.times)}")
  seconds = timed[-1] - timed[0]
  step_ms = [1000 * (b - a) for a, b in zip(timed, timed[1:])]
  return {"config": config_text(config), "distribution": cfg.distribution, "engine": cfg.engine,
          "mixed_precision": mixed_precision and mixed_precision_dtype, "xla": xla,
          "timed_steps": len(step_ms), "seconds": seconds,
          "steps_per_sec": len(step_ms) / seconds,
          "images_per_sec": config.batch * len(step_ms) / seconds,
          "median_step_ms": statistics.median(step_ms),
          "setup_seconds": wall - seconds, "peak_rss_mb": status_kb("VmHWM") / 1024}


def _run_in_subprocess(config, args):
  cmd = [sys.executable, "-m", "bench.train_step", "--one", config_text(config),
         f"--steps={args.steps}", f"--warmup={args.warmup}", f"--num_classes={args.num_classes}",
         f"--distribution={args.distribution}", f"--num_devices={args.num_devices}",
         f"--cpu_devices={args.cpu_devices}",
         *([f"--engine={args.engine}"] if args.engine else []),
         f"--mixed_precision_dtype={args.mixed_precision_dtype}",
         *(f"--set={pair}" for pair in args.set)]
  if args.mixed_precision:
    cmd.append("--mixed_precision")
  if args.xla:
    cmd.append("--xla")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
             PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
  out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
  if out.returncode != 0:
    tail = (out.stderr.strip().splitlines() or ["(no stderr)"])[-1]
    return {"error": f"exit {out.returncode}: {tail}"}
  return json.loads(out.stdout.strip().splitlines()[-1])


def format_table(configs, results):
  lines = ["| model | image | gf / df | attention at | global batch | timed steps | steps/s "
           "| images/s | median ms/step | build + warm-up s | peak RSS MB |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
  for c, r in zip(configs, results):
    widths = (f"{c.gf_dim} / {c.df_dim} | {c.attention}x{c.attention}" if c.gf_dim is not None
              else f"{PAPER} | {PAPER}")
    head = f"| {c.model} | {c.image_size} px | {widths} | {c.batch} |"
    if "error" in r:
      lines.append(f"{head} FAILED: {r['error'].replace('|', '/')} | | | | | |")
      continue
    lines.append(f"{head} {r['timed_steps']} | {r['steps_per_sec']:.2f} | "
                 f"{r['images_per_sec']:.1f} | {r['median_step_ms']:,.0f} | "
                 f"{r['setup_seconds']:.0f} | {r['peak_rss_mb']:,.0f} |")
  return "\n".join(lines)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--configs", default=None,
                 help=f"MODEL:IMAGE_SIZE:WIDTH:BATCH,... (default {QUICK_CONFIGS})")
  p.add_argument("--full", action="store_true",
                 help=f"paper scale for a GPU: {FULL_CONFIGS}, 1000 classes, 20 timed steps")
  p.add_argument("--steps", type=int, default=None, help="timed steps (default 8; --full 20)")
  p.add_argument("--warmup", type=int, default=3, help="untimed steps first (>= 1)")
  p.add_argument("--num_classes", type=int, default=None, help="default 10; --full 1000")
  p.add_argument("--distribution", default="none",
                 choices=("none", "one_device", "mirrored", "multi_worker"),
                 help="GANConfig.distribution (scale-out engine)")
  p.add_argument("--num_devices", type=int, default=0, help="GANConfig.num_devices")
  p.add_argument("--engine", default=None, choices=("in_graph", "gan_estimator"),
                 help="GANConfig.engine with --distribution=none (default: GANConfig's)")
  p.add_argument("--mixed_precision", action="store_true", help="GANConfig.mixed_precision")
  p.add_argument("--xla", action="store_true", help="GANConfig.xla: XLA auto-clustering")
  p.add_argument("--mixed_precision_dtype", default="auto", choices=("auto", "float16",
                                                                      "bfloat16"))
  p.add_argument("--cpu_devices", type=int, default=1,
                 help="without a GPU: logical CPU devices to make (mirrored over 2 needs 2)")
  p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                 help="a run setting or model hyperparameter for every config (repeatable)")
  p.add_argument("--one", metavar="CONFIG", help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  args.steps = args.steps or (20 if args.full else 8)
  args.num_classes = args.num_classes if args.num_classes is not None else (
      1000 if args.full else 10)
  try:
    configs = parse_configs(args.one or args.configs or (
        FULL_CONFIGS if args.full else QUICK_CONFIGS))
  except ValueError as e:
    p.error(str(e))
  if args.warmup < 1 or args.steps < 1:
    p.error("--warmup and --steps must be >= 1")
  try:
    overrides = [parse_settings_for(c.model, args.set) for c in configs]
  except ValueError as e:
    p.error(str(e))
  if args.one:
    (config,) = configs
    result = run_one(config, steps=args.steps, warmup=args.warmup,
                     num_classes=args.num_classes, distribution=args.distribution,
                     num_devices=args.num_devices, mixed_precision=args.mixed_precision,
                     mixed_precision_dtype=args.mixed_precision_dtype,
                     cpu_devices=args.cpu_devices, xla=args.xla,
                     overrides={**overrides[0], **({"engine": args.engine} if args.engine
                                                   else {})})
    print(json.dumps(result))
    return result
  load_before, start = os.getloadavg()[0], time.time()
  results = []
  for config in configs:
    results.append(_run_in_subprocess(config, args))
    r = results[-1]
    print(f"  {config_text(config)}: " + (r["error"] if "error" in r else
          f"{r['steps_per_sec']:.2f} steps/s, {r['peak_rss_mb']:.0f} MB"),
          file=sys.stderr, flush=True)
  engine = results[0].get("engine", args.engine) if results else args.engine
  print(f"\n{args.num_classes} classes, z 128, distribution={args.distribution}, engine={engine}, "
        f"mixed_precision={args.mixed_precision}, xla={args.xla}; {args.warmup} warm-up + {args.steps} timed "
        f"steps; {os.cpu_count()} CPUs, load average {load_before:.1f} -> "
        f"{os.getloadavg()[0]:.1f}; ran {time.time() - start:.0f} s\n")
  print(format_table(configs, results))
  if any("error" in r for r in results):
    sys.exit(1)
  return results


if __name__ == "__main__":
  main()
