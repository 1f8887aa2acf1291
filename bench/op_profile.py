"""Per-op time of any TensorFlow code (a tf.function or a TF1 session) from tf.profiler's trace.

`profiled(logdir)` wraps the steps to measure in tf.profiler.experimental.start / stop;
`op_times(logdir)` reads the XSpace it wrote (the host plane's executor events, one per executed
node, named 'node/name:OpType') and returns [(node name, op type, microseconds)]. The same reader
serves both sides of bench.lada_official's --breakdown, so eager functions (the official code) and
our estimator session are measured by one clock and one rule. `classify` puts a node in the
buckets of bench.step_breakdown (network, forward / backward) from its name, for both naming
schemes: ours ('Generator/...', 'gradients/Discriminator/...') and Keras eager
('generator/...', 'gradient_tape/discriminator/...').
"""
import collections
import contextlib
import glob
import os
import re

NETWORK = re.compile(r"^(generator|discriminator)(_\d+)?$")


@contextlib.contextmanager
def profiled(logdir):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  tf.profiler.experimental.start(logdir)
  try:
    yield
  finally:
    tf.profiler.experimental.stop()


def op_times(logdir, detail=False):
  """[(node name, op type, us)] of every op event in the newest trace under `logdir`."""
  from tensorflow.tsl.profiler.protobuf import xplane_pb2  # pylint: disable=import-outside-toplevel
  paths = sorted(glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb")),
                 key=os.path.getmtime)
  if not paths:
    raise RuntimeError(f"no profiler trace under {logdir}")
  space = xplane_pb2.XSpace()
  with open(paths[-1], "rb") as f:
    space.ParseFromString(f.read())
  out = []
  for plane in space.planes:
    if not plane.name.startswith("/host"):
      continue
    metadata = plane.event_metadata
    for line in plane.lines:
      if line.name == "python":  # the Python thread's API events, not op kernels
        continue
      for event in line.events:
        name = metadata[event.metadata_id].name
        if ":" not in name or " " in name or "::" in name:
          continue  # executor bookkeeping ('ExecutorState::Process'), not a node
        node, kind = name.rsplit(":", 1)
        kind = kind.replace("_Mkl", "").replace("Native", "")
        out.append((node, kind, event.duration_ps / 1e6) + (
            (line.name, (line.timestamp_ns * 1000 + event.offset_ps) / 1e6) if detail else ()))
  return out


def classify(node):
  """'G forward', 'D backward', ... from a node name (ours or Keras eager's)."""
  parts = node.split("/")
  lowered = [p.lower() for p in parts]
  grad = any(p.startswith("gradient") for p in lowered)
  if any("adam" in p for p in lowered) or any("exponentialmovingaverage" in p for p in lowered):
    return "optimiser and EMA updates"
  # 'Generator', 'Generator_1', Keras' 'generator'; not our train ops' 'generator_train' scope
  g_at = min((i for i, p in enumerate(lowered) if NETWORK.match(p) and p[0] == "g"), default=None)
  d_at = min((i for i, p in enumerate(lowered) if NETWORK.match(p) and p[0] == "d"), default=None)
  if g_at is None and d_at is None:
    return "other (augment, losses, EMA, control)"
  net = "G" if d_at is None or (g_at is not None and g_at < d_at) else "D"
  return f"{net} {'backward' if grad else 'forward'}"


def summarise(times, steps):
  """({op type: ms/step}, {bucket: ms/step}, total ms/step), largest first."""
  kinds, buckets = collections.Counter(), collections.Counter()
  for node, kind, us, *_ in times:
    kinds[kind] += us / 1000 / steps
    buckets[classify(node)] += us / 1000 / steps
  return dict(kinds.most_common()), dict(buckets.most_common()), sum(kinds.values())
