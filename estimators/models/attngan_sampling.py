"""AttnGAN's `--mode=sample`: images for given captions, and word-attention figures (Figure 4).

`python run.py --model=attngan --mode=sample --model_dir=RUN --captions_file=captions.txt`
reads one caption per line and writes, under --sample_dir (default <model_dir>/samples/
captions_<source>_seed<seed>/):
  <i>.png              the last stage's image of caption i
  <i>_stages.png       every stage side by side (nearest-upscaled to the last size)
  <i>_attention.png    Figure 4: one row per attention stage: the stage's image, then the maps of
                       the 5 words with the most attention mass, each labelled with its word
  captions.json        the captions, their token ids (unknown words dropped) and each stage's
                       top-5 words with their mass
From a checkpoint (the latest; G's EMA when the run has one) or `--saved_model` (its
'caption_strings' signature tokenises the strings itself; no attention maps then, which need the
checkpoint's generator). Without --captions_file: --num_samples held-out test captions.
"""
import json
import os

import numpy as np
import tensorflow as tf

from data.text import Vocabulary
from estimators import run_dir
from estimators.model_registry import get_model
from estimators.engines.optimizers import EMA_SUFFIX
from estimators.summaries import attention_tiles

TOP_WORDS = 5
TILE = 128  # pixels per figure tile


def read_captions(path):
  if not path or not os.path.isfile(path):
    raise FileNotFoundError(f"--captions_file={path!r} does not exist: give a text file with "
                            "one caption per line")
  with open(path, encoding="utf-8") as f:
    captions = [line.strip() for line in f if line.strip()]
  if not captions:
    raise ValueError(f"--captions_file={path} holds no caption (one per line expected)")
  return captions


def encode(vocab, captions, max_words):
  """(ids [N, max_words] int32 0-padded, per-caption kept words); a caption none of whose words
  is in the vocabulary is an error naming it."""
  ids = np.zeros([len(captions), max_words], np.int32)
  for i, caption in enumerate(captions):
    encoded = vocab.encode_text(caption)[:max_words]
    if not encoded:
      raise ValueError(f"caption {i + 1} ({caption!r}) has no word of the run's vocabulary "
                       f"({len(vocab)} words)")
    ids[i, :len(encoded)] = encoded
  return ids


def top_words(beta, ids, vocab, k=TOP_WORDS):
  """[(word, mass)] of the k real words with the most attention: beta [T, N] of one caption."""
  mass = beta.mean(axis=1)  # [T] share of the pixels' attention each word gets
  real = int(np.sum(ids != 0))
  order = [t for t in np.argsort(-mass[:real], kind="stable")[:k]]
  return [(vocab.decode([ids[t]]), float(mass[t]), int(t)) for t in order]


def latest_checkpoint(cfg, checkpoint=None):
  return run_dir.resolve_checkpoint(checkpoint or cfg.model_dir)


def restore_generator(cfg, spec, checkpoint):
  """G built eagerly with the checkpoint's weights, its EMA's where the run has one (as
  estimators.export does; a model module cannot import export). Returns (G, used EMA, step)."""
  reader = tf.train.load_checkpoint(checkpoint)
  available = reader.get_variable_to_shape_map()
  ema = bool(cfg.ema_decay and cfg.use_ema_for_eval
             and any(k.endswith("/" + EMA_SUFFIX) for k in available))
  generator = spec.make_generator(cfg)
  ids = np.ones([1, 2], np.int32)
  spec.generate(cfg, generator, {k: tf.constant(v) for k, v in
                                 spec.inputs_for_captions(cfg, ids, 0).items()}, training=False)
  missing = []
  for var in generator.variables:
    name = var.name.split(":")[0]
    suffix = f"/{EMA_SUFFIX}" if ema and var.trainable else ""
    key = next((k for k in (f"Generator/{name}{suffix}", f"Generator/{generator.name}/{name}"
                            f"{suffix}") if k in available), None)
    if key is None:
      missing.append(name)
    else:
      var.assign(reader.get_tensor(key))
  if missing:
    raise ValueError(f"checkpoint {checkpoint} does not match the configured AttnGAN; missing "
                     f"{missing[:3]}: check --image_size and the hyperparameters of the run")
  return generator, ema, int(reader.get_tensor("global_step"))


def _upscale(image, size):
  """Nearest upsampling of a stage image [s, s, 3] by an integer factor towards `size`."""
  reps = max(1, size // image.shape[0])
  return np.repeat(np.repeat(image, reps, axis=0), reps, axis=1)


def attention_figure(stage_images, betas, ids, vocab):
  """One [rows * (TILE + 14), (1 + TOP_WORDS) * TILE, 3] uint8 figure: per attention stage k,
  the image of stage k, then its top words' attention drawn over it as every attention map of the
  suite is (estimators.summaries.attention_tiles: per-map normalised jet over the grey image),
  labelled."""
  from PIL import Image, ImageDraw  # pylint: disable=import-outside-toplevel
  rows = []
  for image, beta in zip(stage_images, betas):
    words = top_words(beta, ids, vocab)
    maps = beta[[t for _, _, t in words]]  # [k, N]: each top word's attention over the pixels
    tiles = [attention_tiles(image[None], None, TILE)[0].numpy()]  # the stage image itself
    if len(words):
      tiles.extend(attention_tiles(np.repeat(image[None], len(words), axis=0), maps, TILE).numpy())
    while len(tiles) < 1 + TOP_WORDS:
      tiles.append(np.zeros_like(tiles[0]))
    strip = np.concatenate(tiles, axis=1)
    canvas = Image.new("RGB", (strip.shape[1], TILE + 14), "white")
    canvas.paste(Image.fromarray(np.round(strip * 255).astype(np.uint8)), (0, 14))
    draw = ImageDraw.Draw(canvas)
    draw.text((2, 1), f"{image.shape[0]} px", fill="black")
    for j, (word, mass, _) in enumerate(words):
      draw.text(((j + 1) * TILE + 2, 1), f"{word} {mass:.2f}", fill="black")
    rows.append(np.asarray(canvas))
  return np.concatenate(rows, axis=0)


def run_sample(cfg, options):
  """The AttnGAN `sample` mode (see the module docstring); returns the output directory."""
  spec = get_model(cfg.model)
  vocab = Vocabulary.load(os.path.join(cfg.model_dir, "vocab.txt"))
  seed = options.get("seed") or 0
  if options.get("captions_file"):
    captions = read_captions(options["captions_file"])
    ids = encode(vocab, captions, spec.max_words(cfg))
  else:  # held-out test captions
    ids = spec.held_out_captions(cfg, options.get("num_samples") or 16)["captions"]
    captions = [vocab.decode(row) for row in ids]
  inputs = spec.inputs_for_captions(cfg, ids, seed, options.get("truncation"))
  saved_model = options.get("saved_model")
  if saved_model:
    serve = tf.saved_model.load(saved_model).signatures["caption_strings"]
    outputs = serve(captions=tf.constant(captions), noise=tf.constant(inputs["noise"]),
                    ca_noise=tf.constant(inputs["ca_noise"]))
    tag = "savedmodel"
  else:
    generator, _, step = restore_generator(
        cfg, spec, latest_checkpoint(cfg, options.get("checkpoint")))
    outputs = spec.generate(cfg, generator, {k: tf.constant(v) for k, v in inputs.items()},
                            training=False)
    tag = f"step{step}"
  outputs = {k: v.numpy() for k, v in outputs.items()}
  out_dir = options.get("sample_dir") or os.path.join(cfg.model_dir, "samples",
                                                      f"captions_{tag}_seed{seed}")
  branches = cfg.hparams.branch_num
  index = []
  for i, caption in enumerate(captions):
    run_dir.write_png(os.path.join(out_dir, f"{i:04d}.png"), outputs["images"][i])
    stages = [_upscale(outputs[f"stage_{k}"][i], cfg.image_size) for k in range(branches)]
    run_dir.write_png(os.path.join(out_dir, f"{i:04d}_stages.png"),
                      np.concatenate(stages, axis=1))
    entry = {"caption": caption, "ids": [int(t) for t in ids[i] if t],
             "words": vocab.decode(ids[i])}
    if "attention_1" in outputs:
      betas = [outputs[f"attention_{k}"][i] for k in range(1, branches)]
      images = [outputs[f"stage_{k}"][i] for k in range(1, branches)]
      run_dir.write_png(os.path.join(out_dir, f"{i:04d}_attention.png"),
                        attention_figure(images, betas, ids[i], vocab))
      entry["top_words"] = {f"stage_{k}": [[w, round(m, 4)] for w, m, _ in
                                           top_words(b, ids[i], vocab)]
                            for k, b in zip(range(1, branches), betas)}
    index.append(entry)
  run_dir.atomic_write_json(os.path.join(out_dir, "captions.json"), index)
  print(f"{len(captions)} captions -> images in {out_dir}")
  return out_dir
