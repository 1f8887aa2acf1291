"""The estimator of a run: the config resolved once (plan.py), the model's pieces bundled once
(model_pieces.py), and handed one way to the adapter of its engine.

  cfg -> plan.resolve -> EnginePlan -> model_pieces.make_pieces -> GANPieces
      -> in_graph | distribute | gan_estimator | tpu .estimator(plan, pieces, run_kwargs)

The in-graph adapters (in_graph, distribute) execute the model's declared step as one train op
(train_op.py); TF-GAN's GANEstimator and TPUGANEstimator run their own step, and a model whose
step they cannot run was refused by plan.resolve.
"""
from estimators.config import GANConfig
from estimators.engines import distribute, gan_estimator, in_graph, model_pieces, plan as plans
from estimators.engines import tpu

ADAPTERS = {"in_graph": in_graph, "distribute": distribute, "gan_estimator": gan_estimator,
            "tpu": tpu}


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


def build_estimator(cfg: GANConfig, plan=None):
  """The estimator of `cfg` (its EnginePlan: `plan.resolve(cfg)` unless given): the in-graph
  step without or with a tf.distribute strategy, GANEstimator, or TPUGANEstimator."""
  plan = plan or plans.resolve(cfg)
  pieces = model_pieces.make_pieces(plan)
  return ADAPTERS[plan.adapter].estimator(plan, pieces, run_config_kwargs(cfg))
