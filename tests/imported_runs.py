"""Run modes in process on an imported run directory, and check training on from it: shared by
the *_imported_run_test modules (issue #23: every mode works on the authors' weights)."""
import contextlib
import io
import json
import os
import re
import shutil

import numpy as np
import tensorflow as tf

import run
from estimators.engines.optimizers import EMA_SUFFIX
from estimators.train_from_import import OPTIMISER_STATE
from tests import run_flags


def run_mode(*args) -> str:
  """What `python run.py *args` prints on stdout, run in this process (flags unparsed after)."""
  out = io.StringIO()
  try:
    cfg = run_flags.run_config(*args)
    with contextlib.redirect_stdout(out):
      run._run_mode(cfg)  # pylint: disable=protected-access
  finally:
    run_flags.reset()
  return out.getvalue()


def step_of(checkpoint) -> int:
  return int(tf.train.load_checkpoint(checkpoint).get_tensor("global_step"))


def train_on(imported_dir, model_dir, *flags, steps=2):
  """Copies the imported run to model_dir and trains `steps` steps there (--mode=train):
  (imported checkpoint, its step, the console's stdout)."""
  shutil.copytree(imported_dir, model_dir)
  imported = tf.train.latest_checkpoint(model_dir)
  step = step_of(imported)
  console = run_mode("--mode=train", f"--model_dir={model_dir}", f"--max_steps={step + steps}",
                     "--save_checkpoints_steps=1", *flags)
  return imported, step, console


def check_trained_on(imported, model_dir, step, console, *, steps=2, frozen=(), fresh=()):
  """The run trained `steps` steps on from the imported step; every trained generator kernel
  moved from its imported value and has Adam moments that are not zero; the console named the
  imported checkpoint and each group in `fresh` (plus the optimiser state) as initialised fresh,
  and the variables under a `fresh` prefix exist now. `frozen`: substrings of generator keys
  that do not train (AttnGAN's DAMSM text encoder). Returns the trained checkpoint's reader."""
  before = tf.train.load_checkpoint(imported)
  latest = tf.train.latest_checkpoint(model_dir)
  after = tf.train.load_checkpoint(latest)
  assert step_of(latest) == step + steps
  keys = after.get_variable_to_shape_map()
  kernels = [k for k in before.get_variable_to_shape_map()
             if k.startswith("Generator/") and k.endswith("kernel") and EMA_SUFFIX not in k
             and not any(f in k for f in frozen)]
  assert len(kernels) >= 5, kernels
  for key in kernels:
    assert not np.array_equal(after.get_tensor(key), before.get_tensor(key)), key
    moments = [k for k in keys if k.startswith(key + "/") and EMA_SUFFIX not in k]
    assert len(moments) == 2, (key, moments)  # Adam's m and v
    assert all(np.abs(after.get_tensor(k)).max() > 0 for k in moments), key
  line = next(l for l in console.splitlines() if l.startswith("training on from the imported"))
  assert f"({imported.rsplit('/', 1)[-1]}, step {step})" in line, line
  assert f"initialised as a new run initialises them: {OPTIMISER_STATE} (" in line, line
  for prefix in fresh:
    assert f"{prefix.rstrip('/')} (not released: " in line, line
    assert any(k.startswith(prefix) for k in keys), prefix
  return after, line


def evaluate(model_dir, tmp_path, *flags, inception=True):
  """--mode=eval's record (20 samples) of the run: with a stand-in Inception (IS, FID, KID on
  a small cached real set) when `inception`."""
  from eval.standin_classifier import save_standin_module  # pylint: disable=import-outside-toplevel
  if inception:
    flags += (f"--inception_path={save_standin_module(str(tmp_path / 'inception'))}",
              "--num_real_eval_samples=20", "--is_splits=2",
              f"--real_stats_cache_dir={tmp_path / 'stats'}")
  out = run_mode("--mode=eval", f"--model_dir={model_dir}", "--num_eval_samples=20",
                 "--eval_batch_size=10", *flags)
  return json.loads(out[out.index("{"):])


def draw_every_figure(model_dir, tmp_path, *interpolate_flags):
  """--mode=sample (3 PNGs), attention_maps (1 sample) and interpolate (3 frames) on the run,
  each checked for its files."""
  run_mode("--mode=sample", f"--model_dir={model_dir}", "--num_samples=3",
           f"--sample_dir={tmp_path / 'samples'}")
  images = [f for f in os.listdir(tmp_path / "samples")  # 000000.png; AttnGAN 0000.png
            if re.fullmatch(r"\d{4}(\d\d)?\.png", f)]
  assert len(images) == 3, os.listdir(tmp_path / "samples")
  out = run_mode("--mode=attention_maps", f"--model_dir={model_dir}", "--num_samples=1",
                 f"--sample_dir={tmp_path / 'maps'}")
  assert out.startswith("attention maps: ") and os.listdir(tmp_path / "maps")
  out = run_mode("--mode=interpolate", f"--model_dir={model_dir}", "--num_frames=3",
                 f"--sample_dir={tmp_path / 'walk'}", *interpolate_flags)
  assert "latent walk (1 x 3 frames)" in out
  assert os.path.isfile(tmp_path / "walk" / "walk.gif")
