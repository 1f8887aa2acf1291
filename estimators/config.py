"""The frozen hyperparameter record every library function takes (built by run.py from flags).

Paper constants and their defaults live here once; configs/*.cfg set them per experiment.
"""
import dataclasses
from typing import Optional, Tuple


@dataclasses.dataclass(frozen=True)
class GANConfig:
  """Everything that defines a run. Library code reads this, never absl flags."""
  model: str = "sagan"
  dataset: str = "digits"
  data_dir: Optional[str] = None
  strict_data: bool = False        # fail at the first corrupt record instead of skip-and-count
  max_words: int = 0               # caption sets: words per caption (0: dataset default)
  data_options: Tuple[Tuple[str, object], ...] = ()  # loader's own options, sorted (key, value)
  model_dir: str = "runs/digits_sagan"
  image_size: int = 32
  num_classes: int = 10            # 0: unconditional (plain BN in G, no projection in D)
  # Architecture (SAGAN sec. 5: gf = df = 64 at 128 px; z 128).
  z_dim: int = 128
  gf_dim: int = 64
  df_dim: int = 64
  attention_resolution: int = 64   # feature-map size of the attention block (SAGAN Table 1 "feat64")
  attention_type: str = "self_attention"  # self_attention | residual (Table 1 ablation) | none
  num_heads: int = 1
  bn_decay: float = 0.999          # G batch-norm moving-average decay (SAGAN's CBN: 0.999)
  sn_update_in_eval: bool = False  # official-D quirk: refresh spectral-norm u outside training
  # YLG (model='ylg_sagan'): Daras et al. 2020; only the attention layer differs from SAGAN.
  ylg_layout: str = "ylg"          # 'ylg' (RTL heads 0-3, LTR 4-7) or 'strided' (ablation)
  ylg_esa: bool = True             # False: raster order instead of ESA (the No-ESA ablation)
  ylg_nonsquare: str = "tile"      # official tiling of the 16x16 mask; 'shift': paper's wording
  ylg_implementation: str = "sparse"  # 'dense': the masked reference path
  # Optimisation (SAGAN sec. 5: Adam beta1 0, beta2 0.9, TTUR lr_G 1e-4, lr_D 4e-4, 1:1 steps).
  batch_size: int = 256
  max_steps: int = 1_000_000
  generator_lr: float = 1e-4
  discriminator_lr: float = 4e-4
  beta1: float = 0.0
  beta2: float = 0.9
  ema_decay: float = 0.0           # generator EMA for sampling/export; 0 turns it off
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
  num_devices: int = 0             # mirrored: 0 = every local GPU (or CPU when there is none)
  cross_replica_bn: bool = True    # BN batch statistics over the global batch (TPU, mirrored)
  mixed_precision: bool = False    # grappler's float16 (GPU) / bfloat16 (CPU) rewrite
  mixed_precision_dtype: str = "auto"  # auto | float16 (GPU only) | bfloat16 (BF16 CPUs only)
  # Evaluation (REFERENCE_NOTES "Metrics"; the standard protocol is 50k samples, 10 IS splits).
  eval_every_steps: int = 1000
  num_eval_samples: int = 1000
  eval_batch_size: int = 100
  use_ema_for_eval: bool = True    # when ema_decay > 0
  inception_path: Optional[str] = None   # local TF-GAN Inception module; enables IS/FID/KID
  tfhub_cache_dir: Optional[str] = None  # TF-Hub cache to look in (default $TFHUB_CACHE_DIR)
  inception_download: bool = True  # may fetch the TF-Hub handle (fails in seconds offline)
  inception_resize: str = "tf1_bilinear"  # how images reach 299 px (TF-GAN's SAGAN example)
  eval_split: str = "train"        # real reference split
  num_real_eval_samples: int = 50_000
  is_splits: int = 10
  eval_feature_subset: int = 10_000  # pool_3 rows kept per side for KID and precision/recall
  real_stats_cache_dir: Optional[str] = None  # default: <cache>/real_stats
  eval_timeout_secs: int = 3600    # continuous_eval: stop after this long without a checkpoint

  def replace(self, **changes) -> "GANConfig":
    return dataclasses.replace(self, **changes)

  def to_dict(self):
    return dataclasses.asdict(self)
