"""The training input_fn every engine reads: the real batch and the model's generator inputs.

  features: the model's generator inputs (SAGAN: 'noise' [B, z], fake 'labels' [B]) twice over:
            as drawn for the (D sub-step's) generator pass, and prefixed 'g_' for the G
            sub-step's own draw (train_op.resample_noise)
  labels:   the real batch {'images' [B, S, S, 3], 'labels' [B], captions...}
Also the run directory's data files (the caption vocabulary) and data.load's options, which
evaluation reads too.
"""
import os

import tensorflow as tf

import data
from estimators.config import GANConfig
from estimators.engines import cluster
from estimators.models import get_model


def vocabulary_path(cfg: GANConfig):
  return os.path.join(cfg.model_dir, "vocab.txt")


def load_options(cfg: GANConfig, input_context=None):
  """data.load keyword options for this run: --data_options, seed, strictness, sharding, captions.

  Caption sets read their vocabulary from the run's vocab.txt (written by `prepare_run_data`
  before training) so training, evaluation and export use the same word ids.
  """
  options = dict(cfg.data_options)
  options.update(seed=cfg.seed, strict=cfg.strict_data, input_context=input_context)
  if data.get_spec(cfg.dataset).has_captions:
    options["vocabulary"] = vocabulary_path(cfg)
    if cfg.max_words:
      options["max_words"] = cfg.max_words
  elif cfg.max_words:
    raise ValueError(f"--max_words applies to caption datasets; {cfg.dataset} has none")
  return options


def prepare_run_data(cfg: GANConfig):
  """Writes what the data pipelines need into the run directory (caption vocabulary)."""
  spec = data.get_spec(cfg.dataset)
  if spec.has_captions and not os.path.exists(vocabulary_path(cfg)):
    spec.vocabulary(cfg.data_dir, **dict(cfg.data_options)).save(vocabulary_path(cfg))


def tpu_input_context(params):
  """This TPU host's share of the input, from the TPUContext TPUEstimator puts in params['context']
  of each input_fn invocation (one per host), or None elsewhere. params' batch_size already is
  this invocation's, so the context says 1 replica: nothing is split again."""
  context = (params or {}).get("context")
  if context is None or not hasattr(context, "current_input_fn_deployment"):
    return None
  _, index, total = context.current_input_fn_deployment()[:3]
  return tf.distribute.InputContext(num_input_pipelines=total, input_pipeline_id=index,
                                    num_replicas_in_sync=1)


def make_train_input_fn(cfg: GANConfig, dataset_fn=None):
  """input_fn for training; `dataset_fn()` (unbatched dict elements, built in the estimator's
  graph) replaces data.load when given. Multi-worker input is sharded by `input_context`, TPU
  hosts' input by the TPUContext in params (`tpu_input_context`).

  Features: the model's generator inputs (`ModelSpec.generator_inputs`; SAGAN: 'noise' [B, z]
  and, on class-conditional sets, fake 'labels' [B]) for the (D step's) generator pass, and the
  same keys prefixed 'g_' for the in-graph G step; all drawn per example from (--seed, start
  step, the example's row in the one-device stream of global batches), so every split of the
  global batch over replicas, workers or TPU hosts draws what one device draws, and a resumed
  run draws new inputs rather than replaying the first steps'.

  Several input pipelines (multi_worker, TPU hosts): with --worker_input=shard each reads its
  own share of the files; with 'global_batch' each reads the one-device stream and keeps the
  rows of the replicas it feeds (`cluster.replica_rows`), so the step equals the one-device step.
  """
  spec = get_model(cfg.model)

  def input_fn(params=None, input_context=None):
    batch_size = (params or {}).get("batch_size", cfg.batch_size)  # TPU: per-core batch
    if input_context is None:
      input_context = tpu_input_context(params)
    pipelines, pipeline, local = 1, 0, 1  # input pipelines; this one; the replicas it feeds
    if input_context is not None:
      pipelines, pipeline = input_context.num_input_pipelines, input_context.input_pipeline_id
      if input_context.num_replicas_in_sync > 1:
        batch_size = cluster.per_replica_batch_size(
            cfg.batch_size, input_context.num_replicas_in_sync)
      local = max(1, input_context.num_replicas_in_sync // pipelines)
    replicas = pipelines * local
    global_batch = batch_size * replicas
    whole = pipelines > 1 and cfg.worker_input == "global_batch"
    ds = dataset_fn() if dataset_fn is not None else data.load(
        cfg.dataset, data_dir=cfg.data_dir, split="train", image_size=cfg.image_size,
        **load_options(cfg, None if whole else input_context))
    if whole:
      ds = data.batch_pipeline(ds, global_batch, training=True, seed=cfg.seed)
      ds = cluster.replica_rows(ds, replicas, batch_size, pipeline * local, local)
    else:
      ds = data.batch_pipeline(ds, batch_size, training=True, seed=cfg.seed)
    latest = tf.train.latest_checkpoint(cfg.model_dir)
    start_step = int(latest.rsplit("-", 1)[1]) if latest else 0
    # The inner fold_in of 0 (once the pipeline id) keeps the draws of runs made before rows
    # became global: pipeline 0's, i.e. every one-pipeline run's, are unchanged.
    base = tf.random.experimental.stateless_fold_in(
        tf.random.experimental.stateless_fold_in(tf.constant([cfg.seed, 0], tf.int64), 0),
        start_step)
    d_seed = tf.random.experimental.stateless_fold_in(base, 1)
    g_seed = tf.random.experimental.stateless_fold_in(base, 2)

    def add_noise(index, real):
      # Element `index` of this pipeline: step index // local, replica pipeline * local +
      # index % local; its rows in that step's global batch follow the replica's.
      replica = pipeline * local + index % local
      first = (index // local) * global_batch + replica * batch_size
      rows = first + tf.range(batch_size, dtype=tf.int64)
      real = dict(real)
      real["labels"] = (tf.cast(real["labels"], tf.int32) if "labels" in real
                        else tf.zeros([batch_size], tf.int32))  # unconditional sets: unused
      features = {}
      for prefix, seed in (("", d_seed), ("g_", g_seed)):
        for key, value in spec.generator_inputs(cfg, rows, seed, real).items():
          features[prefix + key] = value
      return features, real
    return ds.enumerate().map(add_noise, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)
  return input_fn
