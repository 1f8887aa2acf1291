"""Set-up time: seconds from the flags to the end of the first training step, by phase.

  python -m bench.setup_time                       # quick: each model's tiny test-sized config
  python -m bench.setup_time --full                # each model's paper config (configs/*.cfg)
  python -m bench.setup_time --rows=attngan:paper --rounds=2

Each row (MODEL:PRESET; PRESET `tiny` or `paper`) runs in its own fresh process, as `python
run.py` would: its flags are parsed by run.py's own parser (the paper preset's flagfile, or the
tiny widths of estimators/testing.tiny_config), with the dataset swapped for synthetic in-memory
data of the same shapes (64 random images, captions for caption models; the class count is the
flagfile dataset's) and max_steps 1. A model with a frozen DAMSM (`damsm_dir`) gets a random-
weight one written first by bench.attngan_step's `prepare` (not timed: a real run has one). The
phases, from the process's start:
  start        the interpreter, TensorFlow and the project's imports
  flags        run.py's flag parsing and the GANConfig
  estimator    build_estimator (session options, RunConfig)
  graph        estimator.train until the hooks' begin: input pipeline and model_fn (networks,
               losses, optimisers, summaries) built in the estimator's graph
  init         session creation and variable initialisation (checkpoint-initialised variables
               read their values here)
  checkpoint   the hooks' set-up after it: the step-0 checkpoint and what the checkpoint hook
               writes with it (the graph into TensorBoard's event file; before this branch also
               graph.pbtxt and a .meta file)
  first step   the first training step (graph optimisation, first-run allocation, the step)
--rounds > 1 runs the rows round-robin (row 1, row 2, ..., row 1, ...) and reports the median.

With --official_dir (a taoxugit/AttnGAN checkout) and --official_python (a throwaway venv with
torch), each round also times the official AttnGAN code at the CUB config (row `attngan:official`,
bench.attngan_official's driver): its process start to the end of its first iteration (imports,
G and D built with their orthogonal initialisation, the DAMSM encoders loaded), one total.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if sys.path[0] != ROOT:
  sys.path.insert(0, ROOT)

PHASES = ("start", "flags", "estimator", "graph", "init", "checkpoint", "first step")
# MODEL -> its paper config (the README's headline run of each model).
PAPER_CONFIGS = {"sagan": "sagan_imagenet128.cfg", "ylg_sagan": "ylg_sagan_imagenet128.cfg",
                 "ladagan": "ladagan_cifar10_paper.cfg", "attngan": "attngan_cub.cfg"}
QUICK_ROWS = "sagan:tiny,ylg_sagan:tiny,ladagan:tiny,attngan:tiny"
FULL_ROWS = "sagan:paper,ylg_sagan:paper,ladagan:paper,attngan:paper"
PRESETS = ("tiny", "paper")
# tiny_config's widths, except where a model's tests need wider ones (YLG's 8 heads: 64 channels
# at the attention block, estimators/ylg_sagan_test.py).
TINY_WIDTHS = {"ylg_sagan": {"gf_dim": 16, "df_dim": 32}}
NEVER = 10 ** 9  # no summary or checkpoint after step 0 within the one step


def parse_rows(text):
  """'MODEL:PRESET,...' -> [(model, preset)]: any registered model with `tiny`; `paper` for
  the models whose paper config is known (PAPER_CONFIGS)."""
  from estimators.models import names  # pylint: disable=import-outside-toplevel
  rows = []
  for item in filter(None, (s.strip() for s in text.split(","))):
    model, _, preset = item.partition(":")
    if model not in names() or preset not in PRESETS:
      raise ValueError(f"row {item!r}: expected MODEL:PRESET with MODEL one of "
                       f"{sorted(names())} and PRESET one of {PRESETS}")
    if preset == "paper" and model not in PAPER_CONFIGS:
      raise ValueError(f"row {item!r}: no paper config of {model} is known (PAPER_CONFIGS: "
                       f"{sorted(PAPER_CONFIGS)}); time {model}:tiny")
    rows.append((model, preset))
  if not rows:
    raise ValueError("no rows given")
  return rows


# --- in the row's own process -------------------------------------------------------------------

def _has_damsm(model):
  import dataclasses  # pylint: disable=import-outside-toplevel
  from estimators.models import get_model  # pylint: disable=import-outside-toplevel
  return "damsm_dir" in {f.name for f in dataclasses.fields(get_model(model).hparams_class)}


def _paper_dataset(model):
  """The dataset of the model's paper config, else the first embedded one it accepts (its tiny
  settings at 32 px)."""
  if model not in PAPER_CONFIGS:
    from estimators.replica_check import default_dataset  # pylint: disable=import-outside-toplevel
    from estimators.testing import tiny_config  # pylint: disable=import-outside-toplevel
    tiny = tiny_config("unused", model=model, **TINY_WIDTHS.get(model, {}))
    return default_dataset(model, tiny.image_size, tiny.hparams)
  from bench.attngan_step import read_flagfile  # pylint: disable=import-outside-toplevel
  return read_flagfile(os.path.join(ROOT, "configs", PAPER_CONFIGS[model]))["dataset"]


def _flag_argv(model, preset, model_dir, dataset):
  """run.py's argv for the row: the paper flagfile, or the tiny test widths (a model with a
  frozen DAMSM: bench.attngan_step's settings, which its DAMSM was written with); then the
  synthetic data's `dataset` and one step."""
  import dataclasses  # pylint: disable=import-outside-toplevel
  from bench import attngan_step  # pylint: disable=import-outside-toplevel
  from estimators.models import get_model  # pylint: disable=import-outside-toplevel
  from estimators.testing import tiny_config  # pylint: disable=import-outside-toplevel
  argv = ["run.py"]
  if preset == "paper":
    argv.append(f"--flagfile={os.path.join(ROOT, 'configs', PAPER_CONFIGS[model])}")
  else:
    hparams_class = get_model(model).hparams_class
    fields = {f.name for f in dataclasses.fields(hparams_class)}
    if _has_damsm(model):
      values = {k: v for k, v in attngan_step.settings(False).items() if k != "vocab_size"}
    else:
      tiny = tiny_config(model_dir, model=model, **TINY_WIDTHS.get(model, {}))
      values = dict(dataclasses.asdict(tiny.hparams), image_size=tiny.image_size,
                    batch_size=tiny.batch_size)
    defaults = hparams_class()
    argv.append(f"--model={model}")
    for key, value in values.items():
      if key in fields and value == getattr(defaults, key):
        continue
      text = ",".join(map(str, value)) if isinstance(value, (tuple, list)) else value
      argv.append(f"--{key}={str(text).lower() if isinstance(value, bool) else text}")
  return argv + [f"--model_dir={model_dir}", f"--dataset={dataset}", "--max_steps=1",
                 f"--save_summary_steps={NEVER}", f"--save_checkpoints_steps={NEVER}",
                 "--mode=train"]


def _phase_hook(stamps):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  class PhaseHook(tf.estimator.SessionRunHook):
    """begin = graph built; before_run / after_run of step 1 (the end of variable
    initialisation is stamped by SessionManager.prepare_session, in measure_one)."""

    def begin(self):
      stamps["graph"] = time.time()

    def before_run(self, run_context):
      stamps.setdefault("checkpoint", time.time())

    def after_run(self, run_context, run_values):
      stamps.setdefault("first step", time.time())

  return PhaseHook()


def measure_one(model, preset, workdir, process_start, batch_size=0):
  """Phase -> seconds for one row, in this (fresh) process; `process_start` is time.time() of
  the parent just before it started this process."""
  stamps = {}
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  from tensorflow.python.training import session_manager  # pylint: disable=import-outside-toplevel
  prepare_session = session_manager.SessionManager.prepare_session

  def stamped_prepare_session(*args, **kwargs):  # the end of variable initialisation
    session = prepare_session(*args, **kwargs)
    stamps.setdefault("init", time.time())
    return session
  session_manager.SessionManager.prepare_session = stamped_prepare_session
  import run  # pylint: disable=import-outside-toplevel  (run.py: its flags, as `python run.py`)
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from bench import attngan_step, train_step  # pylint: disable=import-outside-toplevel
  from estimators.engines.build import build_estimator  # pylint: disable=import-outside-toplevel
  from estimators.engines.input_fn import make_train_input_fn, vocabulary_path  # pylint: disable=import-outside-toplevel
  import data  # pylint: disable=import-outside-toplevel
  tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
  stamps["start"] = time.time()
  model_dir = os.path.join(workdir, "run")
  paper_dataset = _paper_dataset(model)
  captions = data.get_spec(paper_dataset).has_captions
  run.FLAGS(_flag_argv(model, preset, model_dir, "digits_captions" if captions else "digits")
            + ([f"--batch_size={batch_size}"] if batch_size else []))
  cfg = run.config_from_flags()
  if preset == "paper":  # the paper dataset's class count (class embeddings, projections)
    cfg = cfg.replace(num_classes=data.get_spec(paper_dataset).num_classes or 0)
  if _has_damsm(model):
    cfg = cfg.with_hparams(damsm_dir=os.path.join(workdir, "damsm"))
  stamps["flags"] = time.time()
  estimator = build_estimator(cfg)
  stamps["estimator"] = time.time()
  if captions:
    from data.text import Vocabulary  # pylint: disable=import-outside-toplevel
    vocab_size = len(Vocabulary.load(vocabulary_path(cfg)))
    dataset_fn = train_step.synthetic_captioned(
        cfg.image_size, cfg.max_words or 18, vocab_size)
  else:
    dataset_fn = train_step._synthetic_dataset_fn(  # pylint: disable=protected-access
        cfg.image_size, cfg.num_classes)
  estimator.train(make_train_input_fn(cfg, dataset_fn=dataset_fn), max_steps=1,
                  hooks=[_phase_hook(stamps)])
  previous, seconds = process_start, {}
  for phase in PHASES:
    seconds[phase] = stamps[phase] - previous
    previous = stamps[phase]
  seconds["total"] = previous - process_start
  return seconds


# --- in the parent ------------------------------------------------------------------------------

def _prepare_damsm(model, preset, workdir):
  """Writes the vocabulary and a random-weight DAMSM for a model that has a frozen DAMSM (in a
  subprocess of bench.attngan_step; not timed). Returns an error text or None."""
  from bench import attngan_step  # pylint: disable=import-outside-toplevel
  if not _has_damsm(model):
    return None
  settings = attngan_step.settings(preset == "paper")
  out = attngan_step._subprocess([  # pylint: disable=protected-access
      f"--settings={json.dumps(settings)}", f"--one=prepare:{workdir}"])
  return out.get("error")


def measure(model, preset, batch_size=0):
  """{phase: seconds, 'total': ...} or {'error': text}, the row in a fresh process."""
  with tempfile.TemporaryDirectory(prefix="bench_setup_time_") as workdir:
    error = _prepare_damsm(model, preset, workdir)
    if error:
      return {"error": f"DAMSM preparation: {error}"}
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    start = time.time()
    out = subprocess.run([sys.executable, "-m", "bench.setup_time", f"--one={model}:{preset}",
                          f"--workdir={workdir}", f"--start={start!r}",
                          f"--batch_size={batch_size}"],
                         env=env, cwd=ROOT, capture_output=True, text=True)
  if out.returncode != 0:
    tail = (out.stderr.strip().splitlines() or ["(no stderr)"])[-1]
    return {"error": f"exit {out.returncode}: {tail}"}
  return json.loads(out.stdout.strip().splitlines()[-1])


def official_row(args):
  """(code dir, python) of the official AttnGAN row, None without --official_dir; ValueError
  on a bad path or when only one of the two flags is given."""
  if not (args.official_dir or args.official_python):
    return None
  if not (args.official_dir and args.official_python):
    raise ValueError("--official_dir and --official_python go together")
  from bench import attngan_official  # pylint: disable=import-outside-toplevel
  return (attngan_official.official_code_dir(args.official_dir),
          attngan_official.check_python(args.official_python))


def measure_official(code_dir, python, batch_size=0):
  """{'total': seconds from the official process's start to the end of its first iteration}."""
  from bench import attngan_official  # pylint: disable=import-outside-toplevel
  with tempfile.TemporaryDirectory(prefix="bench_setup_time_official_") as workdir:
    out = attngan_official.run_official(python, code_dir, workdir, batch_size or 20, 0, 1)
  if "error" in out:
    return out
  return {**{p: None for p in PHASES}, "total": out["setup_to_first_step_s"]}


def format_table(rows, results):
  lines = ["| model | config | " + " | ".join(PHASES) + " | total s |",
           "|---|---|" + "---:|" * (len(PHASES) + 1)]
  for (model, preset), result in zip(rows, results):
    config = {"paper": PAPER_CONFIGS.get(model), "official": "official code, CUB config"}.get(
        preset, "tiny (estimators/testing.py)")
    if "error" in result:
      lines.append(f"| {model} | {config} | FAILED: {result['error'].replace('|', '/')} |"
                   + " |" * len(PHASES))
      continue
    lines.append(f"| {model} | {config} | "
                 + " | ".join("-" if result[p] is None else f"{result[p]:.1f}"
                              for p in PHASES + ("total",)) + " |")
  return "\n".join(lines)


def median_results(rounds):
  """Per row, the median of each phase over the rounds (a row that failed once: its error)."""
  out = []
  for per_row in zip(*rounds):
    failed = next((r for r in per_row if "error" in r), None)
    out.append(failed or {k: None if per_row[0][k] is None else
                          statistics.median(r[k] for r in per_row) for k in per_row[0]})
  return out


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--full", action="store_true", help="the paper configs (default: tiny)")
  p.add_argument("--rows", help=f"MODEL:PRESET,... (default {QUICK_ROWS}; --full: {FULL_ROWS})")
  p.add_argument("--rounds", type=int, default=1, help="rounds, rows alternating (median)")
  p.add_argument("--batch_size", type=int, default=0,
                 help="override every row's batch (0: the config's); the set-up before the "
                      "first step does not depend on it, the first step and its memory do")
  p.add_argument("--official_dir", help="a taoxugit/AttnGAN checkout: add its row")
  p.add_argument("--official_python", help="python of a throwaway venv with torch, torchvision")
  p.add_argument("--one", help=argparse.SUPPRESS)
  p.add_argument("--workdir", help=argparse.SUPPRESS)
  p.add_argument("--start", type=float, help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  try:
    rows = parse_rows(args.one or args.rows or (FULL_ROWS if args.full else QUICK_ROWS))
  except ValueError as e:
    p.error(str(e))
  if args.rounds < 1:
    p.error("--rounds must be >= 1")
  try:
    official = official_row(args)
  except ValueError as e:
    p.error(str(e))
  if args.one:
    (row,) = rows
    result = measure_one(*row, args.workdir, args.start, args.batch_size)
    print(json.dumps(result))
    return result
  load, began = os.getloadavg()[0], time.time()
  rounds = []
  for index in range(args.rounds):
    rounds.append([])
    for model, preset in rows:
      rounds[-1].append(measure(model, preset, args.batch_size))
      r = rounds[-1][-1]
      print(f"  round {index + 1}, {model}:{preset}: "
            + (r["error"] if "error" in r else f"{r['total']:.1f} s"), file=sys.stderr, flush=True)
    if official:
      rounds[-1].append(measure_official(*official, args.batch_size))
      print(f"  round {index + 1}, attngan:official: {rounds[-1][-1]}", file=sys.stderr,
            flush=True)
  if official:
    rows = rows + [("attngan", "official")]
  results = median_results(rounds)
  print(f"\nSeconds from the process's start to the end of the first training step, by phase; "
        f"synthetic in-memory data, 1 step"
        + (f", batch {args.batch_size} in every row" if args.batch_size else "")
        + f"; median of {args.rounds} round(s), rows alternating; "
        f"{os.cpu_count()} CPUs, load average {load:.1f} -> {os.getloadavg()[0]:.1f}; ran "
        f"{time.time() - began:.0f} s\n")
  print(format_table(rows, results))
  if any("error" in r for r in results):
    sys.exit(1)
  return results


if __name__ == "__main__":
  main()
