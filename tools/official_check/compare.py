"""The project side of the official-code checks (run.sh): the imported run's SavedModel (and its
discriminator, restored from the run's checkpoint; AttnGAN: its DAMSM directory) on the inputs the
official networks saw, printed as max |difference| against official_out.npz.

usage: python compare.py {ladagan,sagan,attngan} WORK_DIR   (WORK_DIR/run: the imported run,
exported; run from the project root with the project's python)
"""
import glob
import os
import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.getcwd())
import run  # noqa: E402  (the project root)
from estimators.model_registry import get_model  # noqa: E402
from estimators.models import damsm as damsm_lib  # noqa: E402


def maxdiff(a, b):
  return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


def saved_model(work):
  return tf.saved_model.load(sorted(glob.glob(os.path.join(work, "run", "export", "*")))[-1])


def discriminator_logits(work, data, inputs):
  """The run's discriminator, restored from its checkpoint, on `data` (training=False)."""
  run.FLAGS(run.rerun_argv(["run.py", "--mode=sample", f"--model_dir={work}/run"]))
  cfg = run.config_from_flags()
  spec = get_model(cfg.model)
  net = spec.make_discriminator(cfg)
  spec.discriminate(cfg, net, data, inputs, training=False)
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(f"{work}/run"))
  keys = reader.get_variable_to_shape_map()
  for var in net.variables:
    name = var.name.split(":")[0]
    key = f"Discriminator/{name}"
    var.assign(reader.get_tensor(key if key in keys else f"Discriminator/{net.name}/{name}"))
  out = spec.discriminate(cfg, net, data, inputs, training=False)
  return (out["logits"] if isinstance(out, dict) else out).numpy()


def ladagan(work, ref):
  out = saved_model(work).signatures["serving_default"](noise=tf.constant(ref["z"]))["images"]
  official = np.clip(ref["ema"], -1, 1)  # served images are clipped, as the official code's saved ones
  print(f"G: SavedModel vs official ema_generator(training=False), clipped: max|diff| = "
        f"{maxdiff(out, official):.3g} ({np.mean(np.abs(ref['ema']) <= 1):.3f} of the official "
        f"values inside [-1, 1]; vs the plain generator {maxdiff(out, np.clip(ref['plain'], -1, 1)):.3g})")
  logits = discriminator_logits(work, {"images": tf.constant(ref["imgs"])}, {})
  print(f"D: run checkpoint vs official discriminator: max|diff| = "
        f"{maxdiff(logits.reshape(ref['d'].shape), ref['d']):.3g} (max|logit| {np.abs(ref['d']).max():.3g})")


def sagan(work, ref):
  out = saved_model(work).signatures["serving_default"](
      noise=tf.constant(ref["z"]), labels=tf.constant(ref["labels"]))["images"]
  print(f"G: SavedModel vs official generator(training=False): max|diff| = "
        f"{maxdiff(out, ref['images']):.3g} (image std {ref['images'].std():.3g})")
  labels = tf.constant(ref["labels"])
  logits = discriminator_logits(work, {"images": tf.constant(ref["imgs"]), "labels": labels},
                                {"labels": labels, "noise": tf.constant(ref["z"])})
  print(f"D: run checkpoint vs official discriminator: max|diff| = "
        f"{maxdiff(logits.reshape(ref['d'].shape), ref['d']):.3g} (max|logit| {np.abs(ref['d']).max():.3g})")


def attngan(work, ref):
  loaded = saved_model(work)
  caps = ref["captions"].astype("int32")
  out = loaded.signatures["serving_default"](noise=tf.constant(ref["z"]), captions=tf.constant(caps),
                                             ca_noise=tf.constant(ref["eps"]))
  for k in range(3):
    official = ref[f"stage_{k}"].transpose(0, 2, 3, 1)
    print(f"G stage_{k} ({official.shape[1]} px): SavedModel vs official G_NET.eval(): max|diff| = "
          f"{maxdiff(out[f'stage_{k}'], official):.3g} (official std {official.std():.3g})")
  print(f"  (the saved EMA G vs the plain G, caption 3, stage 2: "
        f"{maxdiff(ref['stage_2'][3:4], ref['plain_stage_2_last']):.3g})")
  vocab = [line.rstrip("\n") for line in open(os.path.join(work, "run", "vocab.txt"))]
  strings = [" ".join(vocab[i] for i in row if i > 0) for row in caps]
  by_text = loaded.signatures["caption_strings"](
      captions=tf.constant(strings), noise=tf.constant(ref["z"]), ca_noise=tf.constant(ref["eps"]))
  print(f"caption_strings (the same captions as text), stage_2: max|diff| = "
        f"{maxdiff(by_text['stage_2'], ref['stage_2'].transpose(0, 2, 3, 1)):.3g}")
  damsm = damsm_lib.load_damsm(os.path.join(work, "run", "damsm"))
  words, sentence = damsm.encode_text(tf.constant(caps), tf.constant(ref["lengths"].astype("int32")))
  t = ref["words_emb"].shape[2]
  print(f"DAMSM text encoder: words max|diff| = {maxdiff(words.numpy()[:, :, :t], ref['words_emb']):.3g}, "
        f"sentence {maxdiff(sentence, ref['sent_emb']):.3g} (max|x| {np.abs(ref['words_emb']).max():.3g})")
  for size in ("299", "256"):
    regions, code = damsm.encode_images(tf.constant(ref[f"img{size}"].transpose(0, 2, 3, 1)))
    print(f"DAMSM image encoder, {size} px input: regions max|diff| = "
          f"{maxdiff(regions, ref[f'features_{size}'].transpose(0, 2, 3, 1)):.3g}, global "
          f"{maxdiff(code, ref[f'code_{size}']):.3g} (max|x| {np.abs(ref[f'features_{size}']).max():.3g})")
  print(f"  256 px vs torch 0.3's bilinear Upsample (align_corners=True): regions "
        f"{maxdiff(regions, ref['features_256_aligned'].transpose(0, 2, 3, 1)):.3g}, global "
        f"{maxdiff(code, ref['code_256_aligned']):.3g}")


if __name__ == "__main__":
  which, work = sys.argv[1:3]
  {"ladagan": ladagan, "sagan": sagan, "attngan": attngan}[which](
      work, np.load(os.path.join(work, "official_out.npz")))
