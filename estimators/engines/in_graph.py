"""Adapter: the shared train op (train_op.py) in a tf.estimator.Estimator, no strategy.

`--engine=in_graph` (the default) with `--distribution=none`: the model's declared step on the
default device, with the session's precision and XLA rewrites.
"""
import tensorflow as tf

from estimators.engines import precision, train_op


def estimator(plan, pieces, run_kwargs):
  config = tf.estimator.RunConfig(
      session_config=precision.configure_session(plan.compute_dtype, plan.xla), **run_kwargs)
  return tf.estimator.Estimator(model_fn=train_op.make_model_fn(pieces, plan.step),
                                config=config)
