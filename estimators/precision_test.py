"""--mixed_precision: grappler's rewrite per estimator, float16 loss scaling, clear refusals;
--xla: compiled on a CPU too, or refused at start."""
import os

import numpy as np
import pytest
import tensorflow as tf

from estimators import experiment, replica_check
from estimators.engines import plan, precision
from estimators.engines.model_pieces import make_pieces
from estimators.testing import tiny_config


def _session(cfg):
  """The session options of cfg's run (its compute dtype resolved as plan.resolve does)."""
  return precision.configure_session(precision.compute_dtype(cfg), cfg.xla)


HAS_BF16 = precision._cpu_has_bf16()  # pylint: disable=protected-access
HAS_GPU = bool(tf.config.list_physical_devices("GPU"))


def test_float32_by_default_and_refusals_say_what_to_do(tmp_path):
  assert precision.compute_dtype(tiny_config(tmp_path)) is None
  assert _session(tiny_config(tmp_path)).graph_options.rewrite_options \
      .auto_mixed_precision == 0
  with pytest.raises(precision.MixedPrecisionError, match="not wired for --use_tpu"):
    precision.compute_dtype(tiny_config(tmp_path, mixed_precision=True, use_tpu=True))
  with pytest.raises(precision.MixedPrecisionError, match="one of"):
    precision.compute_dtype(tiny_config(tmp_path, mixed_precision=True,
                                        mixed_precision_dtype="int8"))
  if not HAS_GPU:
    with pytest.raises(precision.MixedPrecisionError, match="float16 mixed precision needs a GPU"):
      precision.compute_dtype(tiny_config(tmp_path, mixed_precision=True,
                                          mixed_precision_dtype="float16"))


def test_auto_picks_float16_on_gpu_bfloat16_on_a_bf16_cpu_else_refuses(tmp_path):
  cfg = tiny_config(tmp_path, mixed_precision=True)
  if HAS_GPU:
    assert precision.compute_dtype(cfg) == "float16"
    assert _session(cfg).graph_options.rewrite_options.auto_mixed_precision
  elif HAS_BF16:
    assert precision.compute_dtype(cfg) == "bfloat16"
    options = _session(cfg).graph_options.rewrite_options
    assert options.auto_mixed_precision_onednn_bfloat16 == options.ON
    assert options.auto_mixed_precision == 0
  else:
    with pytest.raises(precision.MixedPrecisionError, match="would only slow training down"):
      precision.compute_dtype(cfg)


@pytest.mark.slow
def test_float16_wraps_both_optimizers_with_dynamic_loss_scaling(tmp_path, monkeypatch):
  """The float16 path's loss scaling, trained for real (the rewrite itself needs a GPU; its
  GPU pass is a no-op on a CPU-only machine, so this runs the scaling around float32 math)."""
  monkeypatch.setattr(precision, "compute_dtype", lambda cfg: "float16" if cfg.mixed_precision
                      else None)
  cfg = tiny_config(tmp_path, mixed_precision=True, ema_decay=0.99, max_steps=3,
                    save_checkpoints_steps=3, distribution="one_device")
  with tf.Graph().as_default():
    g_opt, d_opt = make_pieces(plan.resolve(cfg)).make_optimizers()
  for opt in (g_opt, d_opt):
    assert isinstance(opt, tf.compat.v1.mixed_precision.MixedPrecisionLossScaleOptimizer)
  reader = tf.train.load_checkpoint(experiment.run_train(cfg))
  scales = {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
            if "loss_scale" in n or "good_steps" in n}
  assert len(scales) == 4, scales  # a scale and a clean-step counter per optimiser
  for name, value in scales.items():
    # Dynamic scaling starts at 2**15; three finite steps: no halving, three good steps.
    assert value == (2.0 ** 15 if "loss_scale" in name else 3), (name, value)
  ema = [n for n in reader.get_variable_to_shape_map() if n.endswith("ExponentialMovingAverage")]
  assert ema  # the EMA still follows the (unscaled) updates


def test_bfloat16_is_refused_on_a_cpu_without_bf16(tmp_path, monkeypatch):
  """Runs on every machine (the CPU check is faked), so the refusal is tested even where the
  rewrite test below runs instead of skipping."""
  monkeypatch.setattr(precision, "_cpu_has_bf16", lambda: False)
  message = ("bfloat16 mixed precision is wired for CPUs only" if HAS_GPU  # refused earlier
             else "bfloat16 needs a CPU with AVX512-BF16")
  with pytest.raises(precision.MixedPrecisionError, match=message):
    precision.compute_dtype(tiny_config(tmp_path, mixed_precision=True,
                                        mixed_precision_dtype="bfloat16"))


@pytest.mark.slow
@pytest.mark.skipif(not HAS_BF16 or HAS_GPU,
                    reason="the bfloat16 rewrite needs a CPU with AVX512-BF16 or AMX and no GPU")
def test_bfloat16_rewrite_changes_the_first_step_a_little(tmp_path):
  """The rewrite is live: the same step from the same weights differs from float32 by bfloat16
  round-off (about 3 significant digits), not by nothing and not by a broken graph."""
  cfg = tiny_config(tmp_path, distribution="one_device", mixed_precision=True,
                    mixed_precision_dtype="bfloat16")
  result = replica_check.one_step_comparison(
      cfg, replica_check._digits_dataset_fn(), str(tmp_path),  # pylint: disable=protected-access
      reference=cfg.replace(mixed_precision=False))
  ref, mixed = result["losses"]["one_device"], result["losses"]["multi"]
  d_loss = "loss/discriminator"
  relative = abs(mixed[d_loss] - ref[d_loss]) / abs(ref[d_loss])
  assert 1e-6 < relative < 3e-2, (ref, mixed)
  for net, grads in result["gradients"].items():
    # Hinge losses at initialisation pass gradient through the few samples inside the margin,
    # so bfloat16 round-off moves single elements a lot; the direction stays.
    assert grads["relative_norm"] > 1e-6 and grads["cosine"] > 0.9, (net, grads)
  assert np.isfinite(list(mixed.values())).all()


def test_allow_cpu_autoclustering_adds_the_flag_once():
  environ = {"TF_XLA_FLAGS": "--tf_xla_min_cluster_size=2"}
  precision.allow_cpu_autoclustering(environ)
  precision.allow_cpu_autoclustering(environ)
  assert environ["TF_XLA_FLAGS"] == f"--tf_xla_min_cluster_size=2 {precision.CPU_JIT_FLAG}"
  empty = {}
  precision.allow_cpu_autoclustering(empty)
  assert empty == {"TF_XLA_FLAGS": precision.CPU_JIT_FLAG}


def test_xla_is_refused_at_start_where_it_would_compile_nothing(tmp_path, monkeypatch):
  monkeypatch.setattr(precision, "_XLA_COMPILES", [False])
  with pytest.raises(precision.XlaUnavailableError, match="tf_xla_cpu_global_jit"):
    _session(tiny_config(tmp_path, xla=True))
  assert _session(tiny_config(tmp_path)).graph_options.optimizer_options \
      .global_jit_level == 0  # without --xla nothing is asked of XLA


class _CompiledOps(tf.estimator.SessionRunHook):
  """Records the XLA launch ops of each training step's partition graphs."""

  def __init__(self):
    self.per_step = []

  def before_run(self, run_context):
    return tf.estimator.SessionRunArgs(
        None, options=tf.compat.v1.RunOptions(output_partition_graphs=True))

  def after_run(self, run_context, run_values):
    self.per_step.append(precision.compiled_ops(run_values.run_metadata))


@pytest.mark.slow
def test_xla_compiles_the_training_step_and_nothing_without_it(tmp_path):
  """With --xla (conftest, like run.py, sets TF_XLA_FLAGS at start) the tiny run's train step
  runs XLA clusters on this CPU; without it the same step has none."""
  from estimators.engines.build import build_estimator  # pylint: disable=import-outside-toplevel
  from estimators.engines.input_fn import make_train_input_fn  # pylint: disable=import-outside-toplevel
  assert precision.CPU_JIT_FLAG in os.environ.get("TF_XLA_FLAGS", "")
  assert precision.xla_compiles()
  seen = {}
  for xla in (False, True):
    cfg = tiny_config(tmp_path / f"xla_{xla}", xla=xla, max_steps=1, save_checkpoints_steps=100,
                      save_summary_steps=100)
    hook = _CompiledOps()
    build_estimator(cfg).train(make_train_input_fn(cfg), max_steps=1, hooks=[hook])
    assert len(hook.per_step) == 1
    seen[xla] = hook.per_step[0]
  assert seen[False] == [] and "_XlaRun" in seen[True], seen
