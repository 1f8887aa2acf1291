"""AttnGAN training step and DAMSM pretraining step: images/s, peak memory, the frozen DAMSM's share.

  python -m bench.attngan_step                 # quick: tiny widths (seconds; what `python -m bench` runs)
  python -m bench.attngan_step --full          # CUB: configs/attngan_cub.cfg (batch 20, 3 stages to
                                               # 256 px; DAMSM batch 48, 299 px Inception-v3)
  python -m bench.attngan_step --full --set=batch_size=10 --parts=attngan

Three rows, each in its own subprocess (so each peak RSS is its own):
  attngan        the real AttnGAN training step (GANEstimator, as bench/train_step.py times it:
                 one D update + one G update, TF-GAN's sequential hooks) with lambda * L_DAMSM
                 against the frozen DAMSM (text encoder inside G, Inception-v3 image encoder on
                 G's last stage, gradient through it into G);
  attngan_no_damsm  the same step with --lambda_damsm=0: G's loss has no L_DAMSM term, so the
                 DAMSM image encoder is never built or run (the frozen text encoder still encodes
                 the captions for G and D, as it must);
  damsm_pretrain the DAMSM pretraining step (damsm_pretrain.py's own compiled step: BiLSTM text encoder +
                 Inception-v3 image encoder, eq. 14, Adam), on one fixed batch.
Share of the frozen DAMSM in the AttnGAN step = 1 - median step time without the term / with it
(the L_DAMSM term: Inception-v3 forward on G's images, its backward into them, the DAMSM
losses). It is a difference of two timings on a possibly shared CPU: noisy with few steps.

Data are synthetic and in memory (no download): random images in [-1, 1] and random captions
(token ids in the vocabulary, 8..max_words words, 0-padded); the vocabulary is the embedded
digits_captions one padded with made-up words to CUB's size (5,450 words) at --full. The DAMSM
the AttnGAN step trains against has random weights (written in damsm.py's format first, in a
separate subprocess), as does Inception-v3 (no weights file here): speed and memory do not
depend on the weights. Peak RSS is the subprocess's VmHWM (TensorFlow, graph, variables and
activations). The first --warmup steps (graph build, first-step summaries, step-0 checkpoint)
are not timed; images/s = batch x timed steps / their wall time.
"""
import argparse
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

CUB_CONFIG = os.path.join(ROOT, "configs", "attngan_cub.cfg")
CUB_VOCAB_SIZE = 5450  # the official CUB captions.pickle's n_words
PARTS = ("attngan", "attngan_no_damsm", "damsm_pretrain")
# Settings the bench takes from the config file (the rest, e.g. max_steps, are the run's, not
# the step's): the run's image size, batch and caption length, and every model hyperparameter.
_RUN_KEYS = ("image_size", "batch_size", "max_words")
# Quick: tiny widths, small_cnn DAMSM (no Inception) so `python -m bench` stays cheap.
QUICK = {"image_size": 32, "batch_size": 8, "max_words": 18, "branch_num": 2, "gf_dim": 8,
         "df_dim": 8, "r_num": 1, "z_dim": 16, "condition_dim": 8,
         "damsm_image_encoder": "small_cnn", "damsm_image_size": 32, "damsm_cnn_width": 8,
         "damsm_embedding_dim": 16, "damsm_word_dim": 16, "damsm_batch_size": 8,
         "damsm_words_num": 18, "vocab_size": 0}


def read_flagfile(path):
  """{name: text value} of the --name=value lines of a flagfile (comments skipped)."""
  flags = {}
  with open(path, encoding="utf-8") as f:
    for line in f:
      line = line.strip()
      if line.startswith("--") and "=" in line:
        name, value = line[2:].split("=", 1)
        flags[name] = value
  return flags


def _typed(name, text, default):
  if isinstance(default, bool):
    if text.lower() not in ("true", "false", "1", "0"):
      raise ValueError(f"{name}={text!r}: expected true or false")
    return text.lower() in ("true", "1")
  try:
    return type(default)(text)
  except ValueError:
    raise ValueError(f"{name}={text!r}: expected a {type(default).__name__}") from None


def settings(full, overrides=()):
  """The step's settings: QUICK, or configs/attngan_cub.cfg's run keys and AttnGAN
  hyperparameters (vocab_size CUB's), then each NAME=VALUE of `overrides`; validated."""
  from estimators.models import attngan  # pylint: disable=import-outside-toplevel
  defaults = {f.name: f.default for f in dataclasses.fields(attngan.AttnGANHParams)}
  known = dict(defaults, image_size=256, batch_size=20, max_words=18, vocab_size=0)
  if full:
    out = {k: _typed(k, v, known[k]) for k, v in read_flagfile(CUB_CONFIG).items() if k in known}
    out["vocab_size"] = CUB_VOCAB_SIZE
  else:
    out = dict(QUICK)
  for item in overrides:
    name, sep, value = item.partition("=")
    if not sep or name not in known:
      raise ValueError(f"--set {item!r}: expected NAME=VALUE with NAME an AttnGAN hyperparameter "
                       f"or one of {', '.join(_RUN_KEYS + ('vocab_size',))}")
    out[name] = _typed(name, value, known[name])
  out = {**{k: v for k, v in defaults.items() if k != "damsm_dir"}, **out}
  hparams = {k: v for k, v in out.items() if k in defaults}
  attngan.AttnGANHParams(**hparams)  # the hyperparameters' own checks
  problem = attngan.attngan_networks.check_sizes(out["image_size"], out["branch_num"])
  if problem:
    raise ValueError(problem)
  if min(out["batch_size"], out["damsm_batch_size"], out["max_words"]) < 2:
    raise ValueError("batch_size, damsm_batch_size and max_words must be >= 2")
  return out


# --- in the subprocesses ------------------------------------------------------------------------

def _vocabulary(size):
  """The embedded digits_captions vocabulary, padded with made-up words to `size` words."""
  import data  # pylint: disable=import-outside-toplevel
  from data.text import Vocabulary  # pylint: disable=import-outside-toplevel
  words = list(data.get_spec("digits_captions").vocabulary(None).words)
  words += [f"synthword{i}" for i in range(max(0, size - len(words)))]
  return Vocabulary(words)


def _gan_config(model_dir, s, total_steps, **extra):
  from estimators.testing import tiny_config  # pylint: disable=import-outside-toplevel
  hp = {k: v for k, v in s.items() if k not in _RUN_KEYS + ("vocab_size",)}
  hp.update(extra)
  never = 10 * total_steps + 1000  # no checkpoint or summary inside the timed window
  return tiny_config(model_dir, model="attngan", dataset="digits_captions",
                     image_size=s["image_size"], batch_size=s["batch_size"],
                     max_words=s["max_words"], num_classes=10, max_steps=total_steps,
                     save_checkpoints_steps=never, save_summary_steps=never,
                     **{**hp, "damsm_dir": os.path.join(os.path.dirname(model_dir), "damsm")})


def prepare(workdir, s):
  """Writes the vocabulary and a random-weight DAMSM (damsm.py's format) under workdir."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from estimators.models import damsm  # pylint: disable=import-outside-toplevel
  cfg = _gan_config(os.path.join(workdir, "run"), s, 1)
  vocab = _vocabulary(s["vocab_size"])
  os.makedirs(cfg.model_dir, exist_ok=True)
  vocab.save(os.path.join(cfg.model_dir, "vocab.txt"))
  config = damsm.config_dict(cfg, vocab, False)
  text_encoder, image_encoder = damsm.build_encoders(config)
  flat = damsm.flat_variables(text_encoder, image_encoder)
  config["variables"] = damsm.variable_table(flat)
  path = cfg.hparams.damsm_dir
  os.makedirs(path, exist_ok=True)
  vocab.save(os.path.join(path, damsm.VOCAB_FILE))
  with open(os.path.join(path, damsm.CONFIG_FILE), "w", encoding="utf-8") as f:
    json.dump(config, f)
  tf.train.CheckpointManager(tf.train.Checkpoint(**flat), path, 1,
                             checkpoint_name=damsm.CHECKPOINT_PREFIX).save(checkpoint_number=1)
  return {"vocab_size": len(vocab)}


def run_attngan(workdir, s, steps, warmup, with_damsm, hooks=(), overrides=None):
  """warmup + steps AttnGAN training steps through GANEstimator; a result dict. `hooks`: more
  SessionRunHooks; `overrides`: further GANConfig settings (e.g. engine)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from bench.train_step import _step_timer_hook, synthetic_captioned  # pylint: disable=import-outside-toplevel
  from estimators.engines.build import build_estimator  # pylint: disable=import-outside-toplevel
  from estimators.engines.input_fn import make_train_input_fn  # pylint: disable=import-outside-toplevel
  tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
  total = warmup + steps
  model_dir = os.path.join(workdir, "run")
  extra = dict(overrides or {}, **({} if with_damsm else {"lambda_damsm": 0.0}))
  cfg = _gan_config(model_dir, s, total, **extra)
  with tempfile.TemporaryDirectory(dir=workdir) as run_dir:  # its own checkpoints
    import shutil  # pylint: disable=import-outside-toplevel
    shutil.copy(os.path.join(model_dir, "vocab.txt"), os.path.join(run_dir, "vocab.txt"))
    cfg = dataclasses.replace(cfg, model_dir=run_dir)
    estimator = build_estimator(cfg)
    from data.text import Vocabulary  # pylint: disable=import-outside-toplevel
    vocab_size = len(Vocabulary.load(os.path.join(run_dir, "vocab.txt")))
    input_fn = make_train_input_fn(cfg, dataset_fn=synthetic_captioned(
        s["image_size"], s["max_words"], vocab_size))
    timer = _step_timer_hook(warmup)
    start = time.perf_counter()
    estimator.train(input_fn, hooks=[timer] + list(hooks), max_steps=total)
    wall = time.perf_counter() - start
  return dict(_result(timer.timed(), steps, s["batch_size"], wall), engine=cfg.engine,
              distribution=cfg.distribution)


def run_damsm(s, steps, warmup):
  """warmup + steps DAMSM pretraining steps (damsm_pretrain.Trainer) on one random batch."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from estimators.models import damsm, damsm_pretrain, damsm_replicas  # pylint: disable=import-outside-toplevel
  start = time.perf_counter()
  cfg = _gan_config(os.path.join(tempfile.gettempdir(), "unused"), s, 1)  # nothing is written
  hp = cfg.hparams
  vocab = _vocabulary(s["vocab_size"])
  config = damsm.config_dict(cfg, vocab, False)
  trainer = damsm_pretrain.Trainer(cfg, config, use_masks=False)
  b, t, size = hp.damsm_batch_size, hp.damsm_words_num, hp.damsm_image_size
  rng = tf.random.Generator.from_seed(0)
  lengths = rng.uniform([b], min(8, t), t + 1, tf.int32)
  words = rng.uniform([b, t], 1, len(vocab), tf.int32)
  batch = {"images": rng.uniform([b, size, size, 3], -1.0, 1.0),
           "captions": tf.where(tf.range(t)[None, :] < lengths[:, None], words, 0),
           "caption_length": lengths, "labels": tf.range(b) % 10}
  batch = damsm_replicas.with_index(batch)  # each row's place in the batch (its dropout key)
  times = []
  for _ in range(warmup + steps):
    losses = trainer.train_step(batch)
    float(losses["loss"])  # wait for the step
    times.append(time.perf_counter())
  wall = time.perf_counter() - start
  return _result(times[warmup - 1:], steps, b, wall)


def _result(timed, steps, batch, wall):
  if len(timed) != steps + 1:
    raise RuntimeError(f"expected {steps} timed steps, saw {len(timed) - 1}")
  seconds = timed[-1] - timed[0]
  step_s = [b - a for a, b in zip(timed, timed[1:])]
  return {"timed_steps": steps, "batch": batch, "images_per_sec": batch * steps / seconds,
          "median_step_s": statistics.median(step_s), "setup_seconds": wall - seconds,
          "peak_rss_mb": status_kb("VmHWM") / 1024}


# --- in the parent ------------------------------------------------------------------------------

def _subprocess(args):
  cmd = [sys.executable, "-m", "bench.attngan_step"] + args
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
             PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
  out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
  if out.returncode != 0:
    tail = (out.stderr.strip().splitlines() or ["(no stderr)"])[-1]
    return {"error": f"exit {out.returncode}: {tail}"}
  return json.loads(out.stdout.strip().splitlines()[-1])


def measure(s, parts, steps, warmup):
  """{part: result dict (or {'error'})} for each of `parts`, each in its own subprocess."""
  results = {}
  common = [f"--settings={json.dumps(s)}", f"--steps={steps}", f"--warmup={warmup}"]
  with tempfile.TemporaryDirectory(prefix="bench_attngan_") as workdir:
    if any(p.startswith("attngan") for p in parts):
      prepared = _subprocess(common + [f"--one=prepare:{workdir}"])
      if "error" in prepared:
        return {p: prepared for p in parts}
    for part in parts:
      results[part] = _subprocess(common + [f"--one={part}:{workdir}"])
  return results


def damsm_share(results):
  """1 - median step time without L_DAMSM / with it, or None without both rows."""
  with_, without = results.get("attngan", {}), results.get("attngan_no_damsm", {})
  if "median_step_s" not in with_ or "median_step_s" not in without:
    return None
  return 1.0 - without["median_step_s"] / with_["median_step_s"]


def format_table(s, results):
  stages = f"{s['branch_num']} stages to {s['image_size']} px"
  damsm = (f"{s['damsm_image_encoder']} at {s['damsm_image_size']} px, BiLSTM "
           f"{s['damsm_embedding_dim']}")
  what = {"attngan": f"AttnGAN step, {stages}, with lambda {s['lambda_damsm']:g} x L_DAMSM",
          "attngan_no_damsm": f"AttnGAN step, {stages}, lambda_damsm 0 (no image encoder)",
          "damsm_pretrain": f"DAMSM pretraining step ({damsm})"}
  lines = [f"AttnGAN ngf {s['gf_dim']}, ndf {s['df_dim']}, r_num {s['r_num']}, z {s['z_dim']}, "
           f"c {s['condition_dim']}, {s['max_words']} words; DAMSM {damsm}; vocabulary "
           f"{s['vocab_size'] or 'digits_captions'}; random weights, synthetic data.", "",
           "| step | batch | timed steps | images/s | median s/step | build + warm-up s "
           "| peak RSS MB |", "|---|---:|---:|---:|---:|---:|---:|"]
  for part, r in results.items():
    if "error" in r:
      lines.append(f"| {what[part]} | FAILED: {r['error'].replace('|', '/')} | | | | | |")
      continue
    lines.append(f"| {what[part]} | {r['batch']} | {r['timed_steps']} | "
                 f"{r['images_per_sec']:.2f} | {r['median_step_s']:.2f} | "
                 f"{r['setup_seconds']:.0f} | {r['peak_rss_mb']:,.0f} |")
  share = damsm_share(results)
  if share is not None:
    by_total = 1.0 - results["attngan"]["images_per_sec"] / results["attngan_no_damsm"][
        "images_per_sec"]
    lines += ["", f"Frozen DAMSM's share of the AttnGAN step (1 - median step without L_DAMSM / "
                  f"with it): {100 * share:.0f}% (from the timed totals instead: "
                  f"{100 * by_total:.0f}%; the difference of two timings, noisy on a shared "
                  f"CPU)"]
  return "\n".join(lines)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--full", action="store_true",
                 help="the CUB settings of configs/attngan_cub.cfg (default: tiny quick widths)")
  p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                 help="override one setting (an AttnGAN/DAMSM hyperparameter, image_size, "
                      "batch_size, max_words, vocab_size); repeatable")
  p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated among {PARTS}")
  p.add_argument("--steps", type=int, default=3, help="timed steps per row (default 3)")
  p.add_argument("--warmup", type=int, default=2, help="untimed steps first (>= 1)")
  p.add_argument("--settings", help=argparse.SUPPRESS)
  p.add_argument("--one", help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  if args.warmup < 1 or args.steps < 1:
    p.error("--warmup and --steps must be >= 1")
  parts = [x.strip() for x in args.parts.split(",") if x.strip()]
  if not parts or any(x not in PARTS for x in parts):
    p.error(f"--parts={args.parts}: choose among {','.join(PARTS)}")
  if args.one:  # a subprocess: one measurement, a JSON line
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    s = json.loads(args.settings)
    what, _, workdir = args.one.partition(":")
    if what == "prepare":
      result = prepare(workdir, s)
    elif what == "damsm_pretrain":
      result = run_damsm(s, args.steps, args.warmup)
    else:
      result = run_attngan(workdir, s, args.steps, args.warmup, what == "attngan")
    print(json.dumps(result))
    return result
  try:
    s = settings(args.full, args.set)
  except ValueError as e:
    p.error(str(e))
  load_before, start = os.getloadavg()[0], time.time()
  results = measure(s, parts, args.steps, args.warmup)
  print(f"AttnGAN / DAMSM training steps on this machine ({os.cpu_count()} CPUs, load average "
        f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}: other work may share the CPU), "
        f"{args.warmup} warm-up + {args.steps} timed steps, {time.time() - start:.0f} s in all.")
  print("")
  print(format_table(s, results))
  return results


if __name__ == "__main__":
  outcome = main()
  sys.exit(1 if any(isinstance(r, dict) and "error" in r for r in outcome.values()) else 0)
