"""--mode=attention_maps: each head's attention drawn over the generated image, as PNG grids
(LadaGAN paper Figure 6), for any model whose ModelSpec returns attention maps.

From a checkpoint (the latest by default; the EMA generator when the run has one) or from a
SavedModel's 'attention' signature. One PNG per map (e.g. attention_8x8.png, _16x16, _32x32):
a row per sample, the image first, then one overlay per head (the head's weights scaled to their
maximum, nearest-resized from the token grid to the image, blue = low, red = high).
"""
import os

import numpy as np
import tensorflow as tf

from estimators import export, run_dir
from estimators.evaluation import use_ema
from estimators.models import get_model
from estimators.summaries import attention_heat_maps

MAX_SAMPLES = 16


def overlay(image, heat):
  """An image [S, S, 3] in [-1, 1] with a heat map [S, S] in [0, 1] blended over it, in [-1, 1]."""
  gray = np.repeat(np.mean(image, axis=-1, keepdims=True), 3, axis=-1) * 0.5  # dimmed
  colour = np.stack([heat, 0.25 * heat, 1.0 - heat], axis=-1) * 2.0 - 1.0  # blue -> red
  return np.clip(0.5 * gray + 0.5 * colour, -1.0, 1.0).astype(np.float32)


def attention_grid(images, maps, image_size):
  """images [N, S, S, 3], maps [N, heads, side * side] -> one grid [N * S, (1 + heads) * S, 3]."""
  tiles = []
  for image, per_head in zip(images, maps):
    heat = attention_heat_maps(tf.constant(per_head), image_size).numpy()  # [heads, S, S, 1]
    tiles.append(image)
    tiles.extend(overlay(image, h[..., 0]) for h in heat)
  return run_dir.grid(np.stack(tiles), 1 + maps.shape[1])


def run_attention_maps(cfg, num=8, seed=0, truncation=None, checkpoint=None, saved_model=None,
                       out_dir=None):
  """Writes one PNG per attention map of `num` samples; returns their paths."""
  spec = get_model(cfg.model)
  if not spec.has_attention_maps:
    raise ValueError(f"--model={cfg.model} returns no attention maps")
  num = min(num, MAX_SAMPLES)
  inputs = spec.sample_inputs(cfg, num, seed=seed, truncation=truncation)
  if saved_model:
    loaded = tf.saved_model.load(saved_model)
    if "attention" not in loaded.signatures:
      raise ValueError(f"SavedModel {saved_model} has no 'attention' signature (export it with "
                       "this version from a model that returns attention maps)")
    signature = loaded.signatures["attention"]
    takes = set(signature.structured_input_signature[1])
    out = signature(**{k: tf.constant(v) for k, v in inputs.items() if k in takes})
    images = out.pop("images").numpy()
    maps = {k: v.numpy() for k, v in out.items()}
    tag = "savedmodel"
  else:
    ckpt = export.resolve_checkpoint(checkpoint or cfg.model_dir)
    generator = export.restore_generator(cfg, ckpt, use_ema(cfg, ckpt))
    images, maps = spec.attention(cfg, generator, {k: tf.constant(v) for k, v in inputs.items()})
    images, maps = images.numpy(), {k: v.numpy() for k, v in maps.items()}
    tag = f"step{export.checkpoint_step(ckpt)}"
  out_dir = out_dir or os.path.join(cfg.model_dir, "attention_maps", f"{tag}_seed{seed}")
  paths = []
  for name in sorted(maps, key=lambda k: (maps[k].shape[-1], k)):  # coarse to fine
    side = int(np.sqrt(maps[name].shape[-1]))
    path = os.path.join(out_dir, f"{name.split('_')[0]}_{side}x{side}.png")
    run_dir.write_png(path, attention_grid(images, maps[name], cfg.image_size))
    paths.append(path)
  return paths
