"""The run config resolved once into what the engines need (`EnginePlan`), checked at start.

  resolve(cfg) -> EnginePlan(cfg, step, engine, adapter, compute_dtype, xla, replicas)

  step           the model's declared TrainingStep (ModelSpec.training_step(cfg))
  engine         who executes it: 'in_graph' (train_op.py, under any --distribution),
                 'gan_estimator' or 'tpu_gan_estimator' (TF-GAN's own step: one they cannot
                 run is refused here, training_step.check_engine)
  adapter        the module that builds the estimator: 'in_graph', 'distribute',
                 'gan_estimator' or 'tpu'
  compute_dtype  None (float32), 'float16' or 'bfloat16' (precision.compute_dtype)
  xla            XLA auto-clustering of the estimator graph (--xla)
  replicas       how many replicas share the global batch (it must divide evenly)

run.py calls `resolve` before anything is written; build.build_estimator resolves (or takes)
the plan and hands it on. Nothing downstream reads the engine flags again.
"""
import dataclasses
from typing import Optional

from estimators.config import GANConfig
from estimators.engines import cluster, precision
from estimators.engines.training_step import TrainingStep, check_engine
from estimators.models import get_model

ENGINES = ("in_graph", "gan_estimator")
WORKER_INPUTS = ("shard", "global_batch")  # --worker_input (engines/input_fn.py)


@dataclasses.dataclass(frozen=True)
class EnginePlan:
  cfg: GANConfig
  step: TrainingStep
  engine: str
  adapter: str
  compute_dtype: Optional[str]
  xla: bool
  replicas: int


def engine_name(cfg):
  """'tpu_gan_estimator', 'gan_estimator' or 'in_graph' (every in-graph engine)."""
  if cfg.use_tpu:
    return "tpu_gan_estimator"
  if cfg.distribution == "none" and cfg.engine == "gan_estimator":
    return "gan_estimator"
  return "in_graph"


def validate_engine(cfg):
  """--engine and --worker_input are known and --engine fits --distribution."""
  if cfg.engine not in ENGINES:
    raise cluster.DistributionError(f"unknown engine {cfg.engine!r}; choose one of {ENGINES}")
  if cfg.worker_input not in WORKER_INPUTS:
    raise cluster.DistributionError(f"unknown worker_input {cfg.worker_input!r}; choose one of "
                                    f"{WORKER_INPUTS}")
  if cfg.engine == "gan_estimator" and cfg.distribution != "none":
    raise cluster.DistributionError(
        f"--engine=gan_estimator trains on one device; --distribution={cfg.distribution} runs "
        "the in-graph step (--engine=in_graph, the default)")


def _adapter(cfg, engine):
  if engine == "tpu_gan_estimator":
    return "tpu"
  if engine == "gan_estimator":
    return "gan_estimator"
  return "in_graph" if cfg.distribution == "none" else "distribute"


def resolve(cfg: GANConfig) -> EnginePlan:
  """The run's EnginePlan. Fails at start, before anything is written, when the distribution
  cannot run here, the engine cannot run the model's training step, the batch does not split
  over the replicas, or --mixed_precision cannot help."""
  validate_engine(cfg)
  step = get_model(cfg.model).training_step(cfg)
  engine = engine_name(cfg)
  check_engine(step, engine)
  replicas = cluster.expected_replicas(cfg)
  cluster.per_replica_batch_size(cfg.batch_size, replicas)
  return EnginePlan(cfg=cfg, step=step, engine=engine, adapter=_adapter(cfg, engine),
                    compute_dtype=precision.compute_dtype(cfg), xla=bool(cfg.xla),
                    replicas=replicas)
