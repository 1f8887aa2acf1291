"""TF1 estimator checkpoints of TF-GAN's `self_attention_estimator` and of the YLG code
(giannisdaras/ylg, built on it; its released 1M-step ImageNet-128 YLG-SAGAN) -> this project's
SAGAN / YLG-SAGAN run (--mode=import_weights; README "Released weights").

The checkpoint is read with tf.train.load_checkpoint by variable name; no official code runs.
Variable names (TF-GAN 2.1.0 examples/self_attention_estimator/{generator,discriminator,ops}.py;
ylg/{generator,discriminator,ops}.py at giannisdaras/ylg f41c818 builds the same names, only its
attention block's compute differs), below the estimator's `Generator/generator/` and
`Discriminator/discriminator/` scopes, and this project's (sagan_networks.py), one to one:

  g_snh0/dense/{kernel,bias}                     g_snh0/{kernel,bias}
  <block>/<conv>/<conv>/{kernel,bias}            <block>/<conv>/{kernel,bias}
      (snconv1-3, sn_conv1-3, g_snconv_last: ops.snconv2d's nested scope)
  g_block<i>/cbn_<k>/{gamma,beta} [classes,1,1,C]   g_block<i>/cbn_<k>/cbn/{gamma,beta} [classes,C]
  g_block<i>/cbn_<k>/moving_{mean,variance}      g_block<i>/cbn_<k>/cbn/moving_{mean,variance}
  g_bn/{gamma,beta} [1,1,1,C], moving_*          g_bn/{gamma,beta} [C], moving_*
  {g,d}_ops/sn_conv_{theta,phi,g,attn}/weights   {g,d}_ops/sn_conv_{...}/kernel
  {g,d}_ops/sigma_ratio                          {g,d}_ops/sigma
  d_sn_linear/dense/{kernel,bias}                d_sn_linear/{kernel,bias}
  d_embedding/embedding_map                      d_embedding/embeddings
  <kernel's scope>/<kernel key>/spectral_normalize/spectral_norm/spectral_norm_u   <layer>/sn_u
      (the embedding's: d_embedding/spectral_normalize/spectral_norm/spectral_norm_u)

Spectral-norm u: TF-GAN (python/features/spectral_normalization.py) keeps u [K, 1] on the
kernel's input side (W viewed as [K, C_out]: v = l2n(W^T u), u = l2n(W v)); this project keeps
u [1, C_out] on the output side (spectral_norm.py). The import writes l2n(u^T W), which is the v
TF-GAN's next power step computes from its u (the class embedding: W = embedding_map^T). At a
converged u (a trained model's) both give W's leading singular pair and the same sigma.

YLG's attention (ylg/ops.py sn_attention_block_sim) splits theta, phi and g head-major (channel
h * d + i, as YLGAttention) but recombines the heads interleaved: `transpose(attn_g, [0, 2, 3,
1])` puts head h's value channel i at i * 8 + h before sn_conv_attn. YLGAttention concatenates
head-major (h * dv + i), so the import permutes sn_conv_attn's input rows (its u, output side, is
unchanged: sigma does not depend on a row order).

Dense SAGAN and YLG-SAGAN have the same variables: which one a checkpoint is shows only in its
graph. `<prefix>.meta` (tf.train.Saver writes it beside every estimator checkpoint), when
present, decides: YLG's block adds the numpy mask addend [8, Nq, Nk] to its logits, a rank-3
constant in the generator's g_ops scope; TF-GAN's dense block has none, nor any Transpose (the
YLG code's multi-head dense ablation, --nH, has one: refused, its head order is not converted).
Without a .meta both importers accept the files and --model decides.

In the run: every generator and discriminator variable, BN moving statistics included (both
official codes generate and evaluate with training=False: moving statistics, so
--bn_inference=moving), --sn_bound=tfgan (both codes' W / max(1, sigma) outside the attention
block), no EMA (neither code keeps one: --ema_decay=0). Left out: Adam's slots
(`<var>/Adam`, `<var>/Adam_1`), beta1_power / beta2_power, global_step (the run's step).
"""
import os
import re

import numpy as np
import tensorflow as tf

from data.registry import DATASETS
from estimators.importers import tf_checkpoints
from estimators.model_registry import ImportResult, ReleasedWeights, WeightsImportError
from estimators.models import sagan_networks

G_SCOPE, D_SCOPE = "Generator/generator/", "Discriminator/discriminator/"
U_SUFFIX = "/spectral_normalize/spectral_norm/spectral_norm_u"
IMAGE_SIZE = 128  # both official codes build 128 px networks only
YLG_HEADS = 8
EXPECTED = ("a TF1 estimator checkpoint of TF-GAN's self_attention_estimator or of the YLG code: "
            "its directory (the latest checkpoint is used) or a prefix .../model.ckpt-<step> (or "
            "its .index / .data-* file)")


# --- names -----------------------------------------------------------------------------------
def official_name(name):
  """TF-GAN's variable name (below generator/ or discriminator/) of a project variable name
  (below the network's name); None for the u vectors, which are converted, not copied."""
  parts = name.split("/")
  if parts[-1] == "sn_u":
    return None
  if parts[0] in ("g_snh0", "d_sn_linear"):
    return f"{parts[0]}/dense/{parts[-1]}"
  if parts[0].endswith("_ops"):
    return "/".join(parts[:-1] + [{"kernel": "weights", "sigma": "sigma_ratio"}[parts[-1]]])
  if parts[0] == "d_embedding":
    return "d_embedding/embedding_map"
  if len(parts) >= 2 and parts[-2] == "cbn":
    return "/".join(parts[:-2] + parts[-1:])
  if parts[-1] in ("kernel", "bias"):  # ops.snconv2d: scope <name>/<name>
    return "/".join(parts[:-1] + parts[-2:])
  return name  # g_bn/{gamma, beta, moving_mean, moving_variance}


def u_key(kernel_key, keys):
  """The key of TF-GAN's u of a kernel (ckpt key), or None."""
  scope = kernel_key.rsplit("/", 1)[0]
  if kernel_key.endswith("/embedding_map"):
    exact = scope + U_SUFFIX
  else:
    exact = f"{scope}/{kernel_key}{U_SUFFIX}"
  if exact in keys:
    return exact
  tail = "/" + "/".join(kernel_key.split("/")[-3:]) + U_SUFFIX  # another outer scope inside
  found = [k for k in keys if k.startswith(scope + "/") and k.endswith(tail)]
  return found[0] if len(found) == 1 else None


def convert_u(u, kernel, embedding=False):
  """TF-GAN's u [K, 1] of `kernel` -> this project's [1, C_out]: l2n(u^T W), W = kernel as
  [K, C_out] (an embedding [classes, dim]: W = its transpose [dim, classes])."""
  w = np.asarray(kernel, np.float64)
  w = w.T if embedding else w.reshape(-1, w.shape[-1])
  v = np.asarray(u, np.float64).reshape(1, -1) @ w  # [1, C_out]
  return (v / max(np.linalg.norm(v), 1e-12)).astype(np.float32)


def interleaved_to_head_major(kernel, heads=YLG_HEADS):
  """sn_conv_attn [1, 1, C/2, C] with input channel i * heads + h (YLG) -> h * dv + i (ours)."""
  dv = kernel.shape[2] // heads
  order = [i * heads + h for h in range(heads) for i in range(dv)]
  return kernel[:, :, order, :]


# --- files -----------------------------------------------------------------------------------
def _prefix(paths):
  if len(paths) != 1:
    raise WeightsImportError(f"--import_from={','.join(paths)}: give one checkpoint; expected "
                             f"{EXPECTED}")
  p = paths[0]
  if os.path.isdir(p):
    found = tf.train.latest_checkpoint(p)
    if found is None:
      indexes = sorted((f for f in os.listdir(p) if f.endswith(".index")),
                       key=lambda f: [int(n) for n in re.findall(r"\d+", f)] or [0])
      found = os.path.join(p, indexes[-1][:-len(".index")]) if indexes else None
    if found is None:
      raise WeightsImportError(f"{p}: no checkpoint in it; expected {EXPECTED}")
    return found
  if p.endswith((".index", ".meta")) or re.search(r"\.data-\d+-of-\d+$", p):
    return re.sub(r"(\.index|\.meta|\.data-\d+-of-\d+)$", "", p)
  if os.path.exists(p + ".index"):
    return p
  raise WeightsImportError(f"{p}: not {EXPECTED}")


def _reader(prefix):
  return tf_checkpoints.open_checkpoint(
      prefix, EXPECTED, lambda keys: G_SCOPE + "g_snh0/dense/kernel" in keys,
      f"a TF-GAN SAGAN / YLG estimator checkpoint (no {G_SCOPE}g_snh0/dense/kernel")


def attention_kind(prefix):
  """'ylg', 'dense' or None (no .meta) from the checkpoint's meta graph (module docstring)."""
  meta = prefix + ".meta"
  if not os.path.isfile(meta):
    return None
  graph = tf.compat.v1.MetaGraphDef()
  try:
    with open(meta, "rb") as f:
      graph.ParseFromString(f.read())
  except Exception:  # pylint: disable=broad-except  (a corrupt .meta decides nothing)
    return None
  heads = False
  for node in graph.graph_def.node:
    if not re.search(r"(^|/)generator/g_ops/", node.name):
      continue
    if node.op == "Const":
      dims = [d.size for d in node.attr["value"].tensor.tensor_shape.dim]
      if len(dims) == 3 and dims[0] == YLG_HEADS:
        return "ylg"
    heads = heads or node.op == "Transpose"  # a head split (TF-GAN's dense block has none)
  return "dense_heads" if heads else "dense"


def _shape(keys, key, what, prefix):
  if key not in keys:
    raise WeightsImportError(f"{prefix}: no {key} ({what}); expected {EXPECTED}")
  return tuple(keys[key])


def architecture(keys, prefix):
  """The flags the variables fix, and the number of classes (0: unconditional)."""
  z_dim, cols = _shape(keys, G_SCOPE + "g_snh0/dense/kernel", "G's first linear", prefix)
  blocks = sum(1 for k in keys if re.fullmatch(G_SCOPE + r"g_block\d+/snconv1/snconv1/kernel", k))
  sizes = [s for s, w in sagan_networks.G_WIDTHS.items() if len(w) - 1 == blocks]
  if len(sizes) != 1:
    raise WeightsImportError(f"{prefix}: {blocks} generator blocks; this project's SAGAN has "
                             f"{sorted(len(w) - 1 for w in sagan_networks.G_WIDTHS.values())}")
  size = sizes[0]
  gf = cols // (16 * sagan_networks.G_WIDTHS[size][0])
  d_first = _shape(keys, D_SCOPE + "d_optimized_block1/sn_conv1/sn_conv1/kernel",
                   "D's first convolution", prefix)
  df = d_first[-1] // sagan_networks.D_BLOCKS[size][0][0]
  theta = _shape(keys, G_SCOPE + "g_ops/sn_conv_theta/weights", "G's attention block", prefix)
  res = [r for r in sagan_networks.valid_attention_resolutions(size)
         if sagan_networks.attention_channels(size, gf, df, r)[0] == theta[2]]
  if len(res) != 1:
    raise WeightsImportError(f"{prefix}: G's attention block sees {theta[2]} channels, which "
                             f"places it at {res or 'no'} resolution of a gf={gf} network")
  classes = 0
  emb = D_SCOPE + "d_embedding/embedding_map"
  if emb in keys:
    classes = int(keys[emb][0])
  flags = {"image_size": size, "z_dim": int(z_dim), "gf_dim": int(gf), "df_dim": int(df),
           "attention_resolution": res[0], "attention_type": "self_attention",
           "sn_bound": "tfgan", "bn_inference": "moving", "ema_decay": 0.0}
  return flags, classes


def read_release(paths, model):
  """ReleasedWeights for `model` ('sagan' or 'ylg_sagan'); refuses the other's checkpoint when
  the meta graph tells them apart."""
  prefix = _prefix(list(paths))
  reader, keys = _reader(prefix)
  flags, classes = architecture(keys, prefix)
  kind = attention_kind(prefix)
  if kind == "dense_heads":
    raise WeightsImportError(
        f"{prefix}.meta shows dense attention split into heads (the YLG code's --nH SAGAN "
        "ablation): not importable yet (its head order is not converted); only TF-GAN's "
        "one-head block and YLG's sparse block are")
  wanted = "ylg" if model == "ylg_sagan" else "dense"
  if kind is not None and kind != wanted:
    other = "ylg_sagan" if kind == "ylg" else "sagan"
    raise WeightsImportError(
        f"{prefix}.meta shows {'YLG sparse' if kind == 'ylg' else 'dense SAGAN'} attention: "
        f"import it with --model={other}")
  if model == "ylg_sagan":
    flags.update(ylg_layout="ylg", ylg_esa=True, ylg_nonsquare="tile")  # ylg/ops.py, masks.py
  else:
    flags["num_heads"] = 1  # TF-GAN's sn_non_local_block_sim
  ckdir = os.path.dirname(prefix) or "."
  files = [prefix + ".index"] + sorted(
      os.path.join(ckdir, f) for f in os.listdir(ckdir)
      if f.startswith(os.path.basename(prefix) + ".data-"))
  if kind is not None:
    files.append(prefix + ".meta")
  step = int(reader.get_tensor("global_step")) if "global_step" in keys else 0
  release = {"checkpoint": os.path.basename(prefix), "step": step, "num_classes": classes,
             "attention": {"ylg": "YLG sparse (8 heads)", "dense": "dense"}.get(
                 kind, "not recorded (no .meta): --model decided")}
  return ReleasedWeights(flags=flags, files=tuple(files), release=release,
                         source={"prefix": prefix, "num_classes": classes})


def _datasets_with(classes):
  return sorted(n for n, s in DATASETS.items() if s.num_classes == classes)


def import_weights(cfg, release, networks, ylg):
  """ImportResult for cfg; `networks` the built {'generator', 'discriminator'}."""
  prefix, classes = release.source["prefix"], release.source["num_classes"]
  if cfg.num_classes != classes:
    raise WeightsImportError(
        f"{prefix} has {classes} classes, --dataset={cfg.dataset} has {cfg.num_classes}: give "
        f"a dataset with {classes} (" + (", ".join(_datasets_with(classes)) or "none registered")
        + ")")
  reader, keys = _reader(prefix)
  variables, sources, missing, shapes, used = {}, {}, [], [], set()

  def read(key, shape=None):
    if key not in keys:
      missing.append(key)
      return None
    used.add(key)
    value = reader.get_tensor(key)
    if shape is not None and int(np.prod(keys[key])) != int(np.prod(shape)):
      shapes.append(f"{key} {tuple(keys[key])} in the file, {tuple(shape)} in the network")
      return None
    return value if shape is None else value.reshape(shape)

  for kind, scope in (("generator", G_SCOPE), ("discriminator", D_SCOPE)):
    net = networks[kind]
    top = kind.capitalize()
    for var in net.variables:
      name = var.name.split(":")[0]
      below = name[len(net.name) + 1:]
      target = f"{top}/{name}"
      official = official_name(below)
      if official is not None:
        value = read(scope + official, tuple(var.shape))
        if value is None:
          continue
        if ylg and below.endswith("_ops/sn_conv_attn/kernel"):
          value = interleaved_to_head_major(value)
          sources[target] = (f"{scope}{official} (input channels: YLG's interleaved heads "
                             "-> head-major)")
        else:
          sources[target] = scope + official
        variables[target] = value
        continue
      kernel_below = below[:-len("sn_u")] + ("embeddings" if below.startswith("d_embedding")
                                             else "kernel")
      kernel_key = scope + official_name(kernel_below)
      if kernel_key not in keys:
        continue  # listed missing by the kernel itself
      ukey = u_key(kernel_key, keys)
      if ukey is None:
        missing.append(f"the spectral-norm u of {kernel_key}")
        continue
      used.add(ukey)
      u = reader.get_tensor(ukey)
      kernel = reader.get_tensor(kernel_key)
      if u.size != (kernel.shape[-1] if kernel_key.endswith("embedding_map")
                    else kernel.size // kernel.shape[-1]):
        shapes.append(f"{ukey} {u.shape} does not fit {kernel_key} {kernel.shape}")
        continue
      variables[target] = convert_u(u, kernel, kernel_key.endswith("embedding_map"))
      sources[target] = f"{ukey} (input side [K, 1] -> l2n(u^T W) [1, C_out])"
  if missing or shapes:
    raise WeightsImportError(
        f"{prefix} does not hold the network its variables describe: "
        + "; ".join(filter(None, [
            f"missing {len(missing)} keys: {', '.join(missing)}" if missing else "",
            f"shapes differ: {', '.join(shapes)}" if shapes else ""])))
  left_out, unknown = {}, []
  slots = [k for k in keys if k not in used and re.search(r"/Adam(_1)?$", k)]
  if slots:
    left_out[f"*/Adam, */Adam_1 ({len(slots)} keys)"] = (
        "Adam's slots: not imported; training from this run starts with fresh optimiser state")
  for k in sorted(set(keys) - used - set(slots)):
    if k.startswith((G_SCOPE, D_SCOPE)):
      unknown.append(k)
    elif k == "global_step":
      left_out[k] = "the run's step (imported.json 'step')"
    else:
      left_out[k] = "optimiser / estimator bookkeeping, not a network variable"
  if unknown:
    raise WeightsImportError(f"{prefix} holds network variables this project's network does not "
                             f"have ({len(unknown)}: {', '.join(unknown)})")
  return ImportResult(variables=variables, sources=sources, left_out=left_out,
                      step=release.release["step"])
