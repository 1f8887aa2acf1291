"""Runs every benchmark and writes one markdown report: `python -m bench` (or bench/run_all.py).

  python -m bench                              # quick settings, all of them, -> bench/results.md
  python -m bench --only=attention,data        # a selection
  python -m bench --full                       # paper-scale settings (for a GPU machine)
  python -m bench --args='eval=--rounds=3'     # extra flags for one benchmark (repeatable)

Each benchmark (attention, lada_attention, train_step, tfgan_example, step_breakdown, attngan_step,
setup_time, eval, data, r_precision) runs as its own subprocess through its command line (`python -m
bench.NAME ...`, i.e. its `main`), one after another so they do not compete for the cores. Its stdout is its section of the report: kept
as markdown when it holds a markdown table, else shown as a fenced block. A benchmark that fails or
times out does not stop the others: the summary table records its exit status with the last line of
its stderr, and whatever it printed is kept. The report starts with the machine (CPUs, memory,
GPUs, TensorFlow version, date, load average); it is written atomically (data.atomic_io) and
printed.
"""
import argparse
import collections
import datetime
import os
import platform
import shlex
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if sys.path[0] != ROOT:  # as a script, bench/ would come first and bench/data.py shadow `data`
  sys.path.insert(0, ROOT)
DEFAULT_OUT = os.path.join(ROOT, "bench", "results.md")

# name -> (title, quick args, full args). Quick: the whole run stays well under 10 minutes on 2
# CPU cores. Full: each benchmark's own paper-scale defaults.
Benchmark = collections.namedtuple("Benchmark", "title quick full")
BENCHMARKS = {
    "attention": Benchmark(
        "Attention layers: forward + backward time and peak memory (CPU only: it hides GPUs)",
        ["--sizes=32,64", "--steps=2"], []),
    "lada_attention": Benchmark(
        "Lada (linear additive) attention vs dense dot-product attention: time and memory in N",
        ["--tokens=256,1024,4096", "--steps=2"], []),
    "train_step": Benchmark(
        "Training step: GANEstimator steps/s on synthetic in-memory data",
        [], ["--full"]),
    "attngan_step": Benchmark(
        "AttnGAN and DAMSM pretraining steps: images/s, peak memory, the frozen DAMSM's share",
        ["--steps=2", "--warmup=1"], ["--full"]),
    "tfgan_example": Benchmark(
        "Training step: our SAGAN vs TF-GAN's own SAGAN example (128 px, 1000 classes), "
        "interleaved step by step",
        ["--settings=16:8", "--steps=6"], []),
    "step_breakdown": Benchmark(
        "Training step: where the time goes (step-stats timelines by scope, op type, layer)",
        ["--configs=sagan:32:16/32:16,ylg_sagan:32:16/32:16,ladagan:32:paper:16,attngan:32:paper:8",
         "--num_classes=10", "--warmup=2", "--untraced=2", "--traced=2"], []),
    "setup_time": Benchmark(
        "Set-up time: seconds from the flags to the end of the first training step, by phase",
        ["--rows=sagan:tiny,ylg_sagan:tiny,ladagan:tiny,attngan:tiny"], ["--full"]),
    "eval": Benchmark(
        "Evaluation: streaming overhead and memory growth with sample count",
        ["--throughput_samples=128", "--rounds=2", "--memory_samples=1000,5000",
         "--memory_real_samples=1000", "--memory_feature_subset_size=1000"], []),
    "data": Benchmark(
        "Data pipelines: images/s against a bare decode of the same files",
        ["--num_images=192", "--passes=3"], []),
    "r_precision": Benchmark(
        "R-precision of generated images: peak memory streaming 10x more images",
        ["--images=300,3000", "--pool=3000"], []),
}

Outcome = collections.namedtuple("Outcome", "name command status seconds load stdout stderr")


def machine_info():
  """[(label, value)] describing where the numbers were measured."""
  info = [("date", datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")),
          ("CPU cores (os.cpu_count)", str(os.cpu_count()))]
  try:
    with open("/proc/cpuinfo") as f:
      model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), None)
    if model:
      info.append(("CPU model", model))
    with open("/proc/meminfo") as f:
      kb = next(int(l.split()[1]) for l in f if l.startswith("MemTotal:"))
    info.append(("memory", f"{kb / 2**20:.1f} GB"))
  except (OSError, StopIteration):
    pass
  info.append(("Python", platform.python_version()))
  try:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    gpus = tf.config.list_physical_devices("GPU")
    info += [("TensorFlow", tf.__version__),
             ("GPUs", ", ".join(g.name for g in gpus) if gpus else "none")]
  except Exception as e:  # pylint: disable=broad-except  (the report must still be written)
    info.append(("TensorFlow", f"import failed: {e}"))
  info.append(("load average at start (1 min)", f"{os.getloadavg()[0]:.1f}"))
  return info


def run_benchmark(name, args, timeout):
  """Runs `python -m bench.NAME args`; never raises for the benchmark's own failures."""
  command = [sys.executable, "-m", f"bench.{name}"] + list(args)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
             PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
  load, start = os.getloadavg()[0], time.time()
  try:  # its own process group, so a timeout also stops the subprocesses it started
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
  except OSError as e:
    return Outcome(name, command, f"FAILED to start: {e}", 0.0, f"{load:.1f}", "", str(e))
  try:
    stdout, stderr = proc.communicate(timeout=timeout)
    status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
  except subprocess.TimeoutExpired:
    os.killpg(proc.pid, signal.SIGKILL)
    stdout, stderr = proc.communicate()
    status = f"TIMED OUT after {timeout:.0f} s"
  except BaseException:  # Ctrl-C: do not leave the benchmark running on its own
    os.killpg(proc.pid, signal.SIGKILL)
    raise
  load = f"{load:.1f} -> {os.getloadavg()[0]:.1f}"
  return Outcome(name, command, status, time.time() - start, load, stdout, stderr)


def _last_error_line(stderr):
  lines = [l.strip() for l in stderr.splitlines() if l.strip()]
  return lines[-1] if lines else "(no stderr)"


def _section_body(stdout):
  """A benchmark's stdout as markdown: verbatim if it has a markdown table, else fenced."""
  lines = stdout.strip("\n").splitlines()
  has_table = any(a.lstrip().startswith("|") and b.lstrip().startswith("|-")
                  for a, b in zip(lines, lines[1:]))
  text = "\n".join(lines)
  if not text:
    return "(no output)"
  return text if has_table else f"```\n{text}\n```"


def _cell(text):
  return text.replace("|", "/").replace("\n", " ")


def render(info, outcomes, full):
  """The markdown report."""
  lines = ["# Benchmark results", "",
           f"Settings: {'full (paper scale)' if full else 'quick'}. "
           "Reproduce with the command in each section. Times are wall-clock; a load average "
           "near or above the core count means other processes shared the CPU (the benchmarks "
           "run one at a time), so treat times as upper bounds.", "",
           "| machine | |", "|---|---|"]
  lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in info]
  lines += ["", "| benchmark | status | wall time | load average (start -> end) |",
            "|---|---|---:|---|"]
  for o in outcomes:
    status = o.status if o.status == "ok" else f"{o.status}: {_last_error_line(o.stderr)}"
    lines.append(f"| {o.name} | {_cell(status)} | {o.seconds:.0f} s | {o.load} |")
  for o in outcomes:
    command = " ".join(["python -m", f"bench.{o.name}"] + [shlex.quote(a) for a in o.command[3:]])
    lines += ["", f"## {o.name}: {BENCHMARKS[o.name].title}", "", f"`{command}`", ""]
    if o.status != "ok":
      lines += [f"**{o.status}** after {o.seconds:.0f} s. End of its stderr:", "", "```"]
      lines += o.stderr.strip().splitlines()[-15:] + ["```", ""]
      if o.stdout.strip():
        lines += ["Its output before it stopped:", ""]
    if o.stdout.strip() or o.status == "ok":
      lines.append(_section_body(o.stdout))
  return "\n".join(lines) + "\n"


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--only", default=",".join(BENCHMARKS),
                 help=f"comma-separated selection of {','.join(BENCHMARKS)}")
  p.add_argument("--full", action="store_true", help="paper-scale settings of every benchmark")
  p.add_argument("--out", default=DEFAULT_OUT, help="markdown file to write")
  p.add_argument("--timeout", type=float, default=None,
                 help="seconds per benchmark before it is stopped (default 1800; --full 86400)")
  p.add_argument("--args", action="append", default=[], metavar="NAME=FLAGS",
                 help="extra flags for one benchmark, appended after the preset ones")
  args = p.parse_args(argv)
  args.only = [n.strip() for n in args.only.split(",") if n.strip()]
  unknown = [n for n in args.only if n not in BENCHMARKS]
  if unknown or not args.only:
    p.error(f"--only: unknown {unknown}; choose from {','.join(BENCHMARKS)}")
  extra = {}
  for item in args.args:
    name, sep, flags = item.partition("=")
    if not sep or name not in BENCHMARKS:
      p.error(f"--args {item!r}: expected NAME=FLAGS with NAME in {','.join(BENCHMARKS)}")
    extra.setdefault(name, []).extend(shlex.split(flags))
  args.extra = extra
  args.timeout = args.timeout or (86400.0 if args.full else 1800.0)
  return args


def main(argv=None):
  args = parse_args(sys.argv[1:] if argv is None else argv)
  info = machine_info()
  outcomes = []
  for name in args.only:
    preset = BENCHMARKS[name].full if args.full else BENCHMARKS[name].quick
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    outcomes.append(run_benchmark(name, preset + args.extra.get(name, []), args.timeout))
    print(f"[bench] {name}: {outcomes[-1].status} in {outcomes[-1].seconds:.0f} s",
          file=sys.stderr, flush=True)
  report = render(info, outcomes, args.full)
  from data.atomic_io import atomic_write_bytes  # pylint: disable=import-outside-toplevel
  atomic_write_bytes(args.out, report.encode())
  print(report)
  print(f"[bench] wrote {args.out}", file=sys.stderr)
  return 0 if all(o.status == "ok" for o in outcomes) else 1


if __name__ == "__main__":
  sys.exit(main())
