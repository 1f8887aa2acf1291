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
written, then no step in 10 minutes). Here one train op holds the whole step: the model's
declared step (ModelSpec.training_step: order, fresh or shared fakes, which BN updates run),
each sub-step reading the previous one's update through a control dependency, then the
global-step increment. The same train op runs without a strategy (GANConfig.engine='in_graph',
the single-device default) and under every strategy; with SAGAN's step (G first, fresh draws)
it computes GANEstimator's step (estimators/engine_parity_test.py) without GANEstimator's
third session.run. Each step consumes one batch (the hook path reads one for D, one for G and
one for the logged loss).

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
from estimators.training_step import check_engine

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


def engine_name(cfg):
  """'tpu_gan_estimator', 'gan_estimator' or 'in_graph' (every in-graph engine)."""
  if cfg.use_tpu:
    return "tpu_gan_estimator"
  if cfg.distribution == "none" and cfg.engine == "gan_estimator":
    return "gan_estimator"
  return "in_graph"


def validate_engine(cfg):
  """--engine is known and fits --distribution."""
  if cfg.engine not in ENGINES:
    raise DistributionError(f"unknown engine {cfg.engine!r}; choose one of {ENGINES}")
  if cfg.engine == "gan_estimator" and cfg.distribution != "none":
    raise DistributionError(
        f"--engine=gan_estimator trains on one device; --distribution={cfg.distribution} runs "
        "the in-graph step (--engine=in_graph, the default)")


def validate(cfg, step):
  """Fails at start, before anything is written, when the distribution cannot run here or the
  engine cannot run the model's training step `step` (ModelSpec.training_step(cfg))."""
  validate_engine(cfg)
  check_engine(step, engine_name(cfg))
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


def split_cpu(count):
  """Splits the CPU into `count` logical devices (--cpu_devices; before TensorFlow initialises
  its devices), so --distribution=mirrored can run several replicas without GPUs."""
  if count < 1:
    raise DistributionError(f"--cpu_devices must be positive, got {count}")
  if count > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
      tf.config.set_logical_device_configuration(
          cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as e:
      raise DistributionError(f"--cpu_devices={count}: TensorFlow's devices already exist "
                              f"({e}); split the CPU before anything runs") from None


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


def _train(which, loss, optimizer, variables, update_ops):
  """The train op of one network: its guarded gradients applied after `update_ops`."""
  with tf.compat.v1.name_scope(f"{which}_train"):
    return contrib_utils.create_train_op(
        loss, optimizer, global_step=None, variables_to_train=variables, update_ops=update_ops,
        transform_grads_fn=lambda grads: _guard_gradients(grads, which))


def _scopes(gan_model, which, with_generator_bn):
  own = gan_model.discriminator_scope if which == "discriminator" else gan_model.generator_scope
  scopes = [own.name.rstrip("/")]
  if which == "discriminator" and with_generator_bn:
    scopes.append(gan_model.generator_scope.name.rstrip("/"))
  return scopes


def _sub_step(which, generator_fn, discriminator_fn, real_data, generator_inputs, optimizer,
              model_loss, with_generator_bn=False):
  """One network's update on a fresh forward pass: (train op, loss, {tag: scalar}, gan_model).
  The update ops run are the network's own from this forward; with `with_generator_bn` D's
  sub-step also runs those of G's forward in it (training_step 'both_steps')."""
  mode = tf.estimator.ModeKeys.TRAIN
  before = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
  gan_model = _build_gan_model(generator_fn, discriminator_fn, real_data, generator_inputs, mode)
  loss, scalars = model_loss(which, gan_model)
  variables = (gan_model.discriminator_variables if which == "discriminator"
               else gan_model.generator_variables)
  update_ops = [op for scope in _scopes(gan_model, which, with_generator_bn)
                for op in _new_update_ops(before, scope)]
  return _train(which, loss, optimizer, variables, update_ops), loss, scalars, gan_model


def _shared_fakes_step(generator_fn, discriminator_fn, real_data, generator_inputs,
                       g_optimizer, d_optimizer, model_loss):
  """AttnGAN's step: one draw and one G forward; D steps on those fakes; then G's loss on the
  same fakes (the same tensors, so G's gradient flows through that one forward) against the
  updated D. G's BN statistics update once (its one forward). Returns (D train op, G train
  op, D loss, scalars)."""
  mode = tf.estimator.ModeKeys.TRAIN
  before = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
  gan_model = _build_gan_model(generator_fn, discriminator_fn, real_data, generator_inputs, mode)
  generator_updates = _new_update_ops(before, gan_model.generator_scope.name.rstrip("/"))
  d_loss, d_scalars = model_loss("discriminator", gan_model)
  d_train = _train("discriminator", d_loss, d_optimizer, gan_model.discriminator_variables,
                   _new_update_ops(before, gan_model.discriminator_scope.name.rstrip("/")))
  with tf.control_dependencies([d_train]):  # the G loss's D forward reads D's updated weights
    with tf.compat.v1.variable_scope(gan_model.discriminator_scope, reuse=True):
      fake_outputs = gan_model.discriminator_fn(gan_model.generated_data,
                                                gan_model.generator_inputs)
  # Outside the control dependency: variables the loss builds (AttnGAN's frozen DAMSM) must not
  # have initialisers that wait for a train op.
  g_loss, g_scalars = model_loss(
      "generator", gan_model._replace(discriminator_gen_outputs=fake_outputs))
  with tf.control_dependencies([d_train]):
    g_loss = tf.identity(g_loss)  # every G gradient op (they start from the loss) waits too
  g_train = _train("generator", g_loss, g_optimizer, gan_model.generator_variables,
                   generator_updates)
  return d_train, g_train, d_loss, {**g_scalars, **d_scalars}


def alternating_train_op(generator_fn, discriminator_fn, real_data, generator_inputs,
                         g_optimizer, d_optimizer, resample_noise, model_loss, step):
  """The model's training step (`step`, an estimators.training_step.TrainingStep) as one train
  op, then global_step += 1.

  Fresh fakes: each sub-step builds its own forward pass, the second under a control
  dependency on the first's update (so it reads it): D then G (step_order
  'discriminator_first': LadaGAN, TPUGANEstimator), or G then D ('generator_first': TF-GAN's
  GANEstimator, whose generator hook runs first). The D sub-step reads the input pipeline's
  first draw, the G sub-step `resample_noise(inputs)` (the 'g_' draw: new noise). Shared fakes
  (AttnGAN): `_shared_fakes_step`.

  Returns (train_op, discriminator loss of the D sub-step). `model_loss(which, gan_model)` gives
  the model's (loss, {tag: scalar}) (estimators.losses.model_loss). Logged (over the global
  batch): each loss of its own sub-step, with the discriminator's other terms; with fresh fakes
  and D first, the generator loss against the D it stepped on (the D sub-step's forward).
  """
  if step.shared_fakes:
    _, last, d_loss, scalars = _shared_fakes_step(
        generator_fn, discriminator_fn, real_data, generator_inputs, g_optimizer, d_optimizer,
        model_loss)
  else:
    common = (generator_fn, discriminator_fn, real_data)
    d_args = common + (generator_inputs, d_optimizer, model_loss)
    g_args = common + (resample_noise(generator_inputs), g_optimizer, model_loss)
    both = step.generator_bn_updates == "both_steps"
    if step.generator_first:
      g_train, _, g_scalars, _ = _sub_step("generator", *g_args)
      with tf.control_dependencies([g_train]):  # D's forward reads G's updated weights
        last, d_loss, d_scalars, _ = _sub_step("discriminator", *d_args, with_generator_bn=both)
    else:
      d_train, d_loss, d_scalars, d_model = _sub_step("discriminator", *d_args,
                                                      with_generator_bn=both)
      _, g_scalars = model_loss("generator", d_model)  # G's loss against the D it stepped on
      with tf.control_dependencies([d_train]):  # G's forward reads D's updated weights
        last, _, _, _ = _sub_step("generator", *g_args)
    scalars = {**g_scalars, **d_scalars}
  reduced = _loss_summaries(scalars)
  with tf.control_dependencies([last] + reduced):
    global_step = tf.compat.v1.train.get_or_create_global_step().assign_add(1)
  return global_step, d_loss


def make_model_fn(generator_fn, discriminator_fn, make_optimizers, resample_noise, model_loss,
                  step):
  """An Estimator model_fn: TF-GAN's GAN model, losses and specs; the in-graph train step
  (alternating_train_op executing `step`, the model's TrainingStep)."""
  def model_fn(features, labels, mode):
    if mode == tf.estimator.ModeKeys.TRAIN:
      g_opt, d_opt = make_optimizers()
      train_op, loss = alternating_train_op(generator_fn, discriminator_fn, labels, features,
                                            g_opt, d_opt, resample_noise, model_loss, step)
      return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)
    gan_model = _build_gan_model(generator_fn, discriminator_fn, labels, features, mode)
    if mode == tf.estimator.ModeKeys.PREDICT:
      return tfgan_estimator.get_predict_estimator_spec(gan_model)
    gan_loss = tfgan.GANLoss(model_loss("generator", gan_model)[0],
                             model_loss("discriminator", gan_model)[0])
    return tfgan_estimator.get_eval_estimator_spec(gan_model, gan_loss)
  return model_fn
