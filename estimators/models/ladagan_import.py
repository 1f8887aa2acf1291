"""LadaGAN's released weights (milmor/LadaGAN, tensorflow/; Hugging Face repo milmor/LadaGAN)
-> this project's LadaGAN run (--mode=import_weights; README "Released weights").

A release is `<name>/config.json` and `<name>/best-training-checkpoints/ckpt-<n_images>` (+ its
`checkpoint` file): the tf.train.Checkpoint of trainer.py's `create_ckpt` with g_optimizer,
d_optimizer, generator, ema_generator, discriminator, n_images, fid, best_fid. It is read with
tf.train.load_checkpoint by object path; no official code runs.

Object paths (official model.py, commit eb3ed9c; Keras 2 tracks a subclassed model's attributes by
name, a Sequential's layers as `layer_with_weights-<i>`, a list as `<i>`) and this project's
variables (ladagan_networks.py), one to one:

  Generator (generator/ and ema_generator/, a clone_model of it)
    init/layer_with_weights-0/kernel             init_dense/kernel
    pos_emb_{8,16,32}/position_embedding/embeddings   pos_emb_{s}/embeddings
    block_{s}/norm{1,2}/{h,gamma,beta}/{kernel,bias}  block_{s}/norm{i}/{hidden,gamma,beta}/..
    block_{s}/attn/{wq,wk,wv,q_attn,to_out}/..   block_{s}/attention/{query,key,value,score,out}/..
    block_{s}/mlp/layer_with_weights-{0,1}/..    block_{s}/mlp/{fc1,fc2}/..
    conv_{8,16}/{kernel,bias}                    lee_{8,16}/conv/..
    dec/layer_with_weights-{2i}/..  (conv)       dec_conv_{i}/..
    dec/layer_with_weights-{2i+1}/.. (BN)        dec_bn_{i}/{gamma,beta,moving_mean,moving_variance}
    ch_conv/{kernel,bias}                        to_rgb/..
  Discriminator (discriminator/)
    inp_conv/layer_with_weights-0/kernel         stem_conv/kernel
    encoder/{i}/main/layer_with_weights-{0,1,2,3}   down_{i}/{main_conv1,main_bn1,main_conv2,main_bn2}
    encoder/{i}/direct/layer_with_weights-{0,1}     down_{i}/{skip_conv,skip_bn}
    pos_emb_8/position_embedding/embeddings      pos_emb_16/embeddings
    block_8/norm{1,2}/{gamma,beta}, attn, mlp    block_16/... (as in G)
    conv_4/{kernel,bias}                         head_conv/..
    down_4/layer_with_weights-{0,1}/kernel       head_conv1x1/kernel, logits_conv/kernel

In the run: G's variables from generator/ and their EMA shadows from ema_generator/: with
LadaGAN's default step (--ema_variables=all, the official EMA of every G weight) the BN moving
statistics too, as the release holds them; with --ema_variables=trainable (or --ema_decay=0) the
run keeps one set of G's BN statistics, filled from ema_generator/ (evaluation, sampling and export
run the EMA generator, whose own statistics these are). D from discriminator/. Left out (listed in imported.json): the optimisers' slots (Keras Adam m, v by
position, iterations, learning rate), the plain generator's BN statistics, and the bookkeeping
variables (n_images, fid, best_fid, save_counter; recorded as the release's facts).
"""
import json
import os
import re

import numpy as np
import tensorflow as tf

from estimators.importers import tf_checkpoints
from estimators.model_registry import ImportResult, ReleasedWeights, WeightsImportError

SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
NETWORKS = ("generator", "ema_generator", "discriminator")
# The Hugging Face files of the four releases (official utils.py Loader).
RELEASES = {"cifar10": 68_096_000, "celeba_64": 72_192_000, "ffhq_128": 24_064_000,
            "bedroom_128": 10_624_000}

# config.json keys (official config.py, saved by utils.Config) that do not decide the network or
# its training: the authors' in-training FID (2,500 images, Keras ImageNet Inception) and plots.
# The initialisers do not matter for imported weights.
IGNORED_KEYS = ("fid_batch_size", "gen_batch_size", "n_fid_real", "n_fid_gen", "plot_size",
                "test_seed", "g_initializer", "d_initializer")
REQUIRED_KEYS = ("img_size", "noise_dim", "g_dim", "g_heads", "g_mlp", "d_enc_dim", "d_out_dim",
                 "d_heads", "d_mlp", "dec_dim")
OPTIONAL_KEYS = ("batch_size", "g_lr", "g_beta1", "g_beta2", "d_lr", "d_beta1", "d_beta2",
                 "gp_weight", "policy", "loss", "ema_decay", "bcr", "cr_weight")


def _widths(values):
  return ",".join(str(int(v)) for v in values)


def _one(values, name, flag):
  """The single value a list of per-stage values must share to be this project's `flag`."""
  if len(set(values)) != 1:
    raise WeightsImportError(f"config.json {name}={values}: this project's LadaGAN has one "
                             f"{flag} for every stage and for G and D")
  return values[0]


def flags_from_config(config, where):
  """{flag: value} of an official config.json (every key mapped, or in IGNORED_KEYS)."""
  if not isinstance(config, dict):
    raise WeightsImportError(f"{where} is not a LadaGAN config.json (a JSON object expected)")
  unknown = sorted(set(config) - set(REQUIRED_KEYS + OPTIONAL_KEYS + IGNORED_KEYS))
  missing = [k for k in REQUIRED_KEYS if k not in config]
  if unknown or missing:
    raise WeightsImportError(
        f"{where} is not a LadaGAN config.json as the official code writes it: "
        + "; ".join(filter(None, [f"missing keys {missing}" if missing else "",
                                  f"unknown keys {unknown}" if unknown else ""])))
  c = config
  heads = _one(list(c["g_heads"]) + [c["d_heads"]], "g_heads + d_heads", "--lada_heads")
  mlp = _one(list(c["g_mlp"]) + [c["d_mlp"]], "g_mlp + d_mlp", "--g_mlp_dim")
  flags = {
      "image_size": int(c["img_size"]), "z_dim": int(c["noise_dim"]),
      "g_dim": _widths(c["g_dim"]), "g_decoder": _widths(c["dec_dim"]) if c["dec_dim"] else "none",
      "lada_heads": int(heads), "g_mlp_dim": int(mlp),
      "d_enc_dim": _widths(c["d_enc_dim"]), "d_out_dim": _widths(c["d_out_dim"]),
      # The official architecture (the Table I/II ablations are this project's options).
      "g_mlp_residual": False, "g_lee_conv": True, "g_modulation": True,
      "g_residual_with_pos_emb": True, "d_type": "lada"}
  if c.get("loss", "nsl") != "nsl":
    raise WeightsImportError(f"{where}: loss={c['loss']!r}; this project's LadaGAN trains the "
                             "non-saturating logistic loss ('nsl') only")
  for g, d, flag in (("g_beta1", "d_beta1", "beta1"), ("g_beta2", "d_beta2", "beta2")):
    if g in c and d in c and c[g] != c[d]:
      raise WeightsImportError(f"{where}: {g}={c[g]} and {d}={c[d]}; this project has one "
                               f"--{flag} for both networks")
    if g in c:
      flags[flag] = float(c[g])
  for key, flag, kind in (("batch_size", "batch_size", int), ("g_lr", "generator_lr", float),
                          ("d_lr", "discriminator_lr", float), ("gp_weight", "r1_weight", float),
                          ("policy", "diffaugment", str), ("ema_decay", "ema_decay", float)):
    if key in c:
      flags[flag] = kind(c[key])
  if "bcr" in c:
    flags["bcr_weight"] = float(c.get("cr_weight", 0.0)) if c["bcr"] else 0.0
  return flags


# --- object paths ----------------------------------------------------------------------------
_ATTENTION = {"query": "wq", "key": "wk", "value": "wv", "score": "q_attn", "out": "to_out"}
_DOWN = {"main_conv1": "main/layer_with_weights-0", "main_bn1": "main/layer_with_weights-1",
         "main_conv2": "main/layer_with_weights-2", "main_bn2": "main/layer_with_weights-3",
         "skip_conv": "direct/layer_with_weights-0", "skip_bn": "direct/layer_with_weights-1"}


def _block(stage, rest):
  """A Ladaformer's variable below block_<s>/ (project) -> the official path below block_<s>/."""
  m = re.fullmatch(r"attention/(\w+)/(kernel|bias)", rest)
  if m and m[1] in _ATTENTION:
    return f"block_{stage}/attn/{_ATTENTION[m[1]]}/{m[2]}"
  m = re.fullmatch(r"mlp/fc([12])/(kernel|bias)", rest)
  if m:
    return f"block_{stage}/mlp/layer_with_weights-{int(m[1]) - 1}/{m[2]}"
  m = re.fullmatch(r"norm([12])/(hidden|gamma|beta)/(kernel|bias)", rest)  # G: SLN's denses
  if m:
    return f"block_{stage}/norm{m[1]}/{'h' if m[2] == 'hidden' else m[2]}/{m[3]}"
  m = re.fullmatch(r"norm([12])/(gamma|beta)", rest)  # D: LayerNorm's affine
  if m:
    return f"block_{stage}/norm{m[1]}/{m[2]}"
  return None


def generator_path(name):
  """Official path (below generator/) of a project generator variable (below generator/)."""
  rules = [
      (r"init_dense/kernel", lambda m: "init/layer_with_weights-0/kernel"),
      (r"pos_emb_(\d+)/embeddings", lambda m: f"pos_emb_{m[1]}/position_embedding/embeddings"),
      (r"block_(\d+)/(.+)", lambda m: _block(m[1], m[2])),
      (r"lee_(\d+)/conv/(kernel|bias)", lambda m: f"conv_{m[1]}/{m[2]}"),
      (r"dec_conv_(\d+)/(kernel|bias)",
       lambda m: f"dec/layer_with_weights-{2 * int(m[1])}/{m[2]}"),
      (r"dec_bn_(\d+)/(gamma|beta|moving_mean|moving_variance)",
       lambda m: f"dec/layer_with_weights-{2 * int(m[1]) + 1}/{m[2]}"),
      (r"to_rgb/(kernel|bias)", lambda m: f"ch_conv/{m[1]}")]
  return _apply(rules, name)


def discriminator_path(name):
  """Official path (below discriminator/) of a project discriminator variable."""
  rules = [
      (r"stem_conv/kernel", lambda m: "inp_conv/layer_with_weights-0/kernel"),
      (r"down_(\d+)/(\w+)/(\w+)",
       lambda m: f"encoder/{m[1]}/{_DOWN[m[2]]}/{m[3]}" if m[2] in _DOWN else None),
      (r"pos_emb_16/embeddings", lambda m: "pos_emb_8/position_embedding/embeddings"),
      (r"block_16/(.+)", lambda m: _block(8, m[1])),
      (r"head_conv/(kernel|bias)", lambda m: f"conv_4/{m[1]}"),
      (r"head_conv1x1/kernel", lambda m: "down_4/layer_with_weights-0/kernel"),
      (r"logits_conv/kernel", lambda m: "down_4/layer_with_weights-1/kernel")]
  return _apply(rules, name)


def _apply(rules, name):
  for pattern, path in rules:
    m = re.fullmatch(pattern, name)
    if m:
      return path(m)
  return None


# --- files -----------------------------------------------------------------------------------
EXPECTED = ("a LadaGAN release: the directory <name>/ holding config.json and "
            "best-training-checkpoints/, or the checkpoint prefix .../ckpt-<n> (with config.json "
            "two directories up, or given too), as the official Loader downloads them")


def _locate(paths):
  """(config.json, checkpoint prefix) among --import_from's paths."""
  config = prefix = None
  for p in paths:
    if os.path.isdir(p):
      if os.path.isfile(os.path.join(p, "config.json")):
        config = os.path.join(p, "config.json")
        sub = os.path.join(p, "best-training-checkpoints")
        p = sub if os.path.isdir(sub) else p
      found = tf.train.latest_checkpoint(p)
      if found is None:
        indexes = sorted(f for f in os.listdir(p) if f.endswith(".index"))
        found = os.path.join(p, indexes[-1][:-len(".index")]) if indexes else None
      if found is not None:
        prefix = found
    elif p.endswith(".json"):
      config = p
    elif p.endswith(".index") or re.search(r"\.data-\d+-of-\d+$", p):
      prefix = re.sub(r"(\.index|\.data-\d+-of-\d+)$", "", p)
    elif os.path.exists(p + ".index"):
      prefix = p
    else:
      raise WeightsImportError(f"{p}: not {EXPECTED}")
  if prefix is not None and config is None:
    for up in (os.path.dirname(prefix), os.path.dirname(os.path.dirname(prefix))):
      if os.path.isfile(os.path.join(up, "config.json")):
        config = os.path.join(up, "config.json")
        break
  if prefix is None or config is None:
    raise WeightsImportError(f"{'no checkpoint' if prefix is None else 'no config.json'} in "
                             f"--import_from={','.join(paths)}; expected {EXPECTED}")
  return config, prefix


def _reader(prefix):
  return tf_checkpoints.open_checkpoint(
      prefix, EXPECTED,
      lambda keys: any(k.startswith("ema_generator/") and k.endswith(SUFFIX) for k in keys),
      "a LadaGAN tf.train.Checkpoint (no ema_generator/ object paths")


def _scalar(reader, keys, name):
  key = name + SUFFIX
  return reader.get_tensor(key).item() if key in keys else None


def read_release(paths):
  config_path, prefix = _locate(paths)
  try:
    with open(config_path, encoding="utf-8") as f:
      config = json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise WeightsImportError(f"{config_path} is not JSON ({e}); expected {EXPECTED}") from None
  flags = flags_from_config(config, config_path)
  reader, keys = _reader(prefix)
  ckdir = os.path.dirname(prefix)
  files = [config_path, prefix + ".index"] + sorted(
      os.path.join(ckdir, f) for f in os.listdir(ckdir)
      if f.startswith(os.path.basename(prefix) + ".data-"))
  if os.path.isfile(os.path.join(ckdir, "checkpoint")):
    files.append(os.path.join(ckdir, "checkpoint"))
  images = _scalar(reader, keys, "n_images")
  release = {"name": os.path.basename(os.path.dirname(os.path.abspath(config_path))),
             "checkpoint": os.path.basename(prefix), "images_seen": images,
             "authors_fid": _scalar(reader, keys, "fid"),
             "authors_best_fid": _scalar(reader, keys, "best_fid"),
             "authors_fid_protocol": "official trainer.py: 2,500 generated vs n_fid_real real "
                                     "images, Keras ImageNet InceptionV3 (checkpoint selection)",
             "config": config}
  return ReleasedWeights(flags=flags, files=tuple(files), release=release,
                         source={"prefix": prefix})


def import_weights(cfg, release, networks):
  """ImportResult for cfg from `release`; `networks` the built {'generator', 'discriminator'}."""
  prefix = release.source["prefix"]
  reader, keys = _reader(prefix)
  variables, sources, missing, shapes, used = {}, {}, [], [], set()

  def take(target, official, shape):
    key = official + SUFFIX
    if key not in keys:
      missing.append(official)
      return
    used.add(key)
    if tuple(keys[key]) != tuple(shape):
      shapes.append(f"{official} {tuple(keys[key])} in the file, {tuple(shape)} in the network")
      return
    variables[target] = reader.get_tensor(key)
    sources[target] = official

  left_out = {}
  for kind, path_of in (("generator", generator_path), ("discriminator", discriminator_path)):
    net = networks[kind]
    scope = kind.capitalize()
    for var in net.variables:
      name = var.name.split(":")[0]
      below = name[len(net.name) + 1:] if name.startswith(net.name + "/") else name
      path = path_of(below)
      if path is None:
        raise WeightsImportError(f"{name}: no official LadaGAN counterpart (an ablation option "
                                 "the released networks do not have?)")
      target = f"{scope}/{name}"
      if kind == "discriminator":
        take(target, f"discriminator/{path}", var.shape)
      elif var.trainable:
        take(target, f"generator/{path}", var.shape)
        if cfg.ema_decay:
          take(f"{target}/ExponentialMovingAverage", f"ema_generator/{path}", var.shape)
        else:
          left_out[f"ema_generator/{path}"] = "--ema_decay=0: the run has no EMA variables"
      elif cfg.ema_decay and cfg.ema_variables == "all":  # the official EMA, BN statistics too
        take(target, f"generator/{path}", var.shape)
        take(f"{target}/ExponentialMovingAverage", f"ema_generator/{path}", var.shape)
      else:  # BN moving statistics: one set per network here; the EMA generator's are used
        take(target, f"ema_generator/{path}", var.shape)
        used.add(f"generator/{path}{SUFFIX}")
        left_out[f"generator/{path}"] = (
            "the plain generator's BN moving statistics: this project keeps one set per "
            "network, and evaluation, sampling and export run the EMA generator, whose own "
            "statistics (ema_generator/) fill it")
  if missing or shapes:
    raise WeightsImportError(
        f"{prefix} does not hold the network config.json describes: "
        + "; ".join(filter(None, [
            f"missing {len(missing)} keys: {', '.join(missing)}" if missing else "",
            f"shapes differ: {', '.join(shapes)}" if shapes else ""])))
  unused = sorted(k[:-len(SUFFIX)] for k in keys
                  if k.endswith(SUFFIX) and k.split("/")[0] in NETWORKS and k not in used)
  if unused:
    raise WeightsImportError(f"{prefix} holds variables the network of config.json does not "
                             f"have ({len(unused)}: {', '.join(unused)}): is config.json the "
                             "release's own?")
  for opt in ("g_optimizer", "d_optimizer"):
    slots = [k for k in keys if k.startswith(opt + "/")]
    if slots:
      left_out[f"{opt}/* ({len(slots)} keys)"] = (
          "optimiser state (Keras Adam's m and v by position, iterations, learning rate): not "
          "imported; training from this run starts with fresh optimiser state")
  for name in ("n_images", "fid", "best_fid", "save_counter"):
    if name + SUFFIX in keys:
      left_out[name] = "bookkeeping of the official trainer (imported.json 'release')"
  images = release.release.get("images_seen")
  step = int(images) // cfg.batch_size if images else 0
  return ImportResult(variables=variables, sources=sources, left_out=left_out, step=step)
