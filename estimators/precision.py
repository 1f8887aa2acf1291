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
import tensorflow as tf

DTYPES = ("auto", "float16", "bfloat16")


class MixedPrecisionError(ValueError):
  """--mixed_precision cannot help (or run) on this machine or with these flags."""


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


def configure_session(cfg, config=None):
  """Returns `config` (a ConfigProto, new if None) with the rewrites the run needs switched on:
  mixed precision, and XLA auto-clustering with --xla."""
  dtype = compute_dtype(cfg)
  config = config if config is not None else tf.compat.v1.ConfigProto(allow_soft_placement=True)
  if getattr(cfg, "xla", False):  # XLA auto-clustering of the estimator graph (--xla)
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


def wrap_optimizer(optimizer, cfg):
  """float16 runs get dynamic loss scaling; bfloat16 has float32's range and needs none."""
  if compute_dtype(cfg) != "float16":
    return optimizer
  return tf.compat.v1.mixed_precision.MixedPrecisionLossScaleOptimizer(optimizer, "dynamic")
