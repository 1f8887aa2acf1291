"""Lada (linear additive) attention against dense dot-product attention: time and peak memory.

  python bench/lada_attention.py            # the README table: N = 1024, 4096, 16384 tokens,
                                            # width 256, 4 heads, batch 8
  python bench/lada_attention.py --quick    # N = 256, 1024, batch 2, one timed step (a check)

Both layers have the same width and heads and the same four C x C projections (with bias); dense
attention is softmax(Q K^T / sqrt(d)) V per head, Lada is `tfgan_attention.LadaAttention`. Each
(layer, N) runs in its own subprocess, measured as bench/attention.py does: time is the median
wall time of one tf.function step (forward, loss, gradients w.r.t. input and weights) after a
tracing step; peak memory is the rise of the process's resident high-water mark (VmHWM, reset
through /proc/self/clear_refs) over its resident size just before the steps. Dense attention is
skipped (and the table says so) where its estimated peak exceeds --mem_budget_gb (default half
of MemAvailable): the larger of 3 float32 [B, heads, N, N] tensors (scores, weights, their
gradient) and the measured peak at a smaller N scaled by N^2.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.memory import mem_available_gb, time_and_peak  # pylint: disable=wrong-import-position

LAYERS = ("lada", "dense")


def _make_layer(name, heads):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tfgan_attention import LadaAttention  # pylint: disable=import-outside-toplevel

  class DenseAttention(tf.keras.layers.Layer):
    """Multi-head dot-product attention over all N x N token pairs (the quadratic baseline)."""

    def build(self, input_shape):
      c = int(input_shape[-1])
      self.q, self.k, self.v, self.o = (tf.keras.layers.Dense(c, name=n) for n in "qkvo")
      self.d = c // heads

    def call(self, x):
      b, n, c = tf.shape(x)[0], tf.shape(x)[1], x.shape[-1]
      split = lambda t: tf.transpose(tf.reshape(t, [b, n, heads, self.d]), [0, 2, 1, 3])
      q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))  # [B, heads, N, d]
      attn = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) / self.d ** 0.5)  # [B, h, N, N]
      y = tf.transpose(tf.matmul(attn, v), [0, 2, 1, 3])  # [B, N, heads, d]
      return self.o(tf.reshape(y, [b, n, c]))

  return LadaAttention(num_heads=heads) if name == "lada" else DenseAttention()


def run_one(name, tokens, batch, channels, heads, steps):
  """Measures one layer in this process; returns {"ms": ..., "peak_mb": ...}."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  tf.keras.utils.set_random_seed(0)
  layer = _make_layer(name, heads)
  x = tf.random.normal([batch, tokens, channels])  # [B, N, C]
  layer(x[:1, :4])

  @tf.function
  def step(x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      loss = tf.reduce_sum(layer(x) ** 2)
    grads = tape.gradient(loss, [x] + layer.trainable_variables)
    return tf.add_n([tf.reduce_sum(g) for g in grads])

  step.get_concrete_function(x)  # trace outside the measured region
  return time_and_peak(step, x, steps)


def dense_estimate_mb(tokens, batch, heads, measured):
  """Estimated dense peak (MB) at `tokens`; `measured` is [(tokens, peak_mb)] at smaller N."""
  est = 3 * batch * heads * tokens * tokens * 4 / 2**20
  for n, mb in measured:
    est = max(est, mb * (tokens / n) ** 2)
  return est


def _ratio(results, a, b):
  if a in results and b in results and results[a] and results[b]:
    return results[a]["ms"] / results[b]["ms"]
  return None


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--tokens", default="1024,4096,16384", help="sequence lengths N, ascending")
  p.add_argument("--layers", default=",".join(LAYERS))
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--channels", type=int, default=256)
  p.add_argument("--heads", type=int, default=4)
  p.add_argument("--steps", type=int, default=3, help="timed steps after the tracing step")
  p.add_argument("--quick", action="store_true",
                 help="N = 256, 1024, batch 2, one timed step: checks the benchmark runs")
  p.add_argument("--mem_budget_gb", type=float, default=None,
                 help="skip dense runs estimated above this (default: half of MemAvailable)")
  p.add_argument("--one", nargs=2, metavar=("LAYER", "TOKENS"), help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  if args.quick:
    args.tokens, args.batch, args.steps = "256,1024", 2, 1
  if args.one:
    print(json.dumps(run_one(args.one[0], int(args.one[1]), args.batch, args.channels,
                             args.heads, args.steps)))
    return
  budget_mb = 1024 * (args.mem_budget_gb or mem_available_gb() / 2)
  tokens = [int(n) for n in args.tokens.split(",")]
  layers = args.layers.split(",")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
             PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(
                 __file__))), os.environ.get("PYTHONPATH", "")]))
  results = {}  # (layer, N) -> {"ms", "peak_mb"} or None (skipped)
  skipped = {}  # (layer, N) -> estimated MB
  t_start = time.time()
  for n in tokens:
    for name in layers:
      if name == "dense":
        measured = [(m, results[(name, m)]["peak_mb"]) for m in tokens
                    if m < n and results.get((name, m))]
        est = dense_estimate_mb(n, args.batch, args.heads, measured)
        if est > budget_mb:
          results[(name, n)], skipped[(name, n)] = None, est
          continue
      cmd = [sys.executable, os.path.abspath(__file__), "--one", name, str(n),
             f"--batch={args.batch}", f"--channels={args.channels}", f"--heads={args.heads}",
             f"--steps={args.steps}"]
      out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
      results[(name, n)] = json.loads(out.stdout.strip().splitlines()[-1])
      r = results[(name, n)]
      print(f"  {name:6s} N={n:6d} {r['ms']:10.0f} ms {r['peak_mb']:9.0f} MB",
            file=sys.stderr, flush=True)
  print(f"\nbatch {args.batch}, width {args.channels}, {args.heads} heads, forward+backward; "
        f"{os.cpu_count()} CPU cores; memory budget {budget_mb / 1024:.1f} GB; "
        f"ran {time.time() - t_start:.0f} s\n")
  print("| layer | " + " | ".join(f"N={n} time (ms) | N={n} peak (MB)" for n in tokens) + " |")
  print("|---|" + "---:|---:|" * len(tokens))
  for name in layers:
    cells = []
    for n in tokens:
      r = results[(name, n)]
      if r is None:
        cells += [f"skipped (est. {skipped[(name, n)] / 1024:,.1f} GB)", "-"]
      else:
        cells += [f"{r['ms']:,.0f}", f"{r['peak_mb']:,.0f}"]
    print(f"| {name} | " + " | ".join(cells) + " |")
  print()
  lo, hi = tokens[0], tokens[-1]
  ratio = _ratio(results, ("lada", hi), ("lada", lo))
  if ratio is not None:
    print(f"- lada time(N={hi}) / time(N={lo}) = {ratio:.1f} (linear: {hi / lo:.0f})")
  for n in tokens:
    speed = _ratio(results, ("dense", n), ("lada", n))
    if speed is not None:
      mem = results[("dense", n)]["peak_mb"] / max(results[("lada", n)]["peak_mb"], 1e-3)
      print(f"- N={n}: dense / lada = {speed:.1f}x time, {mem:.1f}x peak memory")
  for (name, n), est in sorted(skipped.items()):
    print(f"- {name} at N={n} not run: estimated peak {est / 1024:.1f} GB > memory budget "
          f"{budget_mb / 1024:.1f} GB" + ("" if args.mem_budget_gb else " (half of MemAvailable)"))


if __name__ == "__main__":
  main()
