"""AttnGAN's released weights (taoxugit/AttnGAN, README "Released weights") -> this project's
DAMSM directory and AttnGAN run (--mode=import_weights --model=attngan; README "Released weights").

The authors publish (Google Drive links in their README) the DAMSM encoders
`DAMSMencoders/{bird,coco}/text_encoder{200,100}.pth` and `image_encoder{200,100}.pth`, the
generators `models/{bird,coco}_AttnGAN2.pth`, and per dataset the metadata `captions.pickle`
([train_captions, test_captions, ixtoword, wordtoix], code/datasets.py load_text_data) whose ids
the text encoder's embedding rows index. All are read without torch and without running a pickle
(estimators/importers). Official module paths (code/model.py at commit 0d000e6) and this
project's variables:

  text_encoder*.pth (RNN_ENCODER, LSTM, 1 layer, bidirectional)
    encoder.weight [ntoken, 300]                 TextEncoder embedding/embeddings
    rnn.{weight_ih,weight_hh,bias_ih,bias_hh}_l0[_reverse]   bilstm forward / backward LSTM
                                                 (kernel, recurrent_kernel, bias_ih + bias_hh)
  image_encoder*.pth (CNN_ENCODER: torchvision Inception-v3 Conv2d_1a_3x3 .. Mixed_7c)
    <module>.conv.weight (OIHW)                  inception_v3/<module>.conv/kernel (HWIO)
    <module>.bn.{weight,bias,running_mean,running_var}   <module>.bn/{gamma,beta,moving_*}
    emb_features.weight [nef, 768, 1, 1]         emb_features/kernel
    emb_cnn_code.{weight,bias} [nef, 2048]       emb_cnn_code/{kernel,bias}
  The image encoder is built with --damsm_inception=torchvision (damsm_networks: the official
  network; the Keras InceptionV3 has no BN scale and other border averages).

  *_AttnGAN2.pth (G_NET; saved after load_params(avg_param_G): the averaged weights)
    ca_net.fc.{weight,bias}                      ca_net/fc/{kernel,bias}
    h_net1.fc.0.weight, h_net1.fc.1.*            init_fc/kernel, init_bn/* (outputs reordered
                                                 from (GLU half, C, 4, 4) to (half, 4, 4, C))
    h_net1.upsample<i>.{1,2}.*                   init_up_<i-1>/{conv,bn}
    h_net<k+1>.att.conv_context.weight           att_<k>/word_projection/kernel
    h_net<k+1>.residual.<r>.block.{0,1,3,4}.*    res_<k>_<r>/{conv1,bn1,conv2,bn2}
    h_net<k+1>.upsample.{1,2}.*                  up_<k>/{conv,bn}
    img_net<k+1>.img.0.weight                    img_<k>/kernel
  They fill G and its EMA shadow; the discriminators are not released (left at this project's
  initialisation and listed in imported.json).

The DAMSM alone (text + image encoder + captions.pickle, no generator) is written as a DAMSM
directory (damsm.py's layout, what --damsm_dir and --r_precision_damsm_dir read) at --damsm_dir,
default <model_dir>/damsm; no run is written then.
"""
import os
import re

import numpy as np
import tensorflow as tf

from data import text as text_lib
from estimators import run_dir
from estimators.importers import layouts, restricted_pickle, torch_files
from estimators.model_registry import ImportResult, ReleasedWeights, WeightsImportError
from estimators.models import damsm, damsm_networks
from tfgan_attention import damsm as damsm_ops

TEXT, IMAGE, GENERATOR, VOCABULARY = ("text_encoder", "image_encoder", "generator",
                                      "captions.pickle")
EXPECTED = ("AttnGAN's released files: DAMSMencoders/<bird|coco>/text_encoder<N>.pth and "
            "image_encoder<N>.pth, models/<bird|coco>_AttnGAN2.pth, and the dataset's "
            "captions.pickle (its vocabulary)")
INCEPTION_WIDTH = 32  # torchvision Conv2d_1a_3x3's channels (a smaller file: tests' divisor)


# --- reading the files -----------------------------------------------------------------------

def _kind_of_state(state):
  if "encoder.weight" in state and "rnn.weight_ih_l0" in state:
    return TEXT
  if "emb_features.weight" in state and "Conv2d_1a_3x3.conv.weight" in state:
    return IMAGE
  if "ca_net.fc.weight" in state and "h_net1.fc.0.weight" in state:
    return GENERATOR
  return None


def read_vocabulary(path):
  """captions.pickle -> data.text.Vocabulary with word i = ixtoword[i] (the ids of the text
  encoder's embedding rows); the file's wordtoix must be its inverse."""
  try:
    obj = restricted_pickle.load(path)
  except restricted_pickle.UnsafePickleError as e:
    raise WeightsImportError(f"{path}: not AttnGAN's captions.pickle ({e})") from None
  if not (isinstance(obj, list) and len(obj) == 4 and isinstance(obj[2], dict)
          and isinstance(obj[3], dict)):
    raise WeightsImportError(
        f"{path}: not AttnGAN's captions.pickle (expected the list [train_captions, "
        "test_captions, ixtoword, wordtoix] that code/datasets.py writes)")
  ixtoword, wordtoix = obj[2], obj[3]
  n = len(ixtoword)
  if sorted(ixtoword) != list(range(n)):
    raise WeightsImportError(f"{path}: ixtoword's ids are not 0..{n - 1}")
  words = [ixtoword[i] for i in range(n)]
  if words[0] != text_lib.END_TOKEN or any(wordtoix.get(w) != i for i, w in enumerate(words)) \
      or len(wordtoix) != n:
    raise WeightsImportError(f"{path}: ixtoword and wordtoix disagree (or id 0 is not "
                             f"{text_lib.END_TOKEN!r}): not a vocabulary AttnGAN wrote")
  return text_lib.Vocabulary(words)


def read_files(paths):
  """{kind: (path, state_dict or Vocabulary)} of --import_from's files, each kind at most once."""
  found = {}
  for path in paths:
    if os.path.isdir(path):
      raise WeightsImportError(f"{path} is a directory; give the files: {EXPECTED}")
    if not os.path.isfile(path):  # e.g. a TF checkpoint prefix (another model's release)
      raise WeightsImportError(f"{path}: no such file; expected {EXPECTED}")
    with open(path, "rb") as f:
      head = f.read(4)
    if os.path.basename(path).endswith(".pickle") or not (
        head.startswith(b"PK") or head == b"\x80\x02\x8a\x0a"):
      if not os.path.basename(path).endswith(".pickle"):
        raise WeightsImportError(f"{path}: neither a torch .pth nor a .pickle; expected "
                                 f"{EXPECTED}")
      kind, content = VOCABULARY, read_vocabulary(path)
    else:
      try:
        content = torch_files.load_state_dict(path)
      except restricted_pickle.UnsafePickleError as e:
        raise WeightsImportError(f"{path}: {e}") from None
      kind = _kind_of_state(content)
      if kind is None:
        raise WeightsImportError(
            f"{path}: a state_dict of another model (keys e.g. {sorted(content)[:4]}); "
            f"expected {EXPECTED}")
    if kind in found:
      raise WeightsImportError(f"two {kind} files: {found[kind][0]} and {path}")
    found[kind] = (path, content)
  return found


def _epoch_of(path):
  m = re.search(r"(\d+)\.pth$", os.path.basename(path))
  return int(m[1]) if m else 0


# --- the DAMSM -------------------------------------------------------------------------------

def damsm_config(text_state, image_state, vocab, words_num):
  """damsm_config.json (damsm.config_dict's keys) of the released encoders."""
  vocab_size, word_dim = text_state["encoder.weight"].shape
  hidden = text_state["rnn.weight_hh_l0"].shape[1]
  if len(vocab) != vocab_size:
    raise WeightsImportError(
        f"captions.pickle has {len(vocab)} words, the text encoder's embedding table "
        f"encoder.weight has {vocab_size} rows: the vocabulary is not the one the encoder was "
        "trained with; give the captions.pickle of the same dataset (birds: CUB metadata, "
        "coco: COCO metadata)")
  nef = image_state["emb_features.weight"].shape[0]
  if nef != 2 * hidden:
    raise WeightsImportError(
        f"image encoder emb_features.weight has {nef} outputs, the text encoder 2 x "
        f"{hidden} (rnn.weight_hh_l0 {tuple(text_state['rnn.weight_hh_l0'].shape)}): the two "
        "encoders are not one DAMSM")
  width = image_state["Conv2d_1a_3x3.conv.weight"].shape[0]
  if INCEPTION_WIDTH % width:
    raise WeightsImportError(f"Conv2d_1a_3x3.conv.weight has {width} outputs; torchvision's "
                             f"Inception-v3 has {INCEPTION_WIDTH}")
  variant = damsm_ops.VARIANTS["official"]
  return {
      "image_encoder": "inception_v3", "inception": "torchvision",
      "inception_width_divisor": INCEPTION_WIDTH // width,
      "embedding_dim": int(2 * hidden), "word_dim": int(word_dim), "words_num": int(words_num),
      "image_size": damsm_networks.INCEPTION_SIZE, "cnn_width": 0,
      "inception_weights_path": None,
      "image_weights_source": "inception_v3 (torchvision): imported from the authors' "
                              "image encoder",
      "inception_bn_in_pretraining": "batch_statistics",
      "vocab_size": int(vocab_size), "vocab_sha256": damsm.vocabulary_sha256(vocab),
      "dataset": None,
      "loss": {"name": variant.name, "gamma1": variant.gamma1, "gamma2": variant.gamma2,
               "gamma3": variant.gamma3, "inverse_gamma2": variant.inverse_gamma2,
               "reduction": variant.reduction},
      "class_masks": None,  # the files do not say (the official CUB pretraining masks)
  }


class _Filler:
  """Assigns numpy values to variables, remembering the source of each; every variable of the
  networks must be filled and every source key used (else a WeightsImportError lists them)."""

  def __init__(self, where):
    self.where, self.sources, self.shapes, self.missing = where, {}, [], []

  def take(self, var, value, source, file_shape=None):
    """var <- value (already in Keras' layout); file_shape: the key's shape in the file."""
    value = np.asarray(value, np.float32)
    if tuple(value.shape) != tuple(var.shape):
      file_shape = tuple(value.shape) if file_shape is None else tuple(file_shape)
      self.shapes.append(f"{source}: {file_shape} in the file, {tuple(var.shape)} in the "
                         f"network ({var.name}; {tuple(value.shape)} after conversion)")
      return
    var.assign(value)
    self.sources[var.name.split(":")[0]] = source

  def check(self, variables, state_keys, used):
    unfilled = [v.name for v in variables if v.name.split(":")[0] not in self.sources]
    unused = sorted(set(state_keys) - set(used))
    problems = list(filter(None, [
        f"missing {len(self.missing)} keys: {', '.join(self.missing)}" if self.missing else "",
        f"shapes differ: {'; '.join(self.shapes)}" if self.shapes else "",
        f"variables not filled: {', '.join(unfilled)}" if unfilled and not self.missing else "",
        f"keys the network does not have: {', '.join(unused)}" if unused else ""]))
    if problems:
      raise WeightsImportError(f"{self.where}: " + "; ".join(problems))


def fill_text_encoder(encoder, state, path):
  """TextEncoder <- RNN_ENCODER state_dict (legacy or zip). Returns {variable: source key}."""
  filler = _Filler(path)
  keys = ["encoder.weight"] + [f"rnn.{p}_l0{s}" for s in ("", "_reverse")
                               for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
  filler.missing = [k for k in keys if k not in state]
  if not filler.missing:
    filler.take(encoder.embedding.embeddings, layouts.embedding(state["encoder.weight"]),
                f"{path}:encoder.weight")
    arrays = layouts.bidirectional_lstm(state, prefix="rnn.")
    for i, (layer, suffix) in enumerate(((encoder.rnn.forward_layer, ""),
                                         (encoder.rnn.backward_layer, "_reverse"))):
      cell = layer.cell
      for var, value, names in ((cell.kernel, arrays[3 * i], "weight_ih"),
                                (cell.recurrent_kernel, arrays[3 * i + 1], "weight_hh"),
                                (cell.bias, arrays[3 * i + 2], "bias_ih + bias_hh")):
        source = " + ".join(f"rnn.{n}_l0{suffix}" for n in names.split(" + "))
        filler.take(var, value, f"{path}:{source}")
  filler.check(encoder.weights, state, keys)
  return filler.sources


def fill_image_encoder(encoder, state, path):
  """InceptionImageEncoder(inception='torchvision') <- CNN_ENCODER state_dict."""
  filler, used = _Filler(path), []

  def get(key):
    used.append(key)
    if key not in state:
      filler.missing.append(key)
      return None
    return state[key]

  for layer in encoder.inception.layers:
    if isinstance(layer, tf.keras.layers.Conv2D):
      w = get(f"{layer.name}.weight")
      if w is not None:
        filler.take(layer.kernel, layouts.conv_kernel(w), f"{path}:{layer.name}.weight",
                    np.shape(w))
    elif isinstance(layer, tf.keras.layers.BatchNormalization):
      for var, suffix in ((layer.gamma, "weight"), (layer.beta, "bias"),
                          (layer.moving_mean, "running_mean"),
                          (layer.moving_variance, "running_var")):
        value = get(f"{layer.name}.{suffix}")
        if value is not None:
          filler.take(var, value, f"{path}:{layer.name}.{suffix}")
      used.append(f"{layer.name}.num_batches_tracked")  # torch >= 0.4.1 only: a counter
  w = get("emb_features.weight")
  if w is not None:
    filler.take(encoder.local_projection.kernel, layouts.conv_kernel(w),
                f"{path}:emb_features.weight")
  w, b = get("emb_cnn_code.weight"), get("emb_cnn_code.bias")
  if w is not None:
    filler.take(encoder.global_projection.kernel, layouts.dense_kernel(w),
                f"{path}:emb_cnn_code.weight")
  if b is not None:
    filler.take(encoder.global_projection.bias, b, f"{path}:emb_cnn_code.bias")
  filler.check(encoder.weights, state, used)
  return filler.sources


def write_damsm_dir(damsm_dir, files, words_num):
  """Writes the DAMSM of files[TEXT], files[IMAGE], files[VOCABULARY] (read_files) to
  damsm_dir in damsm.py's layout. Returns (checkpoint prefix, {checkpoint key: source})."""
  for kind in (TEXT, IMAGE, VOCABULARY):
    if kind not in files:
      raise WeightsImportError(f"a DAMSM import needs the {kind} file too (text_encoder*.pth, "
                               "image_encoder*.pth and the dataset's captions.pickle)")
  if os.path.exists(os.path.join(damsm_dir, damsm.CONFIG_FILE)):
    raise WeightsImportError(f"{damsm_dir} already holds a DAMSM ({damsm.CONFIG_FILE}): give "
                             "another --damsm_dir")
  (text_path, text_state), (image_path, image_state) = files[TEXT], files[IMAGE]
  vocab = files[VOCABULARY][1]
  config = damsm_config(text_state, image_state, vocab, words_num)
  config["imported_from"] = [os.path.abspath(p) for p in (text_path, image_path,
                                                            files[VOCABULARY][0])]
  text_encoder, image_encoder = damsm.build_encoders(config)
  sources = fill_text_encoder(text_encoder, text_state, text_path)
  sources.update(fill_image_encoder(image_encoder, image_state, image_path))
  flat = damsm.flat_variables(text_encoder, image_encoder)
  config["variables"] = damsm.variable_table(flat)
  os.makedirs(damsm_dir, exist_ok=True)
  vocab.save(os.path.join(damsm_dir, damsm.VOCAB_FILE))
  run_dir.atomic_write_json(os.path.join(damsm_dir, damsm.CONFIG_FILE), config)
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(**flat), damsm_dir, max_to_keep=1,
                                       checkpoint_name=damsm.CHECKPOINT_PREFIX)
  prefix = manager.save(checkpoint_number=_epoch_of(text_path))
  return prefix, {key: sources[v.name.split(":")[0]] for key, v in flat.items()}


# --- the generator ---------------------------------------------------------------------------

def generator_flags(state, path):
  """The AttnGAN flags a G_NET state_dict fixes (code/model.py G_NET, INIT_STAGE_G, ...)."""
  missing = [k for k in ("ca_net.fc.weight", "h_net1.fc.0.weight", "img_net1.img.0.weight")
             if k not in state]
  if missing:
    raise WeightsImportError(f"{path}: not a G_NET state_dict (missing {', '.join(missing)})")
  branch_num = 1 + sum(f"img_net{k}.img.0.weight" in state for k in (2, 3))
  ups = sum(f"h_net1.upsample{i}.1.weight" in state for i in range(1, 6))
  r_num = len({m[1] for k in state for m in [re.match(r"h_net2\.residual\.(\d+)\.", k)] if m})
  ngf = int(state["img_net1.img.0.weight"].shape[1])
  condition_dim = int(state["ca_net.fc.weight"].shape[0]) // 4
  z_dim = int(state["h_net1.fc.0.weight"].shape[1]) - condition_dim
  flags = {"gf_dim": ngf, "branch_num": branch_num, "condition_dim": condition_dim,
           "z_dim": z_dim, "image_size": 4 * 2 ** ups * 2 ** (branch_num - 1)}
  if branch_num > 1:
    flags["r_num"] = r_num
  return flags, int(state["ca_net.fc.weight"].shape[1])


def _generator_key(below):
  """(official key, conversion) of a project generator variable below 'generator/' (not the
  text encoder's), or None. conversion: 'conv', 'dense', 'nchw_dense', 'nchw', 'words', None."""
  bn = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
        "moving_variance": "running_var"}
  rules = [
      (r"ca_net/fc/kernel", lambda m: ("ca_net.fc.weight", "dense")),
      (r"ca_net/fc/bias", lambda m: ("ca_net.fc.bias", None)),
      (r"init_fc/kernel", lambda m: ("h_net1.fc.0.weight", "nchw_dense")),
      (r"init_bn/(\w+)", lambda m: (f"h_net1.fc.1.{bn[m[1]]}", "nchw")),
      (r"init_up_(\d+)/conv/kernel", lambda m: (f"h_net1.upsample{int(m[1]) + 1}.1.weight", "conv")),
      (r"init_up_(\d+)/bn/(\w+)", lambda m: (f"h_net1.upsample{int(m[1]) + 1}.2.{bn[m[2]]}", None)),
      (r"att_(\d+)/word_projection/kernel",
       lambda m: (f"h_net{int(m[1]) + 1}.att.conv_context.weight", "words")),
      (r"res_(\d+)_(\d+)/conv([12])/kernel",
       lambda m: (f"h_net{int(m[1]) + 1}.residual.{m[2]}.block.{0 if m[3] == '1' else 3}.weight",
                  "conv")),
      (r"res_(\d+)_(\d+)/bn([12])/(\w+)",
       lambda m: (f"h_net{int(m[1]) + 1}.residual.{m[2]}.block.{1 if m[3] == '1' else 4}."
                  f"{bn[m[4]]}", None)),
      (r"up_(\d+)/conv/kernel", lambda m: (f"h_net{int(m[1]) + 1}.upsample.1.weight", "conv")),
      (r"up_(\d+)/bn/(\w+)", lambda m: (f"h_net{int(m[1]) + 1}.upsample.2.{bn[m[2]]}", None)),
      (r"img_(\d+)/kernel", lambda m: (f"img_net{int(m[1]) + 1}.img.0.weight", "conv"))]
  for pattern, key in rules:
    m = re.fullmatch(pattern, below)
    if m:
      return key(m)
  return None


def _convert(value, conversion, init_width):
  if conversion == "conv":
    return layouts.conv_kernel(value)
  if conversion == "dense":
    return layouts.dense_kernel(value)
  if conversion == "nchw_dense":  # Linear -> BN1d -> GLU -> view(-1, init_width, 4, 4)
    return layouts.dense_kernel_nchw_outputs(value, init_width, 4, 4, groups=2)
  if conversion == "nchw":
    return layouts.vector_nchw_outputs(value, init_width, 4, 4, groups=2)
  if conversion == "words":  # conv1x1 [idf, cdf, 1, 1] on words -> Dense [cdf, idf]
    return layouts.dense_kernel(np.asarray(value)[:, :, 0, 0])
  return value


def fill_generator(generator, g_state, g_path, text_state, text_path):
  """The project's Generator <- G_NET state_dict (+ its DAMSM text encoder's state_dict).
  Returns {variable name: source}."""
  sources = fill_text_encoder(generator.text_encoder, text_state, text_path)
  text_vars = {id(v) for v in generator.text_encoder.weights}
  filler, used = _Filler(g_path), []
  prefix = generator.name + "/"
  for var in generator.weights:
    if id(var) in text_vars:
      continue
    name = var.name.split(":")[0]
    below = name[len(prefix):] if name.startswith(prefix) else name
    found = _generator_key(below)
    if found is None:
      raise WeightsImportError(f"{name}: no official G_NET counterpart")
    key, conversion = found
    used.append(key)
    if key not in g_state:
      filler.missing.append(key)
      continue
    try:
      value = _convert(g_state[key], conversion, generator.init_width)
    except layouts.LayoutError as e:
      filler.shapes.append(f"{key}: {e}")
      continue
    filler.take(var, value, f"{g_path}:{key}", np.shape(g_state[key]))
  used += [k for k in g_state if k.endswith(".num_batches_tracked")]
  filler.check([v for v in generator.weights if id(v) not in text_vars], g_state, used)
  return {**sources, **filler.sources}


# --- the registry's hooks (AttnGAN.read_release / import_weights) ----------------------------

def read_release(paths):
  """ReleasedWeights of AttnGAN's files: the flags they fix, their facts, the read tensors."""
  files = read_files(paths)
  kinds = set(files)
  if VOCABULARY not in kinds and kinds & {TEXT, GENERATOR}:
    what = "an AttnGAN generator" if GENERATOR in kinds else "a DAMSM text encoder"
    raise WeightsImportError(
        f"{what} without its vocabulary: the token ids its embedding rows (and the generator's "
        "captions) index are those of the dataset's captions.pickle (AttnGAN's metadata, "
        "e.g. data/birds/captions.pickle); add it to --import_from")
  if kinds == {VOCABULARY}:
    raise WeightsImportError(f"captions.pickle alone holds no weights; expected {EXPECTED}")
  missing = sorted({TEXT, IMAGE} - kinds)
  if missing:
    what = "an AttnGAN generator needs its DAMSM" if GENERATOR in kinds else \
        "a DAMSM import needs both encoders"
    raise WeightsImportError(f"{what}: no {' and '.join(missing)} file in --import_from "
                             f"(expected {EXPECTED})")
  text_state, image_state = files[TEXT][1], files[IMAGE][1]
  flags = {"damsm_word_dim": int(text_state["encoder.weight"].shape[1]),
           "damsm_embedding_dim": int(2 * text_state["rnn.weight_hh_l0"].shape[1]),
           "damsm_image_encoder": "inception_v3", "damsm_inception": "torchvision"}
  release = {"kinds": sorted(kinds), "vocabulary_words": len(files[VOCABULARY][1]),
             "damsm_epoch": _epoch_of(files[TEXT][0])}
  if GENERATOR in kinds:
    g_flags, nef = generator_flags(files[GENERATOR][1], files[GENERATOR][0])
    if nef != flags["damsm_embedding_dim"]:
      raise WeightsImportError(
          f"{files[GENERATOR][0]}: ca_net.fc.weight reads {nef}-d sentences, the text encoder "
          f"{files[TEXT][0]} makes {flags['damsm_embedding_dim']}-d ones: not one release")
    flags.update(g_flags)
    release["generator"] = ("G_NET state_dict saved by trainer.save_model after "
                            "load_params(avg_param_G): the 0.999 moving-average weights; its BN "
                            "statistics are the training G's (buffers are not averaged)")
  else:
    release["writes"] = ("a DAMSM directory (--damsm_dir, default <model_dir>/damsm): the files "
                         "hold no generator")
  return ReleasedWeights(flags=flags, files=tuple(p for p, _ in files.values()),
                         release=release, source=files)


NOT_RELEASED_D = "the authors released no discriminator (netD*.pth)"
_LEFT_OUT = {
    "captions.pickle train_captions, test_captions": "the dataset's captions as token ids; only "
    "the vocabulary (ixtoword / wordtoix) is imported (vocab.txt)",
    "damsm_config.json class_masks, dataset": "the files do not say (the official CUB "
    "pretraining masked same-class negatives, COCO's did not)"}


def import_weights(cfg, release, build_networks):
  """The DAMSM files alone: the DAMSM directory (ImportResult.directory), no run. With a
  generator: the DAMSM directory, <model_dir>/vocab.txt and the run's checkpoint.
  build_networks: () -> {'generator', 'discriminator'} built for cfg (after the DAMSM exists)."""
  files = release.source
  out = damsm.damsm_dir_of(cfg)
  _, damsm_sources = write_damsm_dir(out, files, cfg.hparams.damsm_words_num)
  if GENERATOR not in files:
    return ImportResult(variables={}, sources=damsm_sources, left_out=dict(_LEFT_OUT),
                        step=_epoch_of(files[TEXT][0]), directory=out)
  os.makedirs(cfg.model_dir, exist_ok=True)
  files[VOCABULARY][1].save(os.path.join(cfg.model_dir, "vocab.txt"))
  networks = build_networks()
  generator = networks["generator"]
  g_path = files[GENERATOR][0]
  text_path, text_state = files[TEXT]
  sources = fill_generator(generator, files[GENERATOR][1], g_path, text_state, text_path)
  variables, record = {}, {}
  for var in generator.weights:
    name = var.name.split(":")[0]
    variables[f"Generator/{name}"] = var.numpy()
    record[f"Generator/{name}"] = sources[name]
    if var.trainable and cfg.ema_decay:  # the released weights ARE the moving average
      variables[f"Generator/{name}/ExponentialMovingAverage"] = var.numpy()
      record[f"Generator/{name}/ExponentialMovingAverage"] = sources[name]
  left_out = dict(_LEFT_OUT)
  left_out["discriminators (netD*.pth)"] = (
      "not released by the authors: the checkpoint holds no Discriminator/ variable; "
      "evaluation, sampling and export never read them, and training on from this run "
      "initialises D_NET64/128/256 fresh (and says so)")
  left_out["generator EMA"] = (
      "the release holds one set of G weights, the moving average (trainer.save_model loads "
      "avg_param_G before saving): they fill both G and its ExponentialMovingAverage shadow")
  return ImportResult(variables=variables, sources=record, left_out=left_out, step=0,
                      not_released={"Discriminator/": NOT_RELEASED_D})
