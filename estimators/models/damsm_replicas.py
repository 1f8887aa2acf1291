"""DAMSM pretraining over replicas (`--distribution=mirrored` / `multi_worker`), as one device.

The DAMSM loss (eq. 14) is contrastive over the batch: every caption is scored against every
image of the batch, and with class masks the same-class pairs are dropped as negatives. So the
split of a global batch over R replicas must not change what is computed:

- Data (`distribute`): every input pipeline reads the one-device stream of GLOBAL batches (same
  files, same shuffle seed, the row's position in its global batch as `index`) and keeps the
  rows of its own replicas, replica r rows [r b, (r + 1) b). The global batches are exactly the
  one-device ones whatever the number of workers (each worker reads the whole split: the
  price of that, small next to the image encoder's forward pass).
- Loss (`global_batch`): each replica encodes its rows, gathers every replica's features
  (and lengths, class ids) and computes the loss of the global batch: the one-device matching
  matrices and class masks. The gathered copies carry no gradient; the replica's own rows do,
  so its gradient is its examples' share of the one-device gradient and the sum over replicas
  (`sum_gradients`) is the one-device gradient.
- Dropout (`ExampleSeededDropout`): the mask of an example is a function of (seed, training step,
  its global index), not of the replica it lands on, so the replicas draw what one device draws.
- Clipping: the official clip_grad_norm of the text encoder's gradient is applied to the
  all-reduced (global) gradient, then Adam applies it without a second aggregation.
- Inception BN in batch-statistics mode (the official `.train()` quirk) would normalise each
  replica's share: refused with more than one replica (`check`).
"""
import tensorflow as tf

from estimators.engines import cluster
from estimators.engines import distribute as distribute_lib

ONE_DEVICE = ("none", "one_device")  # the --distribution values that run one replica


def check(cfg, h):
  """Fails at start (nothing written) when the pretraining cannot run on cfg.distribution's
  replicas: returns how many replicas it will run."""
  if cfg.use_tpu:
    raise cluster.DistributionError(
        "--mode=pretrain_damsm has no TPU path (TPUGANEstimator trains GANs); drop --use_tpu, "
        "pretrain with --distribution=mirrored / multi_worker or on one device, then train "
        "AttnGAN on the TPU")
  replicas = cluster.expected_replicas(cfg)
  if h.damsm_batch_size % replicas:
    raise cluster.DistributionError(
        f"--damsm_batch_size={h.damsm_batch_size} is the global DAMSM batch and must divide "
        f"evenly over the {replicas} replicas of --distribution={cfg.distribution}; use a "
        f"multiple of {replicas}")
  if (replicas > 1 and h.damsm_image_encoder == "inception_v3"
      and h.damsm_inception_bn == "batch_statistics"):
    raise cluster.DistributionError(
        f"--damsm_inception_bn=batch_statistics (the official .train() quirk, part of "
        f"--damsm_variant=official) normalises with the batch's statistics; over {replicas} "
        "replicas each would normalise its own share of the batch, not the one-device batch. "
        "Pass --damsm_inception_bn=inference, or pretrain on one device (drop --distribution)")
  return replicas


def make_strategy(cfg):
  """The tf.distribute strategy of the pretraining (the default one on one device). For
  multi_worker, call before TensorFlow runs anything (its collectives are set up at start)."""
  if cfg.distribution in ONE_DEVICE:
    return tf.distribute.get_strategy()
  return distribute_lib.make_strategy(cfg)


def with_index(batch):
  """Adds `index`, each row's position in its global batch (the dropout masks' key)."""
  return {**batch, "index": tf.range(tf.shape(batch["captions"])[0], dtype=tf.int64)}


def distribute(strategy, dataset, global_batch):
  """A dataset of global batches (dicts, `with_index` applied) -> per-replica batches: replica r
  gets rows [r b, (r + 1) b), b = global_batch / replicas. One replica: `dataset` itself."""
  replicas = strategy.num_replicas_in_sync
  if replicas == 1:
    return dataset
  per_replica = global_batch // replicas

  def dataset_fn(context):
    local = replicas // context.num_input_pipelines  # replicas fed by this pipeline, in order
    return cluster.replica_rows(dataset, replicas, per_replica,
                                context.input_pipeline_id * local, local)
  return strategy.distribute_datasets_from_function(dataset_fn)


def _replica():
  context = tf.distribute.get_replica_context()
  return context if context is not None and context.num_replicas_in_sync > 1 else None


def global_batch(*local):
  """This replica's rows [b, ...] of each tensor -> the global batch [R b, ...] (replica order),
  in one all-reduce: every replica places its rows in zeros and the sum is the concatenation,
  exactly (x + 0 = x; integers travel as float32, exact below 2^24). (An all-gather is the
  direct way, but TensorFlow's collective gather hung between two workers here.) The gradient
  reaches only this replica's rows; the others' come without one."""
  context = _replica()
  if context is None:
    return local
  replicas = context.num_replicas_in_sync
  replica = tf.cast(context.replica_id_in_sync_group, tf.int32)

  def padded(x):  # [b, ...] -> [R b, ...]: x at this replica's rows, zeros elsewhere
    rows = tf.shape(x)[0]
    return tf.pad(x, tf.concat([[[replica * rows, (replicas - 1 - replica) * rows]],
                                tf.zeros([x.shape.rank - 1, 2], tf.int32)], 0))
  summed = context.all_reduce(tf.distribute.ReduceOp.SUM,
                              [padded(tf.cast(tf.stop_gradient(x), tf.float32)) for x in local])
  out = []
  for x, whole in zip(local, summed):
    whole = tf.cast(whole, x.dtype)
    # values: exactly `whole`; the gradient: this replica's rows
    out.append(whole + padded(x - tf.stop_gradient(x)) if x.dtype.is_floating else whole)
  return tuple(out)


def sum_gradients(grads):
  """The gradients summed over replicas (the one-device gradient, each replica's being its share),
  dense (the embedding's IndexedSlices too, so every path applies the same Adam update)."""
  dense = [None if g is None else tf.convert_to_tensor(g) for g in grads]
  context = _replica()
  if context is None:
    return dense
  present = [i for i, g in enumerate(dense) if g is not None]
  summed = context.all_reduce(tf.distribute.ReduceOp.SUM, [dense[i] for i in present])
  for i, g in zip(present, summed):
    dense[i] = g
  return dense


def reduce_mean(strategy, values):
  """{name: per-replica scalar} -> {name: its mean over replicas} (cross-replica context)."""
  return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
          for k, v in values.items()}


class ExampleSeededDropout(tf.keras.layers.Layer):
  """Dropout whose mask for an example is a function of (seed, training step, the example's index
  in its global batch): a resumed run draws the masks the uninterrupted run drew (Keras' Dropout
  keeps its random state in the process) and every split over replicas draws what one device
  draws. The masks of a step are rows of one stateless uniform draw [global_batch, ...];
  `rows()` gives the indices of the rows being encoded (set by the trainer for each step)."""

  def __init__(self, rate, seed, step, global_batch_size, rows, **kwargs):
    super().__init__(**kwargs)
    self.rate, self.seed, self.global_batch_size = rate, int(seed), int(global_batch_size)
    self._read_step = step.read_value  # bound methods: Keras does not track them as weights
    self._rows = rows

  def call(self, x, training=False):
    if not training or self.rate == 0:
      return x
    seed = tf.stack([tf.constant(self.seed, tf.int64), self._read_step()])
    shape = tf.concat([[self.global_batch_size], tf.shape(x)[1:]], 0)
    uniform = tf.gather(tf.random.stateless_uniform(shape, seed, dtype=x.dtype), self._rows())
    keep = tf.cast(uniform >= self.rate, x.dtype)
    return x * keep * tf.constant(1.0 / (1.0 - self.rate), x.dtype)
