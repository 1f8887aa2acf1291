"""The shared core: a model's declared training step executed as one train op (every in-graph
engine: no strategy, one_device, mirrored, multi_worker), and the estimator model_fn around it.

Why not GANEstimator's train step: it returns only the global-step increment as the train op and
runs the D and G updates from session hooks (`get_sequential_train_hooks`), each in its own
`session.run`. Under a strategy the estimator keeps the hooks of the first replica only, so the
first replica's update waits forever in an all-reduce the others never enter (observed: ckpt-0
written, then no step in 10 minutes). Here one train op holds the whole step: the model's
declared step (ModelSpec.training_step: order, fresh or shared fakes, which BN updates run),
each sub-step reading the previous one's update through a control dependency (D first, G's
forward, which needs none, runs while D's backward does: `generator_forward_may_overlap`),
then the global-step increment. With SAGAN's step (G first, fresh draws) it computes GANEstimator's step
(estimators/engine_parity_test.py) without GANEstimator's third session.run. Each step consumes
one batch (the hook path reads one for D, one for G and one for the logged loss).

Under a strategy (distribute.py) each replica runs this op on its share of the GLOBAL batch:
gradients are averaged over replicas (TF1 optimisers scale each replica's loss by 1/R before
the all-reduce sum), BN batch statistics are taken over the global batch (`cross_replica_bn`),
and the moving statistics, the spectral-norm vectors and the EMA shadows are MEAN-aggregated, so
every replica holds the same values (DESIGN trap 8 is tested in distribution_test.py).

What it calls of the model comes as one GANPieces (model_pieces.py); the step as one
TrainingStep (training_step.py). Nothing here reads the run config.
"""
from estimators import compat  # noqa: F401  (must precede TF-GAN use: trap 1)

import functools

import tensorflow as tf
import tensorflow_gan as tfgan
from tensorflow_gan.python import contrib_utils
from tensorflow_gan.python.estimator import gan_estimator as tfgan_estimator

from estimators.engines import cluster
from estimators.losses import NONFINITE_MARKER

GENERATOR_SCOPE = "Generator"  # TF-GAN's default


def resample_noise(generator_inputs):
  """The G sub-step's inputs: the input pipeline's second draw (new noise and fake labels, as
  each TF-GAN hook run reads a new batch): every 'g_<key>' replaces '<key>'."""
  inputs = {k: v for k, v in generator_inputs.items() if not k.startswith("g_")}
  for key, value in generator_inputs.items():
    if key.startswith("g_"):
      inputs[key[2:]] = value
  return inputs


def _new_update_ops(before, scope):
  """UPDATE_OPS created since `before` (a list) under `scope`: this sub-step's own BN updates."""
  now = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
  known = set(id(op) for op in before)

  def in_scope(op):  # 'Generator/...', 'Generator_1/...' (second call), 'replica_1/Generator/...'
    return any(p == scope or p.startswith(scope + "_") for p in op.name.split("/"))
  return [op for op in now if id(op) not in known and in_scope(op)]


def generator_forward(pieces, generator_inputs, mode):
  """The generator half of TF-GAN's gan_model: the model's outputs on these inputs, built in
  the generator's variable scope as gan_model builds them."""
  with tf.compat.v1.variable_scope(GENERATOR_SCOPE, reuse=tf.compat.v1.AUTO_REUSE):
    return pieces.generator_fn(generator_inputs, mode=mode)


def build_gan_model(pieces, real_data, generator_inputs, mode, generated_data=None):
  """TF-GAN's GANModel of the model's networks on these inputs. With `generated_data` (a
  `generator_forward` of these inputs built earlier), only its discriminator half: D's calls
  on those fakes and on the reals (the generator is not called again)."""
  if generated_data is None:
    return tfgan_estimator.get_gan_model(mode, pieces.generator_fn, pieces.discriminator_fn,
                                         real_data, generator_inputs, add_summaries=None,
                                         generator_scope=GENERATOR_SCOPE)
  gan_model = tfgan_estimator.get_gan_model(
      mode, lambda inputs: generated_data, pieces.discriminator_fn, real_data, generator_inputs,
      add_summaries=None, generator_scope=GENERATOR_SCOPE)
  return gan_model._replace(generator_fn=functools.partial(pieces.generator_fn, mode=mode))


def _loss_summaries(scalars):
  """The model's loss scalars ({tag: value}: the losses and its own terms) of the global batch."""
  values = {tag: cluster.mean_over_replicas(v) for tag, v in scalars.items()}
  if cluster.is_first_replica():
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


# Ops that only read the resource they are given; any other op taking a resource (assigns, the
# optimisers' applies, iterators, function calls) is taken to write it.
_READS_ONLY = frozenset({"ReadVariableOp", "ResourceGather", "ResourceGatherNd", "VariableShape",
                         "VarIsInitializedOp", "Identity"})


def _ancestors(roots, stop=()):
  """The ops `roots` (tensors or ops) need: through data and control inputs, not past `stop`
  (tensors)."""
  stop = set(id(t) for t in stop)
  seen, todo = {}, [getattr(r, "op", r) for r in roots if id(r) not in stop]
  while todo:
    op = todo.pop()
    if op.name in seen:
      continue
    seen[op.name] = op
    todo += [t.op for t in op.inputs if id(t) not in stop] + list(op.control_inputs)
  return list(seen.values())


def _resource_uses(ops):
  """({resource: ops reading or writing it}, {resource written}) of `ops`, a resource named by
  the op holding it (VarHandleOp, a ref variable, an iterator)."""
  touched, written = set(), set()
  for op in ops:
    for t in op.inputs:
      if t.dtype != tf.resource and not t.dtype._is_ref_dtype:  # pylint: disable=protected-access
        continue
      source = t.op
      while source.type == "Identity" and source.inputs:
        source = source.inputs[0].op
      touched.add(source.name)
      if op.type not in _READS_ONLY:
        written.add(source.name)
  return touched, written


def generator_forward_may_overlap(d_train, d_model, generator_updates):
  """Whether the G sub-step of a D-first fresh-fakes step may build its generator forward
  outside the control dependency on D's update (`d_train`), so that it runs while D's
  backward does; only its discriminator calls (and so G's loss and gradients) then wait.

  The forward is the D sub-step's own G forward (in `d_model`, with `generator_updates` the
  update ops it created) again on the other draw: the same ops on the same variables. It may
  leave the dependency when no variable it reads or writes (its update ops' included) is
  written by anything D's update runs, and nothing D's update runs reads a variable it writes:
  then its values, and its updates' results, are the same whenever it runs. This keeps the
  dependency for G's batch-norm moving statistics with 'both_steps' (D's update ran the
  same statistics' update of its own G forward: two moving averages do not commute) and for
  G's spectral-norm vectors (D's sub-step's G forward writes them); a forward that
  communicates between replicas (collectives) keeps it too. A step without a dependency (G
  first; shared fakes) never asks."""
  step_touches, step_writes = _resource_uses(_ancestors([d_train]))
  stop = tf.nest.flatten(d_model.generator_inputs)
  forward = _ancestors(tf.nest.flatten(d_model.generated_data) + generator_updates, stop)
  if any(op.type.startswith(("Collective", "Nccl")) for op in forward):
    return False
  touches, writes = _resource_uses(forward)
  return not (touches & step_writes or writes & step_touches)


def _sub_step(which, pieces, real_data, generator_inputs, optimizer, with_generator_bn=False,
              forward=None):
  """One network's update on a fresh forward pass: (train op, loss, {tag: scalar}, gan_model).
  The update ops run are the network's own from this forward; with `with_generator_bn` D's
  sub-step also runs those of G's forward in it (training_step 'both_steps'). `forward`: the
  generator forward of these inputs built earlier, as (UPDATE_OPS before it, its outputs)."""
  mode = tf.estimator.ModeKeys.TRAIN
  before, generated = forward or (tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS),
                                  None)
  gan_model = build_gan_model(pieces, real_data, generator_inputs, mode, generated)
  loss, scalars = pieces.model_loss(which, gan_model)
  variables = (gan_model.discriminator_variables if which == "discriminator"
               else gan_model.generator_variables)
  update_ops = [op for scope in _scopes(gan_model, which, with_generator_bn)
                for op in _new_update_ops(before, scope)]
  return _train(which, loss, optimizer, variables, update_ops), loss, scalars, gan_model


def _shared_fakes_step(pieces, real_data, generator_inputs, g_optimizer, d_optimizer):
  """AttnGAN's step: one draw and one G forward; D steps on those fakes; then G's loss on the
  same fakes (the same tensors, so G's gradient flows through that one forward) against the
  updated D. G's BN statistics update once (its one forward). Returns (D train op, G train
  op, D loss, scalars)."""
  mode = tf.estimator.ModeKeys.TRAIN
  before = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
  gan_model = build_gan_model(pieces, real_data, generator_inputs, mode)
  generator_updates = _new_update_ops(before, gan_model.generator_scope.name.rstrip("/"))
  d_loss, d_scalars = pieces.model_loss("discriminator", gan_model)
  d_train = _train("discriminator", d_loss, d_optimizer, gan_model.discriminator_variables,
                   _new_update_ops(before, gan_model.discriminator_scope.name.rstrip("/")))
  with tf.control_dependencies([d_train]):  # the G loss's D forward reads D's updated weights
    with tf.compat.v1.variable_scope(gan_model.discriminator_scope, reuse=True):
      fake_outputs = gan_model.discriminator_fn(gan_model.generated_data,
                                                gan_model.generator_inputs)
  # Outside the control dependency: variables the loss builds (AttnGAN's frozen DAMSM) must not
  # have initialisers that wait for a train op.
  g_loss, g_scalars = pieces.model_loss(
      "generator", gan_model._replace(discriminator_gen_outputs=fake_outputs))
  with tf.control_dependencies([d_train]):
    g_loss = tf.identity(g_loss)  # every G gradient op (they start from the loss) waits too
  g_train = _train("generator", g_loss, g_optimizer, gan_model.generator_variables,
                   generator_updates)
  return d_train, g_train, d_loss, {**g_scalars, **d_scalars}


def step_train_op(pieces, step, real_data, generator_inputs, g_optimizer, d_optimizer):
  """The model's training step (`step`, a training_step.TrainingStep) as one train op, then
  global_step += 1.

  Fresh fakes: each sub-step builds its own forward pass, the second under a control
  dependency on the first's update (so it reads it): D then G (step_order
  'discriminator_first': LadaGAN, TPUGANEstimator), or G then D ('generator_first': TF-GAN's
  GANEstimator, whose generator hook runs first). D first, the G sub-step's generator forward
  is built outside that dependency when it reads and writes nothing D's update touches
  (`generator_forward_may_overlap`): it then runs while D's backward does, and only the G
  sub-step's discriminator calls, G's loss and its gradients wait for D's update (as the
  official LadaGAN tf.function orders it); the numbers are the same either way. The D sub-step
  reads the input pipeline's first draw, the G sub-step `resample_noise(inputs)` (the 'g_'
  draw: new noise). Shared fakes (AttnGAN): `_shared_fakes_step`.

  Returns (train_op, discriminator loss of the D sub-step). `pieces.model_loss(which,
  gan_model)` gives the model's (loss, {tag: scalar}) (estimators.losses.model_loss). Logged
  (over the global batch): each loss of its own sub-step, with the discriminator's other terms;
  with fresh fakes and D first, the generator loss against the D it stepped on (the D
  sub-step's forward).
  """
  if step.shared_fakes:
    _, last, d_loss, scalars = _shared_fakes_step(pieces, real_data, generator_inputs,
                                                  g_optimizer, d_optimizer)
  else:
    d_args = (pieces, real_data, generator_inputs, d_optimizer)
    g_inputs = resample_noise(generator_inputs)
    g_args = (pieces, real_data, g_inputs, g_optimizer)
    both = step.generator_bn_updates == "both_steps"
    if step.generator_first:
      g_train, _, g_scalars, _ = _sub_step("generator", *g_args)
      with tf.control_dependencies([g_train]):  # D's forward reads G's updated weights
        last, d_loss, d_scalars, _ = _sub_step("discriminator", *d_args, with_generator_bn=both)
    else:
      before = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
      d_train, d_loss, d_scalars, d_model = _sub_step("discriminator", *d_args,
                                                      with_generator_bn=both)
      # G's loss against the D it stepped on
      _, g_scalars = pieces.model_loss("generator", d_model)
      forward = None
      if generator_forward_may_overlap(d_train, d_model, _new_update_ops(
          before, d_model.generator_scope.name.rstrip("/"))):
        # G's forward on its fresh draw reads nothing D's update writes: built outside the
        # dependency, it can run while D's backward does (issue #27).
        forward = (tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS),
                   generator_forward(pieces, g_inputs, tf.estimator.ModeKeys.TRAIN))
      with tf.control_dependencies([d_train]):  # G's loss reads D's updated weights
        last, _, _, _ = _sub_step("generator", *g_args, forward=forward)
    scalars = {**g_scalars, **d_scalars}
  reduced = _loss_summaries(scalars)
  with tf.control_dependencies([last] + reduced):
    global_step = tf.compat.v1.train.get_or_create_global_step().assign_add(1)
  return global_step, d_loss


def make_model_fn(pieces, step):
  """An Estimator model_fn: TF-GAN's GAN model, losses and specs; in TRAIN mode the step's
  train op (`step_train_op`) with the optimisers built in the estimator's graph."""
  def model_fn(features, labels, mode):
    if mode == tf.estimator.ModeKeys.TRAIN:
      g_opt, d_opt = pieces.make_optimizers()
      train_op, loss = step_train_op(pieces, step, labels, features, g_opt, d_opt)
      return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)
    gan_model = build_gan_model(pieces, labels, features, mode)
    if mode == tf.estimator.ModeKeys.PREDICT:
      return tfgan_estimator.get_predict_estimator_spec(gan_model)
    gan_loss = tfgan.GANLoss(pieces.model_loss("generator", gan_model)[0],
                             pieces.model_loss("discriminator", gan_model)[0])
    return tfgan_estimator.get_eval_estimator_spec(gan_model, gan_loss)
  return model_fn
