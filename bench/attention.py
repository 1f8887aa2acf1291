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

  python bench/attention.py --alternate --sizes=64 --rounds=9   # sparse vs dense, one process

--alternate builds the YLG layers (sparse, dense with the -inf mask, dense with the official
additive -1000 mask) in one process and times them in turn, round after round, so each round sees
the same background load; it prints each layer's median wall and process CPU time and the sparse /
dense ratios. --core times only the attention computation (issue #27 item 2's "sparse
attention" against "the dense masked computation the official code uses"): from theta, phi and g
(as the layer's 1x1 convolutions and pooling give them, heads last) to the heads' output, forward
and backward w.r.t. theta, phi and g; without the projections, the pooling, the output convolution
and the residual, which both paths share (with --core, ylg_dense_official is the official
`sn_attention_block_sim`'s sequence: head transposes, logits, + (1 - M) * -1000, softmax, values,
heads to the end). --baseline=DIR adds ylg_sparse_baseline: DIR's tfgan_attention/ylg_attention.py
and ylg_sparse.py (e.g. a checkout of main; the other modules are this tree's) as a fourth layer.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.memory import mem_available_gb, time_and_peak  # pylint: disable=wrong-import-position

LAYERS = ("sagan_1head", "sagan_8heads", "ylg_dense", "ylg_sparse", "ylg_dense_official")
ALTERNATE = ("ylg_sparse", "ylg_dense", "ylg_dense_official")


def _baseline_ylg(root):
  """YLGAttention class of `root`'s ylg_attention.py over `root`'s ylg_sparse.py (both loaded
  under private names; their other imports resolve to this tree)."""
  import importlib.util  # pylint: disable=import-outside-toplevel
  import types  # pylint: disable=import-outside-toplevel
  path = lambda name: os.path.join(root, "tfgan_attention", name)
  spec = importlib.util.spec_from_file_location("baseline_ylg_sparse", path("ylg_sparse.py"))
  sparse = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(sparse)
  sys.modules["baseline_ylg_sparse"] = sparse
  with open(path("ylg_attention.py"), encoding="utf-8") as f:
    source = f.read().replace("from tfgan_attention.ylg_sparse import",
                              "from baseline_ylg_sparse import")
  module = types.ModuleType("baseline_ylg_attention")
  # pylint: disable-next=exec-used
  exec(compile(source, path("ylg_attention.py"), "exec"), module.__dict__)
  return module.YLGAttention


_BASELINE = []  # --baseline's YLGAttention class


def _make_layer(name):
  from tfgan_attention import SelfAttention, YLGAttention  # pylint: disable=import-outside-toplevel
  if name == "ylg_sparse_baseline":
    return _BASELINE[0]()
  return {"sagan_1head": lambda: SelfAttention(num_heads=1),
          "sagan_8heads": lambda: SelfAttention(num_heads=8),
          "ylg_dense": lambda: YLGAttention(implementation="dense"),
          "ylg_sparse": lambda: YLGAttention(implementation="sparse"),
          "ylg_dense_official": lambda: YLGAttention(implementation="dense",
                                                     masking="official_additive")}[name]()


def _traced_step(name, x):
  """A traced tf.function: forward, loss, gradients w.r.t. x and the weights of layer `name`."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  tf.keras.utils.set_random_seed(0)
  layer = _make_layer(name)
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
  return step


def _traced_core_step(name, x):
  """A traced tf.function over theta, phi, g [B, N, 8, d] from x's shape: the attention core of
  YLG layer `name` (see --core), forward, loss and gradients w.r.t. theta, phi and g."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tfgan_attention import ylg_attention  # pylint: disable=import-outside-toplevel
  from tfgan_attention.ylg_sparse import sparse_attention  # pylint: disable=import-outside-toplevel
  layer = _make_layer(name)
  layer.build(x.shape)
  b, h, w, c = x.shape
  heads = ylg_attention.NUM_HEADS
  gen = tf.random.Generator.from_seed(0)
  theta = gen.normal([b, h * w, heads, c // 8 // heads])
  phi = gen.normal([b, h * w // 4, heads, c // 8 // heads])
  g = gen.normal([b, h * w // 4, heads, c // 2 // heads])
  to_heads = lambda t: tf.transpose(t, [0, 2, 1, 3])  # [B, 8, N, d], as the official code

  @tf.function
  def step(theta, phi, g):
    with tf.GradientTape() as tape:
      tape.watch([theta, phi, g])
      if layer.implementation == "sparse":
        o = sparse_attention(theta, phi, g, layer._plan, heads_last=True)  # pylint: disable=protected-access
      else:
        o, _ = layer._dense_attention(to_heads(theta), to_heads(phi), to_heads(g))  # pylint: disable=protected-access
        o = tf.transpose(o, [0, 2, 3, 1])  # heads to the end, as the official code
      loss = tf.reduce_sum(tf.reshape(o, [b, h, w, c // 2]) ** 2)
    grads = tape.gradient(loss, [theta, phi, g])
    return tf.add_n([tf.reduce_sum(t) for t in grads])

  step.get_concrete_function(theta, phi, g)
  return lambda _: step(theta, phi, g)


def run_one(name, size, batch, channels, steps):
  """Measures one layer in this process; returns {"ms": ..., "peak_mb": ...}."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  x = tf.random.normal([batch, size, size, channels], seed=0)  # [B, H, W, C]
  return time_and_peak(_traced_step(name, x), x, steps)


def alternate(names, size, batch, channels, rounds, core=False):
  """{layer: [ms of each round]}: the layers' steps (their attention cores with `core`) built in
  this process, then run in turn (after one untimed call each), `rounds` times."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  x = tf.random.normal([batch, size, size, channels], seed=0)  # [B, H, W, C]
  steps = {name: (_traced_core_step if core else _traced_step)(name, x) for name in names}
  for step in steps.values():
    step(x).numpy()
  times = {name: ([], []) for name in names}  # wall ms, process CPU ms
  for _ in range(rounds):
    for name, step in steps.items():
      start, cpu = time.perf_counter(), time.process_time()
      step(x).numpy()
      times[name][0].append(1000 * (time.perf_counter() - start))
      times[name][1].append(1000 * (time.process_time() - cpu))
  return times


def format_alternate(times, size, batch, channels, loads, core=False):
  """The --alternate table: median (min-max) wall ms and median CPU ms per layer, then each
  sparse layer / each dense layer at the medians."""
  import statistics  # pylint: disable=import-outside-toplevel
  rounds = len(next(iter(times.values()))[0])
  med = {name: [statistics.median(t) for t in ts] for name, ts in times.items()}
  what = ("the attention core only (theta, phi, g -> heads' output)" if core
          else "the whole layer")
  lines = [f"{size}x{size}, batch {batch}, {channels} channels, forward+backward of {what}; {rounds} "
           f"rounds alternating in one process; {os.cpu_count()} CPU cores, load average "
           f"{loads[0]:.1f} -> {loads[1]:.1f}", "",
           "| layer | median wall ms | min - max wall ms | median process CPU ms |",
           "|---|---:|---:|---:|"]
  lines += [f"| {name} | {med[name][0]:,.0f} | {min(ts[0]):,.0f} - {max(ts[0]):,.0f} | "
            f"{med[name][1]:,.0f} |" for name, ts in times.items()]
  for sparse in [n for n in times if n.startswith("ylg_sparse")]:
    for dense in [n for n in times if n.startswith("ylg_dense")]:
      lines.append(f"\n{sparse} / {dense} = {med[sparse][0] / med[dense][0]:.3f}x wall time, "
                   f"{med[sparse][1] / med[dense][1]:.3f}x CPU time (medians)")
  return "\n".join(lines)


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
  p.add_argument("--alternate", action="store_true",
                 help="time the layers in one process, in turn (default layers: "
                      f"{','.join(ALTERNATE)}; --sizes: each size on its own)")
  p.add_argument("--rounds", type=int, default=7, help="--alternate: timed rounds")
  p.add_argument("--core", action="store_true",
                 help="--alternate: time the attention core only, without the projections")
  p.add_argument("--baseline", help="--alternate: also time DIR's YLG sparse layer")
  p.add_argument("--one", nargs=2, metavar=("LAYER", "SIZE"), help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  unknown = [name for name in args.layers.split(",") if name not in LAYERS]
  if unknown:  # before any subprocess runs (a child would fail on it after the others ran)
    p.error(f"--layers: unknown {', '.join(map(repr, unknown))}; choose among {', '.join(LAYERS)}")
  if args.alternate:
    names = args.layers.split(",") if args.layers != ",".join(LAYERS) else list(ALTERNATE)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.baseline:
      _BASELINE.append(_baseline_ylg(os.path.abspath(args.baseline)))
      names.insert(1, "ylg_sparse_baseline")
    for size in (int(s) for s in args.sizes.split(",")):
      load = os.getloadavg()[0]
      times = alternate(names, size, args.batch, args.channels, args.rounds, args.core)
      print(format_alternate(times, size, args.batch, args.channels,
                             (load, os.getloadavg()[0]), args.core) + "\n")
    return
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
