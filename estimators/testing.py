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


def _free_port():
  import socket  # pylint: disable=import-outside-toplevel
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def run_loopback_workers(argv, log_dir, cwd, env=None, count=2, timeout=900):
  """Runs `argv` as the `count` workers of one TF_CONFIG cluster on loopback ports (each with its
  own task index): returns (their return codes, their outputs).

  Output goes to files, not pipes: a worker blocked on a full pipe that nobody reads yet (while
  the caller waits for another) stalls the others in the next collective: a deadlock.
  """
  import json  # pylint: disable=import-outside-toplevel
  import os  # pylint: disable=import-outside-toplevel
  import subprocess  # pylint: disable=import-outside-toplevel
  cluster = {"worker": [f"localhost:{_free_port()}" for _ in range(count)]}
  procs, paths = [], [os.path.join(str(log_dir), f"worker_{i}.log") for i in range(count)]
  try:
    for index, path in enumerate(paths):
      worker_env = dict(env if env is not None else os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                        TF_CONFIG=json.dumps({"cluster": cluster,
                                              "task": {"type": "worker", "index": index}}))
      with open(path, "w", encoding="utf-8") as log:
        procs.append(subprocess.Popen(argv, cwd=cwd, env=worker_env, stdout=log,
                                      stderr=subprocess.STDOUT, text=True))
    for proc in procs:
      proc.wait(timeout=timeout)
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
  outputs = []
  for path in paths:
    with open(path, encoding="utf-8") as f:
      outputs.append(f.read())
  return [proc.returncode for proc in procs], outputs
