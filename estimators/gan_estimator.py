"""Any registered model wired into TF-GAN's GANEstimator / TPUGANEstimator (DESIGN.md traps).

  input_fn        -> features: the model's generator inputs (SAGAN: 'noise' [B, z], fake 'labels'
                     [B]) twice over ('g_' prefix: the in-graph G step's draw); labels = the real
                     batch {'images', 'labels', captions...}
  generator_fn    -> the model's outputs ({'images' [B, S, S, 3], ...}); one network per graph
  discriminator_fn-> the model's logits (any structure) for real or generated data
Losses, summaries and inputs come from the model's ModelSpec (estimators/models/); optimisers
are run-wide: Adam with TTUR (+ optional G EMA); one D step per G step. The step's mechanics
are the model's (ModelSpec.training_step): the in-graph engines (distribution.py) run any;
TF-GAN's GANEstimator and TPUGANEstimator run their own, so a step they cannot run is an error
at start (estimators/training_step.check_engine).
"""
from estimators import compat  # noqa: F401  (must precede TF-GAN use: trap 1)

import os
import weakref

import tensorflow as tf
import tensorflow_gan as tfgan

import data
from estimators import distribution, losses, precision
from estimators.config import GANConfig
from estimators.models import get_model
from estimators.networks import network_for_graph
from estimators import optimizers
from estimators.training_step import check_engine


_SUMMARISED = weakref.WeakKeyDictionary()  # graph -> kinds whose summaries it has


def first_summary_call(kind):
  """True once per graph and network kind, in replica 0: the in-graph step calls each network
  twice and every replica calls it; its summaries are added once."""
  done = _SUMMARISED.setdefault(tf.compat.v1.get_default_graph(), set())
  if kind in done or not distribution.is_first_replica():
    return False
  done.add(kind)
  return True


def _without_autograph(fn, *args):
  """fn(*args) with Keras's AutoGraph conversion of the layers it calls off.

  In a TF1 graph Keras runs each subclassed layer's `call` through AutoGraph unless told not
  to. The networks use no tensor-dependent Python control flow (an `if` on a tensor fails
  loudly without AutoGraph, it never changes silently), so the conversion only cost set-up
  time: the same ops, built faster."""
  return tf.autograph.experimental.do_not_convert(fn)(*args)


def make_generator_fn(cfg: GANConfig):
  spec = get_model(cfg.model)

  def generator_fn(features, mode):  # (TF-GAN reads these argument names)
    return _without_autograph(build, features, mode)

  def build(features, mode):
    generator, _ = network_for_graph("generator", cfg)
    training = mode == tf.estimator.ModeKeys.TRAIN
    outputs = spec.generate(cfg, generator, features, training=training)
    if training and not cfg.use_tpu and first_summary_call("generator"):
      spec.generator_summaries(cfg, generator)
    return outputs
  return generator_fn


def make_discriminator_fn(cfg: GANConfig):
  spec = get_model(cfg.model)

  def discriminator_fn(data_dict, generator_inputs, mode):
    return _without_autograph(build, data_dict, generator_inputs, mode)

  def build(data_dict, generator_inputs, mode):
    discriminator, _ = network_for_graph("discriminator", cfg)
    training = mode == tf.estimator.ModeKeys.TRAIN
    logits = spec.discriminate(cfg, discriminator, data_dict, generator_inputs, training=training)
    if training and not cfg.use_tpu and first_summary_call("discriminator"):
      spec.discriminator_summaries(cfg, discriminator)
    return logits
  return discriminator_fn


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
  same keys prefixed 'g_' for the in-graph G step; all drawn per example from (--seed, input
  pipeline, start step, example index), so a resumed run draws new inputs rather than replaying
  the first steps'.
  """
  spec = get_model(cfg.model)

  def input_fn(params=None, input_context=None):
    batch_size = (params or {}).get("batch_size", cfg.batch_size)  # TPU: per-core batch
    if input_context is None:
      input_context = tpu_input_context(params)
    pipeline = 0
    if input_context is not None:
      pipeline = input_context.input_pipeline_id
      if input_context.num_replicas_in_sync > 1:
        batch_size = distribution.per_replica_batch_size(
            cfg.batch_size, input_context.num_replicas_in_sync)
    ds = dataset_fn() if dataset_fn is not None else data.load(
        cfg.dataset, data_dir=cfg.data_dir, split="train", image_size=cfg.image_size,
        **load_options(cfg, input_context))
    ds = data.batch_pipeline(ds, batch_size, training=True, seed=cfg.seed)
    latest = tf.train.latest_checkpoint(cfg.model_dir)
    start_step = int(latest.rsplit("-", 1)[1]) if latest else 0
    base = tf.random.experimental.stateless_fold_in(
        tf.random.experimental.stateless_fold_in(tf.constant([cfg.seed, 0], tf.int64), pipeline),
        start_step)
    d_seed = tf.random.experimental.stateless_fold_in(base, 1)
    g_seed = tf.random.experimental.stateless_fold_in(base, 2)

    def add_noise(index, real):
      rows = index * batch_size + tf.range(batch_size, dtype=tf.int64)
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


def run_config_kwargs(cfg: GANConfig):
  """Arguments shared by tf.estimator.RunConfig and its TPU variant."""
  return dict(model_dir=cfg.model_dir, tf_random_seed=cfg.seed,
              save_checkpoints_steps=cfg.save_checkpoints_steps,
              save_summary_steps=cfg.save_summary_steps,
              keep_checkpoint_max=cfg.keep_checkpoint_max,
              log_step_count_steps=cfg.save_summary_steps,  # steps/sec at the summary cadence
              # No graph.pbtxt text dump and no .meta file per checkpoint: nothing reads them
              # (TensorBoard's graph is in the event file, written anyway), and serialising
              # AttnGAN's graph took ~12 s at start plus ~4 s per checkpoint.
              checkpoint_save_graph_def=False)


def make_optimizers(cfg: GANConfig):
  """(G, D) optimisers of the model's declared training step (estimators/optimizers.py)."""
  step = get_model(cfg.model).training_step(cfg)
  generator_state = lambda: network_for_graph("generator", cfg)[0].non_trainable_variables
  return optimizers.make_optimizers(cfg, step, generator_state)


def build_estimator(cfg: GANConfig):
  """A GANEstimator (or TPUGANEstimator when cfg.use_tpu) for the configured model."""
  # Optimisers as callables: TF-GAN builds them inside each estimator graph.
  spec = get_model(cfg.model)
  kwargs = dict(generator_fn=make_generator_fn(cfg),
                discriminator_fn=make_discriminator_fn(cfg),
                generator_loss_fn=losses.tfgan_loss_fn(spec, cfg, "generator"),
                discriminator_loss_fn=losses.tfgan_loss_fn(spec, cfg, "discriminator"),
                generator_optimizer=lambda: make_optimizers(cfg)[0],
                discriminator_optimizer=lambda: make_optimizers(cfg)[1])
  run_kwargs = run_config_kwargs(cfg)
  step = spec.training_step(cfg)
  check_engine(step, distribution.engine_name(cfg))  # a step the engine cannot run: now
  if cfg.use_tpu:
    cluster = (tf.distribute.cluster_resolver.TPUClusterResolver(tpu=cfg.tpu)
               if cfg.tpu else None)
    config = tf.compat.v1.estimator.tpu.RunConfig(
        cluster=cluster, **run_kwargs,
        tpu_config=tf.compat.v1.estimator.tpu.TPUConfig(iterations_per_loop=cfg.save_summary_steps))
    return tfgan.estimator.TPUGANEstimator(
        config=config, use_tpu=bool(cfg.tpu), train_batch_size=cfg.batch_size,
        eval_batch_size=cfg.batch_size, predict_batch_size=cfg.batch_size, **kwargs)
  distribution.validate_engine(cfg)
  if cfg.distribution != "none" or cfg.engine == "in_graph":
    model_fn = distribution.make_model_fn(
        kwargs["generator_fn"], kwargs["discriminator_fn"], lambda: make_optimizers(cfg),
        resample_noise=_resample_noise,
        model_loss=lambda which, gan_model: losses.model_loss(spec, cfg, which, gan_model),
        step=step)
    if cfg.distribution == "none":  # the in-graph step on the default device, no strategy
      config = tf.estimator.RunConfig(session_config=precision.configure_session(cfg),
                                      **run_kwargs)
      return tf.estimator.Estimator(model_fn=model_fn, config=config)
    strategy = distribution.make_strategy(cfg)
    distribution.per_replica_batch_size(cfg.batch_size, strategy.num_replicas_in_sync)
    config = tf.estimator.RunConfig(
        train_distribute=strategy,
        session_config=precision.configure_session(cfg, distribution.session_config()),
        **run_kwargs)
    return tf.estimator.Estimator(model_fn=model_fn, config=config)
  config = tf.estimator.RunConfig(
      session_config=(precision.configure_session(cfg)
                      if cfg.mixed_precision or cfg.xla else None),
      **run_kwargs)
  return tfgan.estimator.GANEstimator(config=config, use_loss_summaries=True, **kwargs)


def _resample_noise(generator_inputs):
  """The G sub-step's inputs: the input pipeline's second draw (new noise and fake labels, as
  each TF-GAN hook run reads a new batch): every 'g_<key>' replaces '<key>'."""
  inputs = {k: v for k, v in generator_inputs.items() if not k.startswith("g_")}
  for key, value in generator_inputs.items():
    if key.startswith("g_"):
      inputs[key[2:]] = value
  return inputs
