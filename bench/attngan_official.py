"""AttnGAN's training step against the official PyTorch iteration, alternating rounds.

  python -m bench.attngan_official --official_dir=~/src/AttnGAN --official_python=/tmp/torchenv/bin/python
  python -m bench.attngan_official ... --rounds=2 --steps=5 --warmup=2 --batch_size=4

Both sides at AttnGAN's CUB config (configs/attngan_cub.cfg = the official cfg/bird_attn2.yml: 3
stages to 256 px, GF 32, DF 64, Z 100, R_NUM 2, 256-d DAMSM, 18 words, lambda 5 x L_DAMSM on) at
--batch_size, random-weight DAMSM (written first, not timed), random captions and images in
memory. Ours: bench.attngan_step's `attngan` row (the default engine's full step: D and G
updates, EMA). Official: tools/official_check/attngan_official_step.py runs condGANTrainer.train's
loop body from the checkout's code/ (model.py, miscc/losses.py, miscc/utils.py, imported with
patches for torch 2, nothing of it in this project) under --official_python (a throwaway venv with
torch and torchvision). TensorFlow and torch cannot share a process here, so each round runs ours
then the official in fresh processes; images/s from the median of >= --steps timed steps after
--warmup, peak RSS = each process's VmHWM. The official's "set-up" = its process start to the
end of its first iteration (imports, G/D construction with orthogonal initialisation, DAMSM
load); ours is bench.setup_time's attngan:paper row (the same span, by phase).
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
DRIVER = os.path.join(ROOT, "tools", "official_check", "attngan_official_step.py")


def official_code_dir(path):
  """The checkout's code/ directory (taoxugit/AttnGAN layout), or ValueError saying what is
  missing."""
  code = os.path.join(os.path.expanduser(path), "code")
  missing = [f for f in ("model.py", "miscc/losses.py", "miscc/config.py", "GlobalAttention.py")
             if not os.path.isfile(os.path.join(code, f))]
  if missing:
    raise ValueError(f"--official_dir={path}: not a taoxugit/AttnGAN checkout (no "
                     f"{', '.join('code/' + m for m in missing)}); clone "
                     f"https://github.com/taoxugit/AttnGAN and pass its top directory")
  return code


def check_python(path):
  """`path` if it is an executable file, else ValueError."""
  if not (os.path.isfile(path) and os.access(path, os.X_OK)):
    raise ValueError(f"--official_python={path}: no such executable; make a throwaway venv with "
                     f"torch and torchvision (never the project's) and pass its bin/python")
  return path


def _run_driver(python, code_dir, workdir, *args):
  start = time.time()
  out = subprocess.run([python, DRIVER, code_dir, workdir, *args, f"--start={start!r}"],
                       capture_output=True, text=True)
  if out.returncode != 0:
    tail = (out.stderr.strip().splitlines() or ["(no stderr)"])[-1]
    return {"error": f"exit {out.returncode}: {tail}"}
  return json.loads(out.stdout.strip().splitlines()[-1])


def run_official(python, code_dir, workdir, batch, steps, warmup):
  """One official run (its DAMSM files written first if absent): the driver's result dict."""
  if not os.path.exists(os.path.join(workdir, "image_encoder200.pth")):
    prepared = _run_driver(python, code_dir, workdir, "--prepare")
    if "error" in prepared:
      return prepared
  return _run_driver(python, code_dir, workdir, f"--batch={batch}", f"--steps={steps}",
                     f"--warmup={warmup}")


def run_ours(batch, steps, warmup, overrides=()):
  """bench.attngan_step's `attngan` row at the CUB settings and `batch`."""
  from bench import attngan_step  # pylint: disable=import-outside-toplevel
  s = attngan_step.settings(True, [f"batch_size={batch}", *overrides])
  return attngan_step.measure(s, ["attngan"], steps, warmup)["attngan"]


def summarise(rounds):
  """{side: {images_per_sec, peak_rss_mb: medians over the rounds}} (a failed side: its error)."""
  out = {}
  for side in ("ours", "official"):
    results = [r[side] for r in rounds]
    failed = next((r for r in results if "error" in r), None)
    out[side] = failed or {k: statistics.median(r[k] for r in results)
                           for k in ("images_per_sec", "median_step_s", "peak_rss_mb")}
  return out


def format_table(rounds, batch):
  lines = [f"AttnGAN CUB config (3 stages to 256 px, GF 32, DF 64, DAMSM term on), batch {batch}",
           "", "| round | ours images/s | official images/s | ratio | ours peak RSS MB | "
           "official peak RSS MB | memory ratio |", "|---|---:|---:|---:|---:|---:|---:|"]
  rows = [(str(i + 1), r) for i, r in enumerate(rounds)]
  if len(rounds) > 1:
    rows.append(("median", summarise(rounds)))
  for name, r in rows:
    ours, off = r["ours"], r["official"]
    if "error" in ours or "error" in off:
      lines.append(f"| {name} | FAILED: {(ours.get('error') or off.get('error')).replace('|', '/')}"
                   " | | | | | |")
      continue
    lines.append(f"| {name} | {ours['images_per_sec']:.3f} | {off['images_per_sec']:.3f} | "
                 f"{ours['images_per_sec'] / off['images_per_sec']:.2f}x | "
                 f"{ours['peak_rss_mb']:,.0f} | {off['peak_rss_mb']:,.0f} | "
                 f"{ours['peak_rss_mb'] / off['peak_rss_mb']:.2f}x |")
  setups = [r["official"]["setup_to_first_step_s"] for r in rounds
            if "setup_to_first_step_s" in r["official"]]
  if setups:
    lines += ["", f"Official set-up (process start to the end of its first iteration): median "
                  f"{statistics.median(setups):.1f} s (ours: python -m bench.setup_time "
                  f"--rows=attngan:paper --official_dir=... --official_python=...)"]
  return "\n".join(lines)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--official_dir", required=True, help="a taoxugit/AttnGAN checkout")
  p.add_argument("--official_python", required=True, help="python of a venv with torch")
  p.add_argument("--rounds", type=int, default=2)
  p.add_argument("--steps", type=int, default=5, help="timed steps per run (>= 5 for the goal)")
  p.add_argument("--warmup", type=int, default=2)
  p.add_argument("--batch_size", type=int, default=4)
  p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                 help="an AttnGAN setting of ours (bench.attngan_step --set), e.g. a speed flag")
  args = p.parse_args(argv)
  try:
    code_dir = official_code_dir(args.official_dir)
    python = check_python(args.official_python)
  except ValueError as e:
    p.error(str(e))
  if min(args.rounds, args.steps, args.warmup) < 1 or args.batch_size < 2:
    p.error("--rounds, --steps, --warmup must be >= 1 and --batch_size >= 2")
  load, began = os.getloadavg()[0], time.time()
  rounds = []
  with tempfile.TemporaryDirectory(prefix="bench_attngan_official_") as workdir:
    for index in range(args.rounds):
      ours = run_ours(args.batch_size, args.steps, args.warmup, args.set)
      official = run_official(python, code_dir, workdir, args.batch_size, args.steps, args.warmup)
      rounds.append({"ours": ours, "official": official})
      print(f"  round {index + 1} (load {os.getloadavg()[0]:.1f}): {json.dumps(rounds[-1])}",
            file=sys.stderr, flush=True)
  print(f"AttnGAN step, ours against the official PyTorch iteration ({os.cpu_count()} CPUs, "
        f"load average {load:.1f} -> {os.getloadavg()[0]:.1f}, {time.strftime('%Y-%m-%d %H:%M')} "
        f"UTC); {args.warmup} warm-up + {args.steps} timed steps per run, {args.rounds} "
        f"alternating round(s), {time.time() - began:.0f} s in all.\n")
  print(format_table(rounds, args.batch_size))
  return rounds


if __name__ == "__main__":
  outcome = main()
  sys.exit(1 if any("error" in r[s] for r in outcome for s in r) else 0)
