"""Adapter: the shared train op (train_op.py) under a tf.distribute strategy, in a
tf.estimator.Estimator whose RunConfig carries it.

`--distribution=mirrored` (all local GPUs, or `--num_devices` of them; the logical CPUs of
--cpu_devices without GPUs), `multi_worker` (MultiWorkerMirroredStrategy from TF_CONFIG) and
`one_device` (the very same step on one device: the reference the multi-device run is tested
against). Each replica takes batch_size / R examples of the GLOBAL batch (cluster.py).
"""
import tensorflow as tf

from estimators.engines import cluster, precision, train_op


def make_strategy(cfg):
  """The tf.distribute strategy for cfg.distribution (one_device, mirrored, multi_worker)."""
  if cfg.distribution == "one_device":
    return tf.distribute.OneDeviceStrategy(cluster.local_devices(cfg)[0])
  if cfg.distribution == "mirrored":
    return tf.distribute.MirroredStrategy(cluster.local_devices(cfg))
  if cfg.distribution == "multi_worker":
    cluster.check_multi_worker_environment()
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise cluster.DistributionError(f"unknown distribution {cfg.distribution!r}; choose one "
                                 f"of {cluster.DISTRIBUTIONS}")


def session_config():
  """The estimator's session options for a strategy run.

  A TF1 session sees one CPU device unless told otherwise, even when the process made several
  logical CPUs (what the tests and CPU-only benchmarks mirror over); the strategy's variables on
  /cpu:1 then get placed nowhere and the first step waits forever. So count them in.
  """
  cpus = len(tf.config.list_logical_devices("CPU"))
  return tf.compat.v1.ConfigProto(device_count={"CPU": cpus}, allow_soft_placement=True)


def estimator(plan, pieces, run_kwargs):
  strategy = make_strategy(plan.cfg)
  cluster.per_replica_batch_size(plan.cfg.batch_size, strategy.num_replicas_in_sync)
  config = tf.estimator.RunConfig(
      train_distribute=strategy,
      session_config=precision.configure_session(plan.compute_dtype, plan.xla, session_config()),
      **run_kwargs)
  return tf.estimator.Estimator(model_fn=train_op.make_model_fn(pieces, plan.step),
                                config=config)
