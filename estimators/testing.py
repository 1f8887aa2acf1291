"""Tiny configurations shared by the estimator and end-to-end tests (fast on 2 CPU cores)."""
import dataclasses

from estimators.config import GANConfig
from estimators.engines import training_step
from estimators.models import get_model

_RUN_FIELDS = {f.name for f in dataclasses.fields(GANConfig)}


def tiny_config(model_dir, **overrides) -> GANConfig:
  """32 px, gf = df = 8, z 16, batch 8: a SAGAN that trains a step in well under a second.

  The model's training-step flags come from its run_defaults (as run.py's), overridable here.

  `overrides` may mix run settings and the model's hyperparameters (told apart by name); a
  hyperparameter the model does not have is an error.
  """
  run = dict(model_dir=str(model_dir), dataset="digits", image_size=32, num_classes=10,
             batch_size=8, max_steps=20, save_checkpoints_steps=10, save_summary_steps=10,
             eval_every_steps=10, num_eval_samples=200, eval_batch_size=100)
  model = overrides.pop("model", "sagan")
  spec = get_model(model)
  # The model's own training step, as run.py gives it when no step flag is passed.
  run.update({k: v for k, v in spec.run_defaults.items() if k in training_step.FIELDS})
  hparams_class = spec.hparams_class
  names = {f.name for f in dataclasses.fields(hparams_class)}
  hparams = {k: v for k, v in dict(gf_dim=8, df_dim=8, z_dim=16, attention_resolution=16).items()
             if k in names}
  for key, value in overrides.items():
    if key in _RUN_FIELDS:
      run[key] = value
    elif key in names:
      hparams[key] = value
    else:
      raise TypeError(f"{key!r} is neither a run setting nor a {model} hyperparameter")
  return GANConfig(model=model, hparams=hparams_class(**hparams), **run)
