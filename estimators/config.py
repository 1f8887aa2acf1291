"""The frozen run configuration every library function takes (built by run.py from flags).

Run-wide settings (dataset, run directory, batch, steps, optimiser, EMA, seed, cadence, engines,
evaluation) are fields here; the model's own hyperparameters are `hparams`, the frozen dataclass
its ModelSpec declares (estimators/models/<model>.py), with the paper's defaults.
"""
import dataclasses
from typing import Any, Optional, Tuple

from estimators.models import get_model
from estimators.engines.training_step import TrainingStep


@dataclasses.dataclass(frozen=True)
class GANConfig:
  """Everything that defines a run. Library code reads this, never absl flags."""
  model: str = "sagan"
  hparams: Any = None              # the model's hyperparameters (None: its paper defaults)
  dataset: str = "digits"
  data_dir: Optional[str] = None
  strict_data: bool = False        # fail at the first corrupt record instead of skip-and-count
  max_words: int = 0               # caption sets: words per caption (0: dataset default)
  data_options: Tuple[Tuple[str, object], ...] = ()  # loader's own options, sorted (key, value)
  model_dir: str = "runs/digits_sagan"
  image_size: int = 32
  num_classes: int = 10            # 0: unconditional (plain BN in G, no projection in D)
  # Optimisation (SAGAN sec. 5: Adam beta1 0, beta2 0.9, TTUR lr_G 1e-4, lr_D 4e-4, 1:1 steps).
  batch_size: int = 256
  max_steps: int = 1_000_000
  generator_lr: float = 1e-4
  discriminator_lr: float = 4e-4
  beta1: float = 0.0
  beta2: float = 0.9
  ema_decay: float = 0.0           # generator EMA for sampling/export; 0 turns it off
  # The training step's mechanics (engines/training_step.py; TF-GAN's here, each model's own
  # through its run_defaults): sub-step order, fresh or shared fakes, Adam's epsilon and where
  # it is added, which sub-steps update G's BN statistics, what the EMA averages, BN variance.
  step_order: str = "generator_first"
  step_fakes: str = "fresh"
  adam_epsilon: float = 1e-8
  adam_epsilon_form: str = "tf"
  generator_bn_updates: str = "generator_step"
  ema_variables: str = "trainable"
  bn_moving_variance: str = "biased"
  seed: int = 0
  # Bookkeeping.
  save_checkpoints_steps: int = 1000
  save_summary_steps: int = 100
  keep_checkpoint_max: int = 5
  use_tpu: bool = False
  tpu: Optional[str] = None
  # Scale-out (GANEstimator engines): batch_size is always the GLOBAL batch, split evenly over
  # the replicas. 'mirrored': all local GPUs (MirroredStrategy); 'multi_worker': TF_CONFIG
  # (MultiWorkerMirroredStrategy); 'one_device': the same in-graph step on one device.
  distribution: str = "none"       # none | one_device | mirrored | multi_worker
  # The engine with distribution 'none' (no TPU): 'in_graph' = one train op per step, the
  # model's declared step (for SAGAN GANEstimator's order and math, without its third
  # session.run for the logged loss; README "Training speed"); 'gan_estimator' = TF-GAN's
  # GANEstimator (sequential hooks: three session.run calls a step; its own step only).
  engine: str = "in_graph"
  num_devices: int = 0             # mirrored: 0 = every local GPU (or CPU when there is none)
  # Several input pipelines (multi_worker, TPU hosts): 'shard' = each reads its own share of the
  # files (the usual way; the real batches differ from one device's); 'global_batch' = each reads
  # the one-device stream of global batches and keeps its replicas' rows, so a step equals the
  # one-device step (each pipeline decodes every example). Noise is keyed on the global row in both.
  worker_input: str = "shard"      # shard | global_batch
  cross_replica_bn: bool = True    # BN batch statistics over the global batch (TPU, mirrored)
  mixed_precision: bool = False    # grappler's float16 (GPU) / bfloat16 (CPU) rewrite
  mixed_precision_dtype: str = "auto"  # auto | float16 (GPU only) | bfloat16 (BF16 CPUs only)
  xla: bool = False                # XLA auto-clustering of the estimator session's graph
  # Evaluation (REFERENCE_NOTES "Metrics"; the standard protocol is 50k samples, 10 IS splits).
  eval_every_steps: int = 1000
  num_eval_samples: int = 1000
  eval_batch_size: int = 100
  use_ema_for_eval: bool = True    # when ema_decay > 0
  inception_path: Optional[str] = None   # local TF-GAN Inception module; enables IS/FID/KID
  tfhub_cache_dir: Optional[str] = None  # TF-Hub cache to look in (default $TFHUB_CACHE_DIR)
  inception_download: bool = True  # may fetch the TF-Hub handle (fails in seconds offline)
  inception_resize: str = "tf1_bilinear"  # how images reach 299 px (TF-GAN's SAGAN example)
  # The Inception score's network: 'tfgan' (TF-GAN's Inception) only, or 'stackgan_cub': also
  # StackGAN's CUB-finetuned Inception-v3 as the AttnGAN / StackGAN bird IS was computed
  # (eval/stackgan_inception.py), read from the authors' TF1 checkpoint prefix.
  is_classifier: str = "tfgan"
  stackgan_inception_checkpoint: Optional[str] = None
  eval_split: str = "train"        # real reference split
  num_real_eval_samples: int = 50_000
  is_splits: int = 10
  eval_feature_subset: int = 10_000  # pool_3 rows kept per side for KID and precision/recall
  real_stats_cache_dir: Optional[str] = None  # default: <cache>/real_stats
  eval_timeout_secs: int = 3600    # continuous_eval: stop after this long without a checkpoint

  def __post_init__(self):
    TrainingStep.from_config(self)  # the step's options and their combination: checked now
    spec = get_model(self.model)
    if self.hparams is None:
      object.__setattr__(self, "hparams", spec.hparams_class())
    elif not isinstance(self.hparams, spec.hparams_class):
      raise TypeError(f"model {self.model!r} takes {spec.hparams_class.__name__} hyperparameters, "
                      f"got {type(self.hparams).__name__}")

  def replace(self, **changes) -> "GANConfig":
    """A copy with run settings changed; a new `model` without `hparams` gets its defaults."""
    if "model" in changes and "hparams" not in changes and changes["model"] != self.model:
      changes["hparams"] = None
    return dataclasses.replace(self, **changes)

  def with_hparams(self, **changes) -> "GANConfig":
    """A copy with some of the model's hyperparameters changed."""
    return dataclasses.replace(self, hparams=dataclasses.replace(self.hparams, **changes))

  def to_dict(self):
    """Run settings, with the model's name and hyperparameters nested under `model`."""
    values = {f.name: dataclasses.asdict(self)[f.name] for f in dataclasses.fields(self)
              if f.name not in ("model", "hparams")}
    values["model"] = {"name": self.model, "hparams": dataclasses.asdict(self.hparams)}
    return values
