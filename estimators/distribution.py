"""Several devices or workers through TensorFlow's own engines: tf.distribute with tf.estimator.

`--distribution=mirrored` (all local GPUs, or `--num_devices` of them) and `multi_worker`
(MultiWorkerMirroredStrategy from TF_CONFIG) run TF-GAN's model pieces (`tfgan.gan_model`,
`tfgan.gan_loss`, TF-GAN's `create_train_op`) inside a `tf.estimator.Estimator` whose RunConfig
carries the strategy. `one_device` runs the very same step on one device (the reference the
multi-device run is tested against).

Why not GANEstimator's train step: it returns only the global-step increment as the train op and
runs the D and G updates from session hooks (`get_sequential_train_hooks`), each in its own
`session.run`. Under a strategy the estimator keeps the hooks of the first replica only, so the
first replica's update waits forever in an all-reduce the others never enter (observed: ckpt-0
written, then no step in 10 minutes). Here one train op holds the whole step, in the order
TPUGANEstimator uses on TPU: the D update, then, under a control dependency on it, a fresh
forward pass and the G update (so G sees the updated D), then the global-step increment. Each
step consumes one batch (the hook path reads one for D, one for G and one for the logged loss).
The single-device default engine (GANConfig.engine='in_graph', no strategy) runs the same train
op with the G update first, GANEstimator's hook order, so it computes GANEstimator's step
(estimators/engine_parity_test.py) without GANEstimator's third session.run.

Batch sizes: `--batch_size` is the GLOBAL batch. Each of the R replicas gets batch_size / R
examples; a batch that does not divide evenly is an error at start. Gradients are averaged over
replicas (TF1 optimisers scale each replica's loss by 1/R before the all-reduce sum), BN batch
statistics are taken over the global batch (`cross_replica_bn`), and the moving statistics, the
spectral-norm vectors and the EMA shadows are MEAN-aggregated, so every replica holds the same
values (DESIGN trap 8 is tested in distribution_test.py).
"""
from estimators import compat  # noqa: F401  (must precede TF-GAN use: trap 1)

import json
import os

import tensorflow as tf
import tensorflow_gan as tfgan
from tensorflow_gan.python import contrib_utils
from tensorflow_gan.python.estimator import gan_estimator as tfgan_estimator

from estimators.losses import NONFINITE_MARKER

DISTRIBUTIONS = ("none", "one_device", "mirrored", "multi_worker")


class DistributionError(ValueError):
  """The requested distribution cannot run here (bad batch split, no devices, no TF_CONFIG)."""


def local_devices(cfg):
  """The devices a mirrored run uses: every local GPU (or --num_devices of them); on a machine
  without GPUs, the logical CPU devices (tests make two)."""
  gpus = tf.config.list_logical_devices("GPU")
  devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
  if cfg.num_devices:
    if cfg.num_devices > len(devices):
      raise DistributionError(
          f"--num_devices={cfg.num_devices} but only {len(devices)} device(s) are visible "
          f"({', '.join(devices)}); lower --num_devices or make more devices visible "
          "(CUDA_VISIBLE_DEVICES)")
    devices = devices[:cfg.num_devices]
  return devices


def worker_count():
  """Workers named in TF_CONFIG's cluster (1 when TF_CONFIG is unset)."""
  config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
  cluster = config.get("cluster", {})
  return sum(len(cluster.get(job, [])) for job in ("chief", "worker")) or 1


def is_chief():
  """Whether this process writes the run's files: the chief in TF_CONFIG, else worker 0 (and
  always when TF_CONFIG names no cluster)."""
  config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
  task = config.get("task", {})
  if not config.get("cluster") or not task:
    return True
  if "chief" in config["cluster"]:
    return task.get("type") == "chief"
  return task.get("type") == "worker" and int(task.get("index", 0)) == 0


def task_name():
  """'<task type>_<index>' of this process in TF_CONFIG ('worker_1'), '' without a cluster: names
  the files a non-chief worker writes beside the chief's (bad_records.worker_1.json)."""
  config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
  task = config.get("task", {})
  if not config.get("cluster") or not task:
    return ""
  return f"{task.get('type')}_{task.get('index', 0)}"


def check_multi_worker_environment():
  config = os.environ.get("TF_CONFIG")
  if not config:
    raise DistributionError(
        "--distribution=multi_worker needs TF_CONFIG, e.g. "
        '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
        '"task": {"type": "worker", "index": 0}}, set on every worker with its own index')
  try:
    parsed = json.loads(config)
  except json.JSONDecodeError as e:
    raise DistributionError(f"TF_CONFIG is not valid JSON ({e}): {config!r}") from None
  if "cluster" not in parsed or "task" not in parsed:
    raise DistributionError(f"TF_CONFIG needs 'cluster' and 'task' entries, got {config!r}")


def expected_replicas(cfg):
  """How many replicas cfg.distribution will run (before any strategy is built)."""
  if cfg.distribution in ("none", "one_device"):
    return 1
  if cfg.distribution == "mirrored":
    return len(local_devices(cfg))
  if cfg.distribution == "multi_worker":
    check_multi_worker_environment()
    # Physical, not logical: listing logical devices starts the TF runtime, and
    # MultiWorkerMirroredStrategy must configure its collectives before that.
    return worker_count() * max(1, len(tf.config.list_physical_devices("GPU")))
  raise DistributionError(f"unknown distribution {cfg.distribution!r}; choose one of "
                          f"{DISTRIBUTIONS}")


ENGINES = ("in_graph", "gan_estimator")


def validate_engine(cfg):
  """--engine is known and fits --distribution."""
  if cfg.engine not in ENGINES:
    raise DistributionError(f"unknown engine {cfg.engine!r}; choose one of {ENGINES}")
  if cfg.engine == "gan_estimator" and cfg.distribution != "none":
    raise DistributionError(
        f"--engine=gan_estimator trains on one device; --distribution={cfg.distribution} runs "
        "the in-graph step (--engine=in_graph, the default)")


def validate(cfg):
  """Fails at start, before anything is written, when the distribution cannot run here."""
  validate_engine(cfg)
  per_replica_batch_size(cfg.batch_size, expected_replicas(cfg))


def make_strategy(cfg):
  """The tf.distribute strategy for cfg.distribution (None for 'none')."""
  if cfg.distribution == "none":
    return None
  if cfg.distribution == "one_device":
    return tf.distribute.OneDeviceStrategy(local_devices(cfg)[0])
  if cfg.distribution == "mirrored":
    return tf.distribute.MirroredStrategy(local_devices(cfg))
  if cfg.distribution == "multi_worker":
    check_multi_worker_environment()
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise DistributionError(f"unknown distribution {cfg.distribution!r}; choose one of "
                          f"{DISTRIBUTIONS}")


def session_config():
  """The estimator's session options for a strategy run.

  A TF1 session sees one CPU device unless told otherwise, even when the process made several
  logical CPUs (what the tests and CPU-only benchmarks mirror over); the strategy's variables on
  /cpu:1 then get placed nowhere and the first step waits forever. So count them in.
  """
  cpus = len(tf.config.list_logical_devices("CPU"))
  return tf.compat.v1.ConfigProto(device_count={"CPU": cpus}, allow_soft_placement=True)


def per_replica_batch_size(global_batch, num_replicas):
  """global_batch / num_replicas; an uneven split is an error (no silently dropped examples)."""
  if num_replicas < 1 or global_batch % num_replicas:
    raise DistributionError(
        f"--batch_size={global_batch} is the global batch and must divide evenly over the "
        f"{num_replicas} replicas; use a multiple of {num_replicas} (e.g. "
        f"{max(num_replicas, global_batch - global_batch % num_replicas)})")
  return global_batch // num_replicas


def is_first_replica():
  """True outside a strategy and in replica 0 (summaries are written once, not per replica)."""
  context = tf.distribute.get_replica_context()
  if context is None:  # cross-replica context
    return True
  replica = tf.get_static_value(context.replica_id_in_sync_group)
  return replica is None or int(replica) == 0


def _new_update_ops(before, scope):
  """UPDATE_OPS created since `before` (a list) under `scope`: this sub-step's own BN updates."""
  now = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
  known = set(id(op) for op in before)

  def in_scope(op):  # 'Generator/...', 'Generator_1/...' (second call), 'replica_1/Generator/...'
    return any(p == scope or p.startswith(scope + "_") for p in op.name.split("/"))
  return [op for op in now if id(op) not in known and in_scope(op)]


def _build_gan_model(generator_fn, discriminator_fn, real_data, generator_inputs, mode):
  return tfgan_estimator.get_gan_model(mode, generator_fn, discriminator_fn, real_data,
                                       generator_inputs, add_summaries=None)


def mean_over_replicas(value):
  """The mean of `value` over all replicas (itself outside a multi-replica step)."""
  context = tf.distribute.get_replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return value
  return context.all_reduce(tf.distribute.ReduceOp.MEAN, value)


def _loss_summaries(scalars):
  """The model's loss scalars ({tag: value}: the losses and its own terms) of the global batch."""
  values = {tag: mean_over_replicas(v) for tag, v in scalars.items()}
  if is_first_replica():
    with tf.compat.v1.name_scope(""):
      for tag, value in values.items():
        tf.compat.v1.summary.scalar(tag, value)
  # Every replica must run its side of these all-reduces whenever replica 0's summaries are
  # fetched, or a collective all-reduce waits forever for the replicas that skipped it: the train
  # op depends on them (a few scalars per step).
  return list(values.values())


def _guard_gradients(grads_and_vars, which):
  """The gradients, made to wait for a check that their global norm is finite.

  The loss guard (estimators.losses) misses a NaN that a ReLU swallows on the way to the loss
  (oneDNN's ReLU maps NaN to 0: NaN real images give a finite D loss and NaN D gradients).
  GANEstimator's extra forward pass for the logged loss happened to expose such weights one
  session.run later; the in-graph step checks the gradients themselves, before they are applied.
  """
  grads_and_vars = [(g, v) for g, v in grads_and_vars]
  norm = tf.linalg.global_norm([g for g, _ in grads_and_vars if g is not None])
  check = tf.debugging.check_numerics(norm, f"{NONFINITE_MARKER}: {which} loss gradient")
  with tf.control_dependencies([check]):
    return [(tf.identity(g) if g is not None else None, v) for g, v in grads_and_vars]


def _sub_step(which, generator_fn, discriminator_fn, real_data, generator_inputs, optimizer,
              model_loss):
  """One network's update on a fresh forward pass: (train op, loss, {tag: scalar}, gan_model)."""
  mode = tf.estimator.ModeKeys.TRAIN
  before = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
  gan_model = _build_gan_model(generator_fn, discriminator_fn, real_data, generator_inputs, mode)
  loss, scalars = model_loss(which, gan_model)
  scope = (gan_model.discriminator_scope if which == "discriminator"
           else gan_model.generator_scope)
  variables = (gan_model.discriminator_variables if which == "discriminator"
               else gan_model.generator_variables)
  with tf.compat.v1.name_scope(f"{which}_train"):
    train = contrib_utils.create_train_op(
        loss, optimizer, global_step=None, variables_to_train=variables,
        update_ops=_new_update_ops(before, scope.name.rstrip("/")),
        transform_grads_fn=lambda grads: _guard_gradients(grads, which))
  return train, loss, scalars, gan_model


def alternating_train_op(generator_fn, discriminator_fn, real_data, generator_inputs,
                         g_optimizer, d_optimizer, resample_noise, model_loss,
                         generator_first=False):
  """One D update and one G update, each on a fresh forward pass that reads the other's update
  (a control dependency), then global_step += 1.

  Order: D then G (generator_first=False: TPUGANEstimator's order, the tf.distribute engines'),
  or G then D (generator_first=True: TF-GAN GANEstimator's sequential hooks, whose generator hook
  runs first; the single-device in-graph engine, so it computes GANEstimator's step).

  Returns (train_op, discriminator loss of the D sub-step). The D sub-step reads the input
  pipeline's first draw, the G sub-step `resample_noise(inputs)` (the 'g_' draw: new noise, as
  each TF-GAN hook run reads a new batch). `model_loss(which, gan_model)` gives the model's
  (loss, {tag: scalar}) for 'generator' or 'discriminator' (estimators.losses.model_loss). Logged
  (the summaries' scalars, over the global batch): each loss of its own sub-step, with the
  discriminator's other terms; with D first, the generator loss is against the D it stepped on
  (the D sub-step's forward, as before).
  """
  common = (generator_fn, discriminator_fn, real_data)
  d_args = common + (generator_inputs, d_optimizer, model_loss)
  g_args = common + (resample_noise(generator_inputs), g_optimizer, model_loss)
  if generator_first:
    g_train, _, g_scalars, _ = _sub_step("generator", *g_args)
    with tf.control_dependencies([g_train]):  # D's forward reads G's updated weights
      d_train, d_loss, d_scalars, _ = _sub_step("discriminator", *d_args)
    last = d_train
  else:
    d_train, d_loss, d_scalars, d_model = _sub_step("discriminator", *d_args)
    _, g_scalars = model_loss("generator", d_model)  # G's loss against the D it stepped on
    with tf.control_dependencies([d_train]):  # G's forward reads D's updated weights
      g_train, _, _, _ = _sub_step("generator", *g_args)
    last = g_train
  reduced = _loss_summaries({**g_scalars, **d_scalars})
  with tf.control_dependencies([last] + reduced):
    step = tf.compat.v1.train.get_or_create_global_step().assign_add(1)
  return step, d_loss


def make_model_fn(generator_fn, discriminator_fn, make_optimizers, resample_noise, model_loss,
                  generator_first=False):
  """An Estimator model_fn: TF-GAN's GAN model, losses and specs; the in-graph train step
  (alternating_train_op, G first when `generator_first`)."""
  def model_fn(features, labels, mode):
    if mode == tf.estimator.ModeKeys.TRAIN:
      g_opt, d_opt = make_optimizers()
      train_op, loss = alternating_train_op(generator_fn, discriminator_fn, labels, features,
                                            g_opt, d_opt, resample_noise, model_loss,
                                            generator_first=generator_first)
      return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)
    gan_model = _build_gan_model(generator_fn, discriminator_fn, labels, features, mode)
    if mode == tf.estimator.ModeKeys.PREDICT:
      return tfgan_estimator.get_predict_estimator_spec(gan_model)
    gan_loss = tfgan.GANLoss(model_loss("generator", gan_model)[0],
                             model_loss("discriminator", gan_model)[0])
    return tfgan_estimator.get_eval_estimator_spec(gan_model, gan_loss)
  return model_fn
