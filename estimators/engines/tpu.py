"""Adapter: TF-GAN's TPUGANEstimator (`--use_tpu`, `--tpu=NAME`; on CPU without a name).

Its input_fn is asked for twice the per-core batch, which TF-GAN splits in two, one half for
the D sub-step and one for the G sub-step; each host reads its share of the input through the
TPUContext (input_fn.tpu_input_context). Its own step (D first, a draw per sub-step, G's train
op running the G BN updates of both sub-steps: training_step._TFGAN_ENGINES) is the only one it
executes; plan.resolve refused any other at start. No precision rewrites (mixed precision is
refused with --use_tpu).
"""
from estimators import compat  # noqa: F401  (must precede TF-GAN use: trap 1)

import tensorflow as tf
import tensorflow_gan as tfgan

from estimators.engines.gan_estimator import tfgan_kwargs


def estimator(plan, pieces, run_kwargs):
  cfg = plan.cfg
  cluster = (tf.distribute.cluster_resolver.TPUClusterResolver(tpu=cfg.tpu)
             if cfg.tpu else None)
  config = tf.compat.v1.estimator.tpu.RunConfig(
      cluster=cluster, **run_kwargs,
      tpu_config=tf.compat.v1.estimator.tpu.TPUConfig(iterations_per_loop=cfg.save_summary_steps))
  return tfgan.estimator.TPUGANEstimator(
      config=config, use_tpu=bool(cfg.tpu), train_batch_size=cfg.batch_size,
      eval_batch_size=cfg.batch_size, predict_batch_size=cfg.batch_size, **tfgan_kwargs(pieces))
