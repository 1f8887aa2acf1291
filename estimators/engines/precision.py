"""--mixed_precision through TensorFlow's graph rewrite (the engine TF1 estimator graphs have).

Grappler's auto-mixed-precision pass rewrites the estimator graph at run time: convolutions and
matmuls run in float16 (GPU) or bfloat16 (CPUs with AVX512-BF16/AMX, through oneDNN), while ops
on its deny list stay float32: Softmax (the attention maps), Mean/Sum (the losses and the BN batch
statistics), Exp/Log. Variables, optimiser state, checkpoints and the evaluation metrics are
float32 throughout. float16 adds dynamic loss scaling (tf.compat.v1's
MixedPrecisionLossScaleOptimizer: the loss is multiplied by a scale, steps whose gradients
overflow are skipped and the scale halves; after 2000 clean steps it doubles).

Set per estimator through its session options, not process-wide, so one process can hold a
float32 and a mixed run (tests do). Where it cannot help it is an error at start: no GPU and no
bfloat16 CPU; float16 without a GPU (grappler's CPU emulation pass, meant for exactly that
check, segfaults on these graphs in TF 2.15); TPU (bfloat16 scopes are not wired).
"""
import os

import tensorflow as tf

DTYPES = ("auto", "float16", "bfloat16")
# TensorFlow auto-clusters for XLA on a CPU only with this in TF_XLA_FLAGS; it reads the flags
# once, when it creates its first device (the first op or session), not when it is imported.
CPU_JIT_FLAG = "--tf_xla_cpu_global_jit"


class MixedPrecisionError(ValueError):
  """--mixed_precision cannot help (or run) on this machine or with these flags."""


class XlaUnavailableError(ValueError):
  """--xla would compile nothing in this process."""


def allow_cpu_autoclustering(environ=None):
  """Adds CPU_JIT_FLAG to TF_XLA_FLAGS (in `environ`, default os.environ) unless it is there.

  Without it a session's global_jit_level (--xla) compiles nothing on a CPU: TensorFlow's CPU
  compilation device auto-clusters only when explicitly asked. It must be set before TensorFlow
  creates its first device (run.py does so at start). On its own it compiles nothing: only a
  session with global_jit_level on (configure_session with --xla) is clustered."""
  environ = os.environ if environ is None else environ
  flags = environ.get("TF_XLA_FLAGS", "").split()
  if CPU_JIT_FLAG not in flags:
    environ["TF_XLA_FLAGS"] = " ".join(flags + [CPU_JIT_FLAG])


def compiled_ops(run_metadata):
  """Names of the XLA launch ops ('_XlaRun', 'XlaLaunch') in a RunMetadata's partition graphs
  (a session.run with RunOptions(output_partition_graphs=True)): empty when nothing compiled."""
  return sorted({node.op for graph in run_metadata.partition_graphs for node in graph.node
                 if node.op in ("_XlaRun", "XlaLaunch")})


_XLA_COMPILES = []  # the probe's answer, once per process


def xla_compiles():
  """True when a session with global_jit_level ON_1 compiles a small graph on the default
  device in this process (measured once: a 16x16 matmul and ReLU; well under a second)."""
  if not _XLA_COMPILES:
    graph = tf.Graph()
    with graph.as_default():
      x = tf.compat.v1.placeholder(tf.float32, [16, 16])
      y = tf.reduce_sum(tf.nn.relu(tf.matmul(x, x) + 1.0) * 2.0)
    config = tf.compat.v1.ConfigProto()
    config.graph_options.optimizer_options.global_jit_level = tf.compat.v1.OptimizerOptions.ON_1
    metadata = tf.compat.v1.RunMetadata()
    with tf.compat.v1.Session(graph=graph, config=config) as session:
      session.run(y, {x: [[1.0] * 16] * 16}, run_metadata=metadata,
                  options=tf.compat.v1.RunOptions(output_partition_graphs=True))
    _XLA_COMPILES.append(bool(compiled_ops(metadata)))
  return _XLA_COMPILES[0]


def _cpu_has_bf16():
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      flags = f.read()
  except OSError:
    return False
  return "avx512_bf16" in flags or "amx_bf16" in flags


def compute_dtype(cfg):
  """None (float32), 'float16' or 'bfloat16': what the run's convolutions compute in."""
  if not cfg.mixed_precision:
    return None
  if cfg.use_tpu:
    raise MixedPrecisionError("--mixed_precision is not wired for --use_tpu (TPUs would use "
                              "bfloat16 scopes); drop one of the two flags")
  requested = getattr(cfg, "mixed_precision_dtype", "auto")
  if requested not in DTYPES:
    raise MixedPrecisionError(f"mixed_precision_dtype must be one of {DTYPES}, got {requested!r}")
  has_gpu = bool(tf.config.list_physical_devices("GPU"))
  if requested == "auto":
    if has_gpu:
      return "float16"
    if _cpu_has_bf16():
      return "bfloat16"
    raise MixedPrecisionError(
        "--mixed_precision helps on a GPU (float16) or a CPU with AVX512-BF16/AMX (bfloat16); "
        "this machine has neither, so it would only slow training down. Drop the flag.")
  if requested == "bfloat16" and has_gpu:
    raise MixedPrecisionError("bfloat16 mixed precision is wired for CPUs only; on a GPU use "
                              "float16 (the default)")
  if requested == "float16" and not has_gpu:
    raise MixedPrecisionError("float16 mixed precision needs a GPU (grappler's CPU emulation "
                              "of it crashes TF 2.15 on these graphs); on this CPU use bfloat16")
  if requested == "bfloat16" and not _cpu_has_bf16():
    raise MixedPrecisionError("bfloat16 needs a CPU with AVX512-BF16 or AMX; this one has "
                              "neither")
  return requested


def configure_session(dtype, xla=False, config=None):
  """Returns `config` (a ConfigProto, new if None) with the rewrites the run needs switched on:
  mixed precision in `dtype` (compute_dtype's answer), and XLA auto-clustering with `xla`."""
  config = config if config is not None else tf.compat.v1.ConfigProto(allow_soft_placement=True)
  if xla:  # XLA auto-clustering of the estimator graph (--xla)
    if not xla_compiles():
      raise XlaUnavailableError(
          "--xla: XLA would compile nothing in this process: on a CPU TensorFlow auto-clusters "
          f"only with TF_XLA_FLAGS={CPU_JIT_FLAG}, read when it starts (run.py sets it; in your "
          "own program call estimators.engines.precision.allow_cpu_autoclustering() before "
          "TensorFlow's first op, or export the variable). Drop --xla or set the flag.")
    config.graph_options.optimizer_options.global_jit_level = (
        tf.compat.v1.OptimizerOptions.ON_1)
  if dtype is None:
    return config
  options = config.graph_options.rewrite_options
  on = options.ON
  if dtype == "bfloat16":
    options.auto_mixed_precision_onednn_bfloat16 = on
  else:
    options.auto_mixed_precision = on  # float16 on the GPU
  return config


def wrap_optimizer(optimizer, dtype):
  """float16 runs (`dtype`: compute_dtype's answer) get dynamic loss scaling; bfloat16 has
  float32's range and needs none."""
  if dtype != "float16":
    return optimizer
  return tf.compat.v1.mixed_precision.MixedPrecisionLossScaleOptimizer(optimizer, "dynamic")
