"""The engines: a model's declared training step, executed by thin per-engine adapters.

  training_step.py  what a model declares: the step (order, fresh or shared fakes, Adam's
                    epsilon, BN updates, EMA set, BN variance) and which TF-GAN engine runs it
  plan.py           the run config resolved once and checked at start -> EnginePlan
  model_pieces.py   the model as TF-GAN's functions (networks, losses, optimisers) -> GANPieces
  train_op.py       the shared core: a TrainingStep executed as one train op; the model_fn
  in_graph.py       adapter: that train op in an Estimator, no strategy (the default)
  distribute.py     adapter: that train op under tf.distribute (one_device, mirrored,
                    multi_worker)
  gan_estimator.py  adapter: TF-GAN's GANEstimator, its own step through its hooks
  tpu.py            adapter: TF-GAN's TPUGANEstimator
  build.py          build_estimator(cfg): plan -> pieces -> the plan's adapter
  input_fn.py       the training input_fn every engine reads (real batch, generator inputs)
  cluster.py        devices, TF_CONFIG workers, the chief, replicas and their batch shares
  precision.py      mixed precision and XLA: the session rewrites, loss scaling
  optimizers.py     Adam with TTUR, the step's epsilon, the generator EMA

The config flows one way: build -> plan -> pieces -> adapter -> train_op -> the model's pieces;
no module calls back into one that called it (tests/engine_calls_test.py).
This file imports nothing: run.py imports precision before TensorFlow starts its devices.
"""
