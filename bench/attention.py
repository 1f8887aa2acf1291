"""Forward+backward time and peak memory of SAGAN and YLG attention layers on this machine.

  python bench/attention.py                      # the README table: 32, 64, 128; batch 8; C = 256
  python bench/attention.py --sizes=32 --steps=2 # quicker

Each (layer, size) runs in its own subprocess. Time: median wall time of one tf.function step
(forward, loss, gradients w.r.t. input and weights, training=True) after a tracing step.
Peak memory: the process's resident high-water mark (VmHWM, reset through /proc/self/clear_refs)
during the steps, minus its resident size just before them (so it excludes TensorFlow itself, the
weights and the input). A run whose peak memory, extrapolated from the two smaller sizes as
a*N + b*N^2 (N = H*W), exceeds --mem_budget_gb is not made; its extrapolated time and memory are
shown instead, marked "est.".
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.memory import mem_available_gb, time_and_peak  # pylint: disable=wrong-import-position

LAYERS = ("sagan_1head", "sagan_8heads", "ylg_dense", "ylg_sparse")


def _make_layer(name):
  from tfgan_attention import SelfAttention, YLGAttention  # pylint: disable=import-outside-toplevel
  return {"sagan_1head": lambda: SelfAttention(num_heads=1),
          "sagan_8heads": lambda: SelfAttention(num_heads=8),
          "ylg_dense": lambda: YLGAttention(implementation="dense"),
          "ylg_sparse": lambda: YLGAttention(implementation="sparse")}[name]()


def run_one(name, size, batch, channels, steps):
  """Measures one layer in this process; returns {"ms": ..., "peak_mb": ...}."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  tf.keras.utils.set_random_seed(0)
  layer = _make_layer(name)
  x = tf.random.normal([batch, size, size, channels])  # [B, H, W, C]
  layer.build(x.shape)
  layer.sigma.assign(0.5)

  @tf.function
  def step(x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      loss = tf.reduce_sum(layer(x, training=True) ** 2)
    grads = tape.gradient(loss, [x] + layer.trainable_variables)
    return tf.add_n([tf.reduce_sum(g) for g in grads])

  step.get_concrete_function(x)  # trace outside the measured region
  return time_and_peak(step, x, steps)


def _extrapolate(points, size):
  """Value at `size` from two measured (size, value): a*N + b*N^2 with N = size^2."""
  (s1, v1), (s2, v2) = points[-2:]
  n1, n2, n = s1 * s1, s2 * s2, size * size
  b = (v2 / n2 - v1 / n1) / (n2 - n1)
  a = v1 / n1 - b * n1
  return max(a * n + b * n * n, v2)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--sizes", default="32,64,128", help="feature-map sizes H = W, ascending")
  p.add_argument("--layers", default=",".join(LAYERS), help=f"some of {', '.join(LAYERS)}")
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--channels", type=int, default=256)
  p.add_argument("--steps", type=int, default=3, help="timed steps after the tracing step")
  p.add_argument("--mem_budget_gb", type=float, default=None,
                 help="skip runs estimated above this (default: half of MemAvailable)")
  p.add_argument("--one", nargs=2, metavar=("LAYER", "SIZE"), help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  unknown = [name for name in args.layers.split(",") if name not in LAYERS]
  if unknown:  # before any subprocess runs (a child would fail on it after the others ran)
    p.error(f"--layers: unknown {', '.join(map(repr, unknown))}; choose among {', '.join(LAYERS)}")
  if args.one:
    print(json.dumps(run_one(args.one[0], int(args.one[1]), args.batch, args.channels,
                             args.steps)))
    return
  budget_mb = 1024 * (args.mem_budget_gb or mem_available_gb() / 2)
  sizes = [int(s) for s in args.sizes.split(",")]
  layers = args.layers.split(",")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
             PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(
                 __file__))), os.environ.get("PYTHONPATH", "")]))
  results = {}  # (layer, size) -> (ms, peak_mb, estimated)
  t_start = time.time()
  for size in sizes:
    for name in layers:
      done = [(s, results[(name, s)]) for s in sizes if (name, s) in results and
              not results[(name, s)][2]]
      if len(done) >= 2:
        est_mb = _extrapolate([(s, r[1]) for s, r in done], size)
        if est_mb > budget_mb:
          results[(name, size)] = (_extrapolate([(s, r[0]) for s, r in done], size), est_mb, True)
          continue
      cmd = [sys.executable, os.path.abspath(__file__), "--one", name, str(size),
             f"--batch={args.batch}", f"--channels={args.channels}", f"--steps={args.steps}"]
      out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
      r = json.loads(out.stdout.strip().splitlines()[-1])
      results[(name, size)] = (r["ms"], r["peak_mb"], False)
      print(f"  {name:13s} {size:4d}x{size:<4d} {r['ms']:10.0f} ms {r['peak_mb']:9.0f} MB",
            file=sys.stderr, flush=True)
  print(f"\nbatch {args.batch}, {args.channels} channels, keys pooled 2x2, forward+backward; "
        f"{os.cpu_count()} CPU cores; budget {budget_mb / 1024:.1f} GB; "
        f"ran {time.time() - t_start:.0f} s\n")
  print("| layer | " + " | ".join(f"{s}x{s} time (ms) | {s}x{s} peak (MB)" for s in sizes) + " |")
  print("|---|" + "---:|---:|" * len(sizes))
  for name in layers:
    cells = []
    for s in sizes:
      ms, mb, est = results[(name, s)]
      mark = " est." if est else ""
      cells += [f"{ms:,.0f}{mark}", f"{mb:,.0f}{mark}"]
    print(f"| {name} | " + " | ".join(cells) + " |")
  if "ylg_dense" in layers and "ylg_sparse" in layers:
    for s in sizes:
      d, sp = results[("ylg_dense", s)], results[("ylg_sparse", s)]
      print(f"\n{s}x{s}: ylg_sparse / ylg_dense = {sp[0] / d[0]:.2f}x time, "
            f"{sp[1] / d[1]:.2f}x peak memory" + (" (dense estimated)" if d[2] else ""), end="")
    print()


if __name__ == "__main__":
  main()
