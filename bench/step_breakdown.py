"""Where a training step's time goes: RunMetadata step-stats timelines aggregated by op name scope.

  python -m bench.step_breakdown     # SAGAN, YLG-SAGAN (128 px), LadaGAN (32 px), AttnGAN (64 px)
  python -m bench.step_breakdown --configs=sagan:128:16:8:32 --num_classes=1000 --engine=gan_estimator

Each config trains (bench.train_step.run_one: our estimator on in-memory random images) --warmup
untraced steps, then --steps untimed-by-tracing steps (their median wall time is the step time
without tracing overhead), then --traced steps in which EVERY `session.run` of the process (the
estimator's own, TF-GAN's sequential D and G hooks', any other hook's) runs with
RunOptions(trace_level=FULL_TRACE). Each call's RunMetadata step stats give, per executed node, its
run time; nodes are put in buckets by name scope and op type:

  input               IteratorGetNext (waiting for the tf.data pipeline, which runs beside)
  G forward / D forward       nodes under TF-GAN's Generator / Discriminator(_1) scopes
  G backward / D backward     gradient nodes ('gradients/...') of those scopes
  spectral norm (power it.)   nodes of tfgan_attention.spectral_norm.spectral_normalize (power
                      iteration, sigma, W / sigma; the tool wraps it in a 'spectral_norm' name scope
                      for the run, which changes no computation), forward
  spectral norm backward      their gradient nodes (the gradient through W / sigma)
  optimiser updates   Adam (and EMA) apply ops, and the train ops' variable updates
  summaries           *Summary ops
  non-finite guard    CheckNumerics
  other               global step, losses, control, send/recv...

Two more tables: the --top op types (Conv2D, BatchMatMul, GatherV2, ...) and the --top layers
(the node's scope two levels under Generator / Discriminator, e.g. Generator/generator/g_ops, its
gradient nodes included) by summed op time.

A model with a frozen DAMSM (AttnGAN) needs captions and a DAMSM: it runs through
bench.attngan_step's step (its tiny settings at the config's image size and batch, a random-weight
DAMSM written first, random captions), e.g. --configs=attngan:64:paper:4.

Node times are summed over the inter-op threads (they overlap), so a bucket's "op ms/step" can
exceed its share of wall time; shares are of the summed op time. The session.run table gives the
wall time of each kind of call per step (FULL_TRACE adds overhead: compare the traced step with the
untraced one in the header).
"""
import argparse
import collections
import contextlib
import os
import re
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if sys.path[0] != ROOT:
  sys.path.insert(0, ROOT)

# YLG's 8 heads need >= 64 channels at the attention block: df 32 at 128 px / 32x32.
DEFAULT_CONFIGS = (
    "sagan:128:16:8:32,ylg_sagan:128:16/32:8:32,ladagan:32:paper:16,attngan:64:paper:4")
BUCKETS = ("input", "G forward", "D forward", "G backward", "D backward",
           "spectral norm (power iteration, W / sigma)", "spectral norm backward",
           "optimiser updates", "summaries", "non-finite guard", "other")
SN_SCOPE = "spectral_norm"


def op_type(node_stats):
  """'Conv2D' from a NodeExecStats' timeline label 'name = Conv2D(inputs)'."""
  match = re.match(r"[^=]*=\s*([A-Za-z0-9_]+)\(", node_stats.timeline_label or "")
  return match.group(1) if match else ""


def bucket(name, kind):
  """The BUCKETS entry of a node (its graph name and op type)."""
  parts = name.split("/")
  lowered = name.lower()
  if "Summary" in kind:
    return "summaries"
  if kind.startswith("IteratorGetNext") or kind == "IteratorGetNextSync":
    return "input"
  if kind == "CheckNumerics":
    return "non-finite guard"
  grad = any(p == "gradients" or p.startswith("gradients_") for p in parts)
  if SN_SCOPE in parts or any(p.startswith(SN_SCOPE + "_") for p in parts):
    return "spectral norm backward" if grad else "spectral norm (power iteration, W / sigma)"
  if ("Adam" in kind or "adam" in lowered or "ExponentialMovingAverage" in name
      or kind.startswith("ResourceApply") or kind.startswith("Apply")):
    return "optimiser updates"
  is_g = any(p == "Generator" or p.startswith("Generator_") for p in parts)
  is_d = any(p == "Discriminator" or p.startswith("Discriminator_") for p in parts)
  if grad and (is_g or is_d):
    # A gradient node lives under the scope of the forward op it differentiates.
    g_at = min((i for i, p in enumerate(parts) if p.startswith("Generator")), default=1 << 30)
    d_at = min((i for i, p in enumerate(parts) if p.startswith("Discriminator")), default=1 << 30)
    return "G backward" if g_at < d_at else "D backward"
  if is_g:
    return "G forward"
  if is_d:
    return "D forward"
  return "other"


def call_kind(fetches):
  """A session.run call's role from its fetches' names."""
  names = []

  def walk(x):
    if isinstance(x, dict):
      for v in x.values():
        walk(v)
    elif isinstance(x, (list, tuple)):
      for v in x:
        walk(v)
    else:
      names.append(getattr(x, "name", str(x)))
  walk(fetches)
  text = " ".join(names)
  if "discriminator_train" in text and "generator_train" not in text:
    return "D update (TF-GAN hook)"
  if "generator_train" in text and "discriminator_train" not in text:
    return "G update (TF-GAN hook)"
  return "estimator step (train op, loss, hook fetches)"


class Tracer:
  """Patches Session.run to trace every call while `active`; keeps per-call records."""

  def __init__(self):
    self.active = False
    self.step = -1
    self.calls = []  # (step, kind, wall seconds, RunMetadata)

  @contextlib.contextmanager
  def installed(self):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from tensorflow.python.client import session as tf_session  # pylint: disable=import-outside-toplevel
    original = tf_session.BaseSession.run
    tracer = self

    def run(sess, fetches, feed_dict=None, options=None, run_metadata=None):
      if not tracer.active:
        return original(sess, fetches, feed_dict, options, run_metadata)
      opts = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
      if options is not None:
        opts.MergeFrom(options)
      metadata = tf.compat.v1.RunMetadata()
      start = time.perf_counter()
      out = original(sess, fetches, feed_dict, opts, metadata)
      tracer.calls.append((tracer.step, call_kind(fetches), time.perf_counter() - start,
                           metadata))
      if run_metadata is not None:
        run_metadata.MergeFrom(metadata)
      return out
    tf_session.BaseSession.run = run
    try:
      yield self
    finally:
      tf_session.BaseSession.run = original


@contextlib.contextmanager
def spectral_norm_scope():
  """Runs tfgan_attention's spectral_normalize inside a 'spectral_norm' name scope (names only)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tfgan_attention import spectral_norm  # pylint: disable=import-outside-toplevel
  original = spectral_norm.spectral_normalize

  def scoped(*args, **kwargs):
    with tf.name_scope(SN_SCOPE):
      return original(*args, **kwargs)
  spectral_norm.spectral_normalize = scoped
  try:
    yield
  finally:
    spectral_norm.spectral_normalize = original


def window_hook(tracer, warmup, untraced, traced):
  """Steps 1..warmup untimed; the next `untraced` timed; the last `traced` traced."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  class Window(tf.estimator.SessionRunHook):
    def __init__(self):
      self.count = 0
      self.ends = []

    def after_run(self, run_context, run_values):
      self.count += 1
      self.ends.append(time.perf_counter())
      if self.count == warmup + untraced:
        tracer.active, tracer.step = True, 0
      elif tracer.active:
        tracer.step += 1
      if self.count == warmup + untraced + traced:
        tracer.active = False

    def untraced_ms(self):
      ends = self.ends[warmup - 1:warmup + untraced]
      return statistics.median(1000 * (b - a) for a, b in zip(ends, ends[1:]))

    def traced_ms(self):
      ends = self.ends[warmup + untraced - 1:]
      return statistics.median(1000 * (b - a) for a, b in zip(ends, ends[1:]))
  return Window()


def layer(name):
  """The node's layer: its scope two levels under Generator* / Discriminator* (gradient nodes
  with their forward op's), e.g. 'Generator/generator/g_ops'; '' outside both networks."""
  parts = name.split("/")
  at = next((i for i, p in enumerate(parts)
             if p.startswith("Generator") or p.startswith("Discriminator")), None)
  if at is None:
    return ""
  net = "Generator" if parts[at].startswith("Generator") else "Discriminator"
  return "/".join([net] + parts[at + 1:at + 3][:len(parts) - at - 2])


def aggregate(calls, traced):
  """({bucket: op ms per step}, {call kind: (calls per step, wall ms per step)},
  {op type: op ms per step}, {layer: op ms per step})."""
  ops = collections.Counter()
  kinds, layers = collections.Counter(), collections.Counter()
  runs = collections.defaultdict(lambda: [0, 0.0])
  for _, kind, wall, metadata in calls:
    runs[kind][0] += 1
    runs[kind][1] += wall * 1000
    for device in metadata.step_stats.dev_stats:
      for node in device.node_stats:
        name = node.node_name.split(":")[0]
        if name in ("_SOURCE", "_SINK"):
          continue
        ms = node.all_end_rel_micros / 1000.0
        kind = op_type(node)
        ops[bucket(name, kind)] += ms
        kinds[kind.replace("_Mkl", "").replace("Native", "")] += ms  # oneDNN's names: the op's
        layers[layer(name) or "(outside G and D)"] += ms
  per_step = lambda c: {k: v / traced for k, v in c.most_common()}
  return ({b: ops[b] / traced for b in BUCKETS},
          {k: (n / traced, ms / traced) for k, (n, ms) in sorted(runs.items())},
          per_step(kinds), per_step(layers))


def _train(config, *, steps, warmup, num_classes, overrides, hooks):
  """bench.train_step.run_one, or for a model with a frozen DAMSM bench.attngan_step's step (its
  tiny settings at the config's image size and batch, after writing a random-weight DAMSM)."""
  from bench import attngan_step, setup_time, train_step  # pylint: disable=import-outside-toplevel
  if not setup_time._has_damsm(config.model):  # pylint: disable=protected-access
    return train_step.run_one(config, steps=steps, warmup=warmup, num_classes=num_classes,
                              overrides=overrides, hooks=hooks)
  s = attngan_step.settings(False, [f"image_size={config.image_size}",
                                    f"batch_size={config.batch}"])
  with tempfile.TemporaryDirectory(prefix="bench_step_breakdown_") as workdir:
    s.update(attngan_step.prepare(workdir, s))
    return attngan_step.run_attngan(workdir, s, steps, warmup, True, hooks=hooks,
                                    overrides=overrides)


def breakdown(config, *, num_classes, warmup, untraced, traced, engine=None, overrides=None):
  """Trains `config` with tracing; returns a dict for format_breakdown."""
  from bench import train_step  # pylint: disable=import-outside-toplevel
  tracer = Tracer()
  hook = window_hook(tracer, warmup, untraced, traced)
  extra = dict(overrides or {})
  if engine:
    extra["engine"] = engine
  with tracer.installed(), spectral_norm_scope():
    result = _train(config, steps=untraced + traced, warmup=warmup, num_classes=num_classes,
                    overrides=extra, hooks=[hook])
  ops, runs, kinds, layers = aggregate([c for c in tracer.calls if 0 <= c[0] < traced], traced)
  return {"config": train_step.config_text(config), "engine": result.get("engine", ""),
          "distribution": result["distribution"], "untraced_ms": hook.untraced_ms(),
          "traced_ms": hook.traced_ms(), "ops": ops, "runs": runs, "op_types": kinds,
          "layers": layers}


def _top(title, values, total, top):
  """Markdown rows of the `top` largest of {name: ms}, the rest summed."""
  items = list(values.items())
  rows = items[:top] + ([(f"{len(items) - top} others", sum(v for _, v in items[top:]))]
                        if len(items) > top else [])
  return ["", f"| {title} | op ms/step | share |", "|---|---:|---:|"] + [
      f"| {name} | {ms:.1f} | {100 * ms / total:.1f}% |" for name, ms in rows]


def format_breakdown(b, top=8):
  total = sum(b["ops"].values()) or 1.0
  lines = [f"### {b['config']} (engine {b['engine']}, distribution {b['distribution']}): "
           f"{b['untraced_ms']:.0f} ms/step untraced, {b['traced_ms']:.0f} ms/step traced", "",
           "| session.run call | calls/step | wall ms/step |", "|---|---:|---:|"]
  for kind, (n, ms) in b["runs"].items():
    lines.append(f"| {kind} | {n:.1f} | {ms:.0f} |")
  lines += ["", "| bucket | op ms/step (summed over threads) | share |", "|---|---:|---:|"]
  for name in BUCKETS:
    ms = b["ops"][name]
    lines.append(f"| {name} | {ms:.1f} | {100 * ms / total:.1f}% |")
  lines.append(f"| total | {total:.1f} | 100% |")
  lines += _top("op type", b["op_types"], total, top) + _top("layer", b["layers"], total, top)
  return "\n".join(lines)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--configs", default=DEFAULT_CONFIGS,
                 help=f"bench.train_step configs (default {DEFAULT_CONFIGS})")
  p.add_argument("--num_classes", type=int, default=1000)
  p.add_argument("--engine", default=None, choices=("gan_estimator", "in_graph"),
                 help="GANConfig.engine (default: the project default)")
  p.add_argument("--warmup", type=int, default=3)
  p.add_argument("--untraced", type=int, default=3, help="timed steps without tracing")
  p.add_argument("--traced", type=int, default=3, help="traced steps (aggregated)")
  p.add_argument("--top", type=int, default=8, help="rows of the op-type and layer tables")
  args = p.parse_args(argv)
  from bench import train_step  # pylint: disable=import-outside-toplevel
  try:
    configs = train_step.parse_configs(args.configs)
  except ValueError as e:
    p.error(str(e))
  if min(args.warmup, args.untraced, args.traced) < 1:
    p.error("--warmup, --untraced and --traced must be >= 1")
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  load = os.getloadavg()[0]
  out = []
  failed = []
  for config in configs:
    try:
      out.append(breakdown(config, num_classes=args.num_classes, warmup=args.warmup,
                           untraced=args.untraced, traced=args.traced, engine=args.engine))
    except Exception as e:  # pylint: disable=broad-except  (the other configs still run)
      failed.append(f"{train_step.config_text(config)}: FAILED: {type(e).__name__}: {e}")
      print(failed[-1], file=sys.stderr, flush=True)
      continue
    print(f"  {out[-1]['config']}: {out[-1]['untraced_ms']:.0f} ms/step", file=sys.stderr,
          flush=True)
  print(f"\n{args.num_classes} classes (class-conditional models), float32; {args.warmup} "
        f"warm-up, {args.untraced} untraced and {args.traced} traced steps each; "
        f"{os.cpu_count()} CPUs, load average {load:.1f} -> {os.getloadavg()[0]:.1f}\n")
  print("\n\n".join(format_breakdown(b, args.top) for b in out))
  for line in failed:
    print(f"\n{line}")
  if failed:
    sys.exit(1)
  return out


if __name__ == "__main__":
  main()
