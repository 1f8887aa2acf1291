"""--mode=interpolate: latent walks as a PNG frame grid and an animated GIF, for any model.

  between="seeds": the noise walks through the noise of `seeds` in order, other inputs fixed.
    A seed's noise is row 0 of the model's `sample_inputs(cfg, 1, seed)`, the first image
    --mode=sample --seed=S draws (with the same --truncation). Class-conditional models draw a
    row per class of `classes` (default: the class --mode=sample draws first for seeds[0]).
    `method`: "spherical" (slerp along the great circle, White 2016, the usual choice for
    Gaussian noise: linear midpoints have a smaller norm than any sample) or "linear".
  between="classes" (class-conditional models): a row per seed of `seeds` at that seed's fixed
    noise, the class walking through `classes` in order. Models whose ModelSpec mixes class
    embeddings (`supports_class_mixing`: SAGAN's CBN gammas/betas) get the linear mixture
    (1 - t) * e_a + t * e_b at every frame, so both ends are exactly the two classes' samples.
    Fallback for a model that cannot mix, or a SavedModel without a 'class_mixture' signature
    (exported before it existed): each frame is the class nearest to t (the switch at each
    segment's midpoint), every frame a real class sample; walk.json says which ("class_mixing":
    "embedding" or "nearest").

Each segment has `num_frames` frames including both ends; consecutive segments share their ends,
so a path through K points has (K - 1) * (num_frames - 1) + 1 frames. From a checkpoint (the
latest by default; EMA weights when the run has them) or a SavedModel (serving_default, and its
'class_mixture' signature for class walks). With --bn_inference=batch the frames depend on their
batch (all frames of a walk are generated together). Written atomically to out_dir:
  grid.png   a row per walk, a column per frame
  walk.gif   a frame per column (the rows stacked), a progress bar under it (Pillow merges a
             frame identical to the one before into it; the bar keeps every frame distinct)
  walk.json  the settings, the points of the path and t of every frame
"""
import collections
import io
import os

import numpy as np
import tensorflow as tf
from absl import logging

from estimators import export, run_dir
from estimators.evaluation import use_ema
from estimators.models import get_model

BETWEEN = ("seeds", "classes")
METHODS = ("spherical", "linear")


def lerp(a, b, t):
  return (1.0 - t) * a + t * b


def slerp(a, b, t):
  """Spherical interpolation of vectors a, b [D] at t in [0, 1]: along the great circle with
  the norm interpolated linearly; linear when a and b are (anti)parallel within float
  precision. Exactly a at t = 0 and b at t = 1."""
  if t == 0.0:
    return np.array(a, np.float32)
  if t == 1.0:
    return np.array(b, np.float32)
  a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
  na, nb = np.linalg.norm(a64), np.linalg.norm(b64)
  if na == 0.0 or nb == 0.0:
    return lerp(a64, b64, t).astype(np.float32)
  omega = np.arccos(np.clip(np.dot(a64 / na, b64 / nb), -1.0, 1.0))
  if np.sin(omega) < 1e-6:
    return lerp(a64, b64, t).astype(np.float32)
  direction = (np.sin((1.0 - t) * omega) * a64 / na + np.sin(t * omega) * b64 / nb) / np.sin(omega)
  return (direction * lerp(na, nb, t)).astype(np.float32)


def path_positions(num_points, num_frames):
  """[(segment, t)] of every frame of a path through `num_points` points, `num_frames` frames
  per segment including both ends, shared ends counted once."""
  if num_points < 2:
    raise ValueError(f"a walk needs at least 2 points, got {num_points}")
  if num_frames < 2:
    raise ValueError(f"--num_frames must be at least 2 (both ends), got {num_frames}")
  ts = np.linspace(0.0, 1.0, num_frames)
  positions = [(0, 0.0)]
  for segment in range(num_points - 1):
    positions.extend((segment, float(t)) for t in ts[1:])
  return positions


def _noise_of(spec, cfg, seed, truncation):
  inputs = spec.sample_inputs(cfg, 1, seed=seed, truncation=truncation)
  if "noise" not in inputs:
    raise ValueError(f"--model={cfg.model}'s inputs have no 'noise' to walk through")
  return inputs


Walk = collections.namedtuple("Walk", ["inputs", "points", "rows", "positions"])
Walk.__doc__ = """A walk's generator inputs: `inputs` {name: [len(rows) * len(positions), ...]}
(row-major: row r, frame f at r * len(positions) + f); `points` the seeds or classes the path
goes through; `rows` the class (seed walk; None when unconditional) or seed (class walk) of each
row; `positions` [(segment, t)] of each frame."""


def walk_inputs(cfg, between="seeds", seeds=(0, 1), classes=None, num_frames=8,
                method="spherical", truncation=None, class_mixing=True) -> Walk:
  """The inputs of every frame (module docstring). `class_mixing`: a class walk mixes the
  embeddings ('class_weights' [N, num_classes]) or takes the nearest class ('labels')."""
  spec = get_model(cfg.model)
  if between not in BETWEEN:
    raise ValueError(f"between must be one of {BETWEEN}, got {between!r}")
  if method not in METHODS:
    raise ValueError(f"interpolation must be one of {METHODS}, got {method!r}")
  num_classes = spec.num_classes(cfg)
  if classes and not num_classes:
    raise ValueError(f"--model={cfg.model} on --dataset={cfg.dataset} is unconditional: it has "
                     "no classes to walk through or draw rows of")
  for c in classes or ():
    if not 0 <= c < num_classes:
      raise ValueError(f"class {c} is not one of the {num_classes} classes (0..{num_classes - 1})"
                       f" of --dataset={cfg.dataset}")
  seeds = [int(s) for s in seeds]
  frames = []
  if between == "seeds":
    interp = slerp if method == "spherical" else lerp
    ends = [_noise_of(spec, cfg, s, truncation) for s in seeds]
    positions = path_positions(len(seeds), num_frames)
    rows = list(classes) if classes else [int(ends[0]["labels"][0]) if num_classes else None]
    for label in rows:
      for segment, t in positions:
        frame = {k: v[0] for k, v in ends[segment].items()}
        frame["noise"] = interp(ends[segment]["noise"][0], ends[segment + 1]["noise"][0], t)
        if label is not None:
          frame["labels"] = np.int32(label)
        frames.append(frame)
    points = seeds
  else:
    if not num_classes:
      raise ValueError(f"--model={cfg.model} on --dataset={cfg.dataset} is unconditional: "
                       "walk between seeds instead")
    points = list(classes) if classes else [0, 1]
    positions = path_positions(len(points), num_frames)
    eye = np.eye(num_classes, dtype=np.float32)
    for seed in seeds:
      noise = _noise_of(spec, cfg, seed, truncation)["noise"][0]
      for segment, t in positions:
        a, b = points[segment], points[segment + 1]
        if class_mixing:
          frames.append({"noise": noise,
                         "class_weights": lerp(eye[a], eye[b], t).astype(np.float32)})
        else:
          frames.append({"noise": noise, "labels": np.int32(a if t < 0.5 else b)})
    rows = seeds
  inputs = {k: np.stack([frame[k] for frame in frames]) for k in frames[0]}
  return Walk(inputs, points, rows, positions)


def _images_fn(cfg, checkpoint, saved_model, between, mixing):
  """(fn(inputs dict of numpy) -> images numpy, whether classes mix, the source's name)."""
  spec = get_model(cfg.model)
  if saved_model:
    serve = export.generator_fn_from_saved_model(saved_model)
    mixture = serve.loaded.signatures.get("class_mixture")
    if between == "classes" and mixing and mixture is not None:
      return (lambda inputs: mixture(noise=tf.constant(inputs["noise"]),
                                     class_weights=tf.constant(inputs["class_weights"]))[
                                         "images"].numpy()), True, saved_model
    return (lambda inputs: np.asarray(serve({k: tf.constant(v) for k, v in inputs.items()}))), (
        False), saved_model
  ckpt = export.resolve_checkpoint(checkpoint or cfg.model_dir)
  generator = export.restore_generator(cfg, ckpt, use_ema(cfg, ckpt))
  generate = tf.function(
      lambda inputs: spec.images(spec.generate(cfg, generator, inputs, training=False)))

  def call(inputs):
    if "class_weights" in inputs:
      inputs = spec.class_mixture_inputs(cfg, inputs["noise"], inputs["class_weights"])
    return generate({k: tf.constant(v) for k, v in inputs.items()}).numpy()
  return call, mixing, ckpt


def gif_bytes(frames, frame_ms=100):
  """frames [F, H, W, 3] in [-1, 1] -> an animated GIF (loops) with a progress bar strip under
  each frame, so consecutive frames always differ (Pillow would merge identical ones)."""
  num, _, width, _ = frames.shape
  from PIL import Image  # pylint: disable=import-outside-toplevel
  bar = max(2, width // 32)
  pictures = []
  for i, frame in enumerate(frames):
    strip = np.full((bar, width, 3), -1.0, np.float32)
    strip[:, :int(round(i * width / max(num - 1, 1)))] = 1.0
    if num - 1 > width:  # bar lengths repeat: a parity tick at its end keeps neighbours apart
      strip[:, -1] = 1.0 if i % 2 else -1.0
    arr = np.concatenate([frame, strip], axis=0)
    pictures.append(Image.fromarray(np.clip(np.round((arr + 1.0) * 127.5), 0, 255)
                                    .astype(np.uint8)))
  buf = io.BytesIO()
  pictures[0].save(buf, format="GIF", save_all=True, append_images=pictures[1:],
                   duration=int(frame_ms), loop=0)
  return buf.getvalue()


def run_interpolate(cfg, between="seeds", seeds=None, classes=None, num_frames=8,
                    method="spherical", truncation=None, checkpoint=None, saved_model=None,
                    out_dir=None, frame_ms=100, seed=0):
  """Writes grid.png, walk.gif and walk.json (module docstring); returns (out_dir, frames
  [rows, num frames, S, S, 3] in [-1, 1]). `seeds` default: (seed, seed + 1) for a seed walk,
  (seed,) for a class walk."""
  spec = get_model(cfg.model)
  if seeds is None:
    seeds = (seed, seed + 1) if between == "seeds" else (seed,)
  walk_inputs(cfg, between, seeds, classes, num_frames, method, truncation)  # checks first
  mixing = between == "classes" and spec.supports_class_mixing
  fn, fn_mixes, source = _images_fn(cfg, checkpoint, saved_model, between, mixing)
  if between == "classes" and not fn_mixes:
    logging.warning(
        "interpolate: %s cannot mix class embeddings (%s); each frame shows the nearest class",
        source, "no 'class_mixture' signature: re-export it with this version" if mixing
        else f"--model={cfg.model} does not support it")
  mixing = fn_mixes
  walk = walk_inputs(cfg, between, seeds, classes, num_frames, method, truncation,
                     class_mixing=mixing)
  total, batch = len(walk.inputs["noise"]), cfg.eval_batch_size
  images = np.concatenate([fn({k: v[s:s + batch] for k, v in walk.inputs.items()})
                           for s in range(0, total, batch)])
  frames = images.reshape((len(walk.rows), len(walk.positions)) + images.shape[1:])
  if out_dir is None:
    tag = "savedmodel" if saved_model else f"step{export.checkpoint_step(source)}"
    name = "-".join(map(str, walk.points))
    if between == "seeds":
      name += f"_{method}" + ("_class" + "-".join(map(str, walk.rows)) if walk.rows[0] is not None
                              else "")
    else:
      name += "_seed" + "-".join(map(str, walk.rows))
    out_dir = os.path.join(cfg.model_dir, "interpolations", f"{tag}_{between}_{name}")
  run_dir.write_png(os.path.join(out_dir, "grid.png"),
                    run_dir.grid(images, len(walk.positions)))
  columns = np.concatenate(list(frames), axis=1)  # [F, rows * S, S, 3]: rows stacked per frame
  run_dir.atomic_write_bytes(os.path.join(out_dir, "walk.gif"), gif_bytes(columns, frame_ms))
  run_dir.atomic_write_json(os.path.join(out_dir, "walk.json"), {
      "source": source, "between": between, "path": walk.points,
      "rows": {"classes" if between == "seeds" else "seeds": walk.rows},
      "interpolation": method if between == "seeds" else None,
      "class_mixing": ("embedding" if mixing else "nearest") if between == "classes" else None,
      "num_frames_per_segment": num_frames, "num_frames": len(walk.positions),
      "frames": [{"segment": s, "t": round(t, 6)} for s, t in walk.positions],
      "truncation": truncation, "frame_ms": frame_ms, "image_size": cfg.image_size})
  return out_dir, frames
