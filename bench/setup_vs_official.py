"""Set-up time of SAGAN and YLG-SAGAN against the official code's, side by side (issue #27 item 5).

  python -m bench.setup_vs_official                         # SAGAN vs TF-GAN's example
  python -m bench.setup_vs_official --ylg_dir=DIR --rounds=3  # + YLG-SAGAN vs the official YLG

Seconds from a fresh process's start to the end of its first training step, each contender in
its own process, the contenders of a round run one after another (ours, the official, ours, ...)
so each pair sees about the same background load; the table gives the medians over --rounds.
  ours       bench.setup_time's row MODEL:paper (run.py's parser on configs/<model's paper
             config>, synthetic in-memory data of its shapes, max_steps 1): flags to first step
  official   TF-GAN's example (`tensorflow_gan.examples.self_attention_estimator`, the installed
             wheel) or, for YLG-SAGAN with --ylg_dir, the official YLG code (bench.tfgan_example
             imports it; its released network functions adapted to its train_experiment there):
             its train_experiment_main defaults (gf = df = 64, 1000 classes, z 128, Adam 1e-4 /
             4e-4, beta1 0), its make_estimator (GANEstimator, MirroredStrategy RunConfig), its
             fake data (TF-GAN's example's input_fn), one step.
Both at --batch_size (default 8: the set-up before the first step does not depend on the batch;
the paper batch, 256 at 128 px, does not fit beside other jobs on this machine).
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

PAPER_WIDTH = 64  # train_experiment_main.py's gf_dim / df_dim defaults (TF-GAN and YLG alike)


def official_one(code, batch, process_start, ylg_dir=None):
  """In a fresh process: the official code's set-up and first step; {'total': seconds}."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from bench import tfgan_example  # pylint: disable=import-outside-toplevel
  stamps = {}

  class FirstStep(tf.estimator.SessionRunHook):
    def after_run(self, run_context, run_values):
      stamps.setdefault("first step", time.time())

  tfgan_example.train_tfgan(PAPER_WIDTH, batch, 1, [FirstStep()],
                            ylg_dir if code == "ylg_official" else None)
  return {"total": stamps["first step"] - process_start}


def _run(argv):
  """Runs `python -m <argv>` in a fresh process from now; its last stdout line as JSON."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
             PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
  start = time.time()
  out = subprocess.run([sys.executable, "-m"] + argv + [f"--start={start!r}"], env=env, cwd=ROOT,
                       capture_output=True, text=True)
  if out.returncode != 0:
    tail = (out.stderr.strip().splitlines() or ["(no stderr)"])[-1]
    return {"error": f"exit {out.returncode}: {tail}"}
  return json.loads(out.stdout.strip().splitlines()[-1])


def measure_ours(model, batch):
  with tempfile.TemporaryDirectory(prefix="bench_setup_vs_official_") as workdir:
    return _run(["bench.setup_time", f"--one={model}:paper", f"--workdir={workdir}",
                 f"--batch_size={batch}"])


def measure_official(code, batch, ylg_dir):
  return _run(["bench.setup_vs_official", f"--one={code}", f"--batch_size={batch}"]
              + ([f"--ylg_dir={ylg_dir}"] if ylg_dir else []))


def contenders(ylg_dir):
  """[(model, official code)]: SAGAN against TF-GAN's example; YLG-SAGAN against the official
  YLG code with ylg_dir, else against TF-GAN's example."""
  return [("sagan", "tfgan_example"),
          ("ylg_sagan", "ylg_official" if ylg_dir else "tfgan_example")]


def format_table(results):
  """results: [(model, code, [ours totals], [official totals], error or None)] -> markdown."""
  lines = ["| model (paper config) | ours s (median) | official code | official s (median) "
           "| ours / official |", "|---|---:|---|---:|---:|"]
  for model, code, ours, official, error in results:
    if error:
      lines.append(f"| {model} | FAILED | {code} | {error.replace('|', '/')} | |")
      continue
    a, b = statistics.median(ours), statistics.median(official)
    lines.append(f"| {model} | {a:.1f} | {code} | {b:.1f} | {a / b:.2f}x |")
  return "\n".join(lines)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--rounds", type=int, default=1)
  p.add_argument("--batch_size", type=int, default=8)
  p.add_argument("--models", default="sagan,ylg_sagan")
  p.add_argument("--ylg_dir", help="root of a checkout of giannisdaras/ylg (holding ylg/)")
  p.add_argument("--one", choices=("tfgan_example", "ylg_official"), help=argparse.SUPPRESS)
  p.add_argument("--start", type=float, help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  if args.one:
    print(json.dumps(official_one(args.one, args.batch_size, args.start, args.ylg_dir)))
    return None
  if args.rounds < 1 or args.batch_size < 1:
    p.error("--rounds and --batch_size must be >= 1")
  if args.ylg_dir:
    from bench import tfgan_example  # pylint: disable=import-outside-toplevel
    try:
      tfgan_example.import_ylg_official(args.ylg_dir)  # checks the checkout before any run
    except ValueError as e:
      p.error(str(e))
  models = args.models.split(",")
  pairs = [(m, c) for m, c in contenders(args.ylg_dir) if m in models]
  if not pairs:
    p.error(f"--models: choose among {', '.join(m for m, _ in contenders(args.ylg_dir))}")
  load, start = os.getloadavg()[0], time.time()
  results = []
  for model, code in pairs:
    ours, official, error = [], [], None
    for _ in range(args.rounds):
      for out, fn in ((ours, lambda: measure_ours(model, args.batch_size)),
                      (official, lambda: measure_official(code, args.batch_size, args.ylg_dir))):
        r = fn()
        if "error" in r:
          error = r["error"]
          break
        out.append(r["total"])
        print(f"  {model} {'ours' if out is ours else code}: {r['total']:.1f} s", file=sys.stderr,
              flush=True)
      if error:
        break
    results.append((model, code, ours, official, error))
  print(f"\nSeconds from a fresh process's start to the end of its first step; paper widths "
        f"(gf = df = 64, 128 px, 1000 classes), batch {args.batch_size}; {args.rounds} round(s), "
        f"alternating ours / official; {os.cpu_count()} CPUs, load average {load:.1f} -> "
        f"{os.getloadavg()[0]:.1f}; ran {time.time() - start:.0f} s\n")
  print(format_table(results))
  return results


if __name__ == "__main__":
  main()
