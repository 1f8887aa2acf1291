"""Tiny configurations shared by the estimator and end-to-end tests (fast on 2 CPU cores)."""
from estimators.config import GANConfig


def tiny_config(model_dir, **overrides) -> GANConfig:
  """32 px, gf = df = 8, z 16, batch 8: a SAGAN that trains a step in well under a second."""
  values = dict(model_dir=str(model_dir), dataset="digits", image_size=32, num_classes=10,
                gf_dim=8, df_dim=8, z_dim=16, batch_size=8, attention_resolution=16,
                max_steps=20, save_checkpoints_steps=10, save_summary_steps=10,
                eval_every_steps=10, num_eval_samples=200, eval_batch_size=100)
  values.update(overrides)
  return GANConfig(**values)
