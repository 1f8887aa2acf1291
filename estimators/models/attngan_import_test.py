"""AttnGAN's released .pth files and captions.pickle -> a DAMSM directory / run, in process.

The files are written here in the official format (torch 0.3 / Python 2 legacy serialization,
CUDA storages, no num_batches_tracked) from the official key names and shapes: code/model.py
(taoxugit/AttnGAN 0d000e6: RNN_ENCODER, CNN_ENCODER) and torchvision/models/inception.py
(BasicConv2d, InceptionA..E), written out below by hand, independently of attngan_import, at
tiny widths, every tensor with its own random values so that a wrong pairing shows.
"""
import collections
import io
import os

import numpy as np
import pytest
import tensorflow as tf

from estimators.importers import torch_file_writer as w
from estimators.model_registry import WeightsImportError
from estimators.models import attngan_import, damsm

WORDS = ["<end>", "a", "bird", "with", "red", "wings", "small"]
HIDDEN, WORD_DIM, DIVISOR = 4, 6, 16  # nef = 2 * HIDDEN = 8; Inception widths / 16


def _inception_modules(d):
  """[(module, in, out, kh, kw)] of torchvision's Inception-v3 Conv2d_1a_3x3 .. Mixed_7c,
  channels divided by d (torchvision/models/inception.py)."""
  rows = [("Conv2d_1a_3x3", 3, 32, 3, 3), ("Conv2d_2a_3x3", 32, 32, 3, 3),
          ("Conv2d_2b_3x3", 32, 64, 3, 3), ("Conv2d_3b_1x1", 64, 80, 1, 1),
          ("Conv2d_4a_3x3", 80, 192, 3, 3)]
  rows = [(n, i if i == 3 else i // d, o // d, kh, kw) for n, i, o, kh, kw in rows]

  def add(block, spec):
    rows.extend((f"{block}.{n}", i, o, kh, kw) for n, i, o, kh, kw in spec)

  c = 192 // d
  for block, pool in (("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)):
    add(block, [("branch1x1", c, 64 // d, 1, 1), ("branch5x5_1", c, 48 // d, 1, 1),
                ("branch5x5_2", 48 // d, 64 // d, 5, 5), ("branch3x3dbl_1", c, 64 // d, 1, 1),
                ("branch3x3dbl_2", 64 // d, 96 // d, 3, 3),
                ("branch3x3dbl_3", 96 // d, 96 // d, 3, 3), ("branch_pool", c, pool // d, 1, 1)])
    c = (64 + 64 + 96 + pool) // d
  add("Mixed_6a", [("branch3x3", c, 384 // d, 3, 3), ("branch3x3dbl_1", c, 64 // d, 1, 1),
                   ("branch3x3dbl_2", 64 // d, 96 // d, 3, 3),
                   ("branch3x3dbl_3", 96 // d, 96 // d, 3, 3)])
  c = c + (384 + 96) // d
  for block, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
    k = c7 // d
    add(block, [("branch1x1", c, 192 // d, 1, 1), ("branch7x7_1", c, k, 1, 1),
                ("branch7x7_2", k, k, 1, 7), ("branch7x7_3", k, 192 // d, 7, 1),
                ("branch7x7dbl_1", c, k, 1, 1), ("branch7x7dbl_2", k, k, 7, 1),
                ("branch7x7dbl_3", k, k, 1, 7), ("branch7x7dbl_4", k, k, 7, 1),
                ("branch7x7dbl_5", k, 192 // d, 1, 7), ("branch_pool", c, 192 // d, 1, 1)])
    c = 768 // d
  add("Mixed_7a", [("branch3x3_1", c, 192 // d, 1, 1), ("branch3x3_2", 192 // d, 320 // d, 3, 3),
                   ("branch7x7x3_1", c, 192 // d, 1, 1),
                   ("branch7x7x3_2", 192 // d, 192 // d, 1, 7),
                   ("branch7x7x3_3", 192 // d, 192 // d, 7, 1),
                   ("branch7x7x3_4", 192 // d, 192 // d, 3, 3)])
  c = 1280 // d
  for block in ("Mixed_7b", "Mixed_7c"):
    add(block, [("branch1x1", c, 320 // d, 1, 1), ("branch3x3_1", c, 384 // d, 1, 1),
                ("branch3x3_2a", 384 // d, 384 // d, 1, 3),
                ("branch3x3_2b", 384 // d, 384 // d, 3, 1),
                ("branch3x3dbl_1", c, 448 // d, 1, 1),
                ("branch3x3dbl_2", 448 // d, 384 // d, 3, 3),
                ("branch3x3dbl_3a", 384 // d, 384 // d, 1, 3),
                ("branch3x3dbl_3b", 384 // d, 384 // d, 3, 1), ("branch_pool", c, 192 // d, 1, 1)])
    c = 2048 // d
  return rows


def _text_state(rng, vocab_size=len(WORDS)):
  """RNN_ENCODER(ntoken, ninput=WORD_DIM, nhidden=2 * HIDDEN) state_dict: nn.Embedding
  `encoder`, nn.LSTM `rnn` (1 layer, bidirectional, batch_first)."""
  state = collections.OrderedDict([("encoder.weight", rng.uniform(-1, 1, (vocab_size, WORD_DIM)))])
  for suffix in ("", "_reverse"):
    state[f"rnn.weight_ih_l0{suffix}"] = rng.uniform(-1, 1, (4 * HIDDEN, WORD_DIM))
    state[f"rnn.weight_hh_l0{suffix}"] = rng.uniform(-1, 1, (4 * HIDDEN, HIDDEN))
    state[f"rnn.bias_ih_l0{suffix}"] = rng.uniform(-1, 1, 4 * HIDDEN)
    state[f"rnn.bias_hh_l0{suffix}"] = rng.uniform(-1, 1, 4 * HIDDEN)
  return collections.OrderedDict((k, v.astype(np.float32)) for k, v in state.items())


def _image_state(rng):
  """CNN_ENCODER(nef=2 * HIDDEN) state_dict: BasicConv2d conv + bn of every Inception module,
  emb_features (conv1x1, no bias), emb_cnn_code (Linear)."""
  state = collections.OrderedDict()
  for name, cin, cout, kh, kw in _inception_modules(DIVISOR):
    state[f"{name}.conv.weight"] = rng.normal(0, 0.3, (cout, cin, kh, kw))
    state[f"{name}.bn.weight"] = rng.uniform(0.5, 1.5, cout)
    state[f"{name}.bn.bias"] = rng.normal(0, 0.1, cout)
    state[f"{name}.bn.running_mean"] = rng.normal(0, 0.1, cout)
    state[f"{name}.bn.running_var"] = rng.uniform(0.5, 2.0, cout)
  state["emb_features.weight"] = rng.uniform(-0.1, 0.1, (2 * HIDDEN, 768 // DIVISOR, 1, 1))
  state["emb_cnn_code.weight"] = rng.uniform(-0.1, 0.1, (2 * HIDDEN, 2048 // DIVISOR))
  state["emb_cnn_code.bias"] = rng.uniform(-0.1, 0.1, 2 * HIDDEN)
  return collections.OrderedDict((k, v.astype(np.float32)) for k, v in state.items())


def _write_pth(path, state):
  """torch.save(state_dict) as torch 0.3.1 on Python 2.7 wrote it, from a GPU model."""
  tensors = collections.OrderedDict(
      (k, w.contiguous_tensor(v, key=str(94000000 + 16 * i), module="torch.cuda",
                              location="cuda:0")) for i, (k, v) in enumerate(state.items()))
  w.write_legacy(path, tensors)
  return path


def _write_captions(path, words=WORDS):
  """captions.pickle: [train_captions, test_captions, ixtoword, wordtoix], pickle protocol 2 of
  Python 2 (code/datasets.py load_text_data)."""
  ixtoword = {i: word for i, word in enumerate(words)}
  wordtoix = {word: i for i, word in enumerate(words)}
  buf = io.BytesIO()
  w._Writer(buf, legacy=True, python2_text=True).dump(  # pylint: disable=protected-access
      [[[1, 2, 3]], [[2, 4]], ixtoword, wordtoix])
  with open(path, "wb") as f:
    f.write(buf.getvalue())
  return path


@pytest.fixture(name="release", scope="module")
def _release(tmp_path_factory):
  tmp_path = tmp_path_factory.mktemp("release")
  rng = np.random.default_rng(0)
  text, image = _text_state(rng), _image_state(rng)
  paths = [_write_pth(str(tmp_path / "text_encoder200.pth"), text),
           _write_pth(str(tmp_path / "image_encoder200.pth"), image),
           _write_captions(str(tmp_path / "captions.pickle"))]
  return paths, text, image


@pytest.fixture(name="imported", scope="module")
def _imported(release, tmp_path_factory):
  """The release written as a DAMSM directory and read back as --damsm_dir reads it."""
  out = str(tmp_path_factory.mktemp("imported") / "damsm")
  prefix, sources = attngan_import.write_damsm_dir(out, attngan_import.read_files(release[0]),
                                                   words_num=18)
  return prefix, sources, damsm.load_damsm(out)


def test_damsm_import_fills_every_variable_from_its_key(release, imported):
  _, text, image = release
  prefix, sources, loaded = imported
  assert os.path.basename(prefix) == "ckpt-200"
  assert loaded.vocab.words == WORDS and loaded.config["inception"] == "torchvision"
  flat = damsm.flat_variables(loaded.text_encoder, loaded.image_encoder)
  assert len(flat) == len(sources) == 1 + 6 + 94 * 5 + 3

  want = {}  # variable name -> its value from the file, converted here with plain numpy
  te, ie = loaded.text_encoder, loaded.image_encoder
  want[te.embedding.embeddings.name] = text["encoder.weight"]
  for layer, s in ((te.rnn.forward_layer, ""), (te.rnn.backward_layer, "_reverse")):
    want[layer.cell.kernel.name] = text[f"rnn.weight_ih_l0{s}"].T
    want[layer.cell.recurrent_kernel.name] = text[f"rnn.weight_hh_l0{s}"].T
    want[layer.cell.bias.name] = text[f"rnn.bias_ih_l0{s}"] + text[f"rnn.bias_hh_l0{s}"]
  for name, *_ in _inception_modules(DIVISOR):
    conv = ie.inception.get_layer(f"{name}.conv")
    bn = ie.inception.get_layer(f"{name}.bn")
    want[conv.kernel.name] = np.transpose(image[f"{name}.conv.weight"], (2, 3, 1, 0))
    want[bn.gamma.name] = image[f"{name}.bn.weight"]
    want[bn.beta.name] = image[f"{name}.bn.bias"]
    want[bn.moving_mean.name] = image[f"{name}.bn.running_mean"]
    want[bn.moving_variance.name] = image[f"{name}.bn.running_var"]
  want[ie.local_projection.kernel.name] = image["emb_features.weight"][:, :, 0, 0].T[None, None]
  want[ie.global_projection.kernel.name] = image["emb_cnn_code.weight"].T
  want[ie.global_projection.bias.name] = image["emb_cnn_code.bias"]
  assert sorted(want) == sorted(v.name for v in flat.values())
  for var in flat.values():
    np.testing.assert_array_equal(var.numpy(), want[var.name], err_msg=var.name)


def _torch_lstm(x, w_ih, w_hh, b_ih, b_hh):
  """numpy torch.nn.LSTM, one direction, zero initial state: gates i, f, g, o;
  c' = f c + i g, h' = o tanh(c'). x [T, in] -> outputs [T, u]."""
  sig = lambda v: 1 / (1 + np.exp(-v))
  u = w_hh.shape[1]
  h, c, out = np.zeros(u), np.zeros(u), []
  for x_t in x:
    z = w_ih @ x_t + b_ih + w_hh @ h + b_hh
    i, f, g, o = sig(z[:u]), sig(z[u:2 * u]), np.tanh(z[2 * u:3 * u]), sig(z[3 * u:])
    c = f * c + i * g
    h = o * np.tanh(c)
    out.append(h)
  return np.array(out)


def test_imported_text_encoder_equals_pytorchs_packed_bilstm(release, imported):
  text, loaded = release[1], imported[2]
  ids = np.array([[1, 2, 3, 4, 5], [6, 2, 0, 0, 0]])
  lengths = np.array([5, 2])
  words, sentence = (t.numpy() for t in loaded.encode_text(ids, lengths))  # [B, D, T], [B, D]
  for b, n in enumerate(lengths):  # RNN_ENCODER.forward: pack_padded_sequence, eval (no dropout)
    emb = text["encoder.weight"][ids[b, :n]].astype(np.float64)
    fwd = _torch_lstm(emb, *(text[f"rnn.{p}_l0"] for p in ("weight_ih", "weight_hh", "bias_ih",
                                                              "bias_hh")))
    bwd = _torch_lstm(emb[::-1], *(text[f"rnn.{p}_l0_reverse"] for p in (
        "weight_ih", "weight_hh", "bias_ih", "bias_hh")))[::-1]
    np.testing.assert_allclose(words[b, :, :n].T, np.concatenate([fwd, bwd], 1), atol=1e-5)
    assert np.all(words[b, :, n:] == 0)
    # sent_emb = hidden[0] (layers*directions, B, u) -> [B, 2u]: last forward, first backward
    np.testing.assert_allclose(sentence[b], np.concatenate([fwd[-1], bwd[0]]), atol=1e-5)


def test_a_vocabulary_that_does_not_fit_the_embedding_table(release, tmp_path):
  paths, _, _ = release
  other = _write_captions(str(tmp_path / "other_captions.pickle"), WORDS + ["extra"])
  with pytest.raises(WeightsImportError, match=r"8 words.*encoder\.weight has 7 rows"):
    attngan_import.write_damsm_dir(str(tmp_path / "d"),
                                   attngan_import.read_files(paths[:2] + [other]), 18)


def test_missing_keys_are_all_listed_and_shapes_name_key_and_both(release, tmp_path):
  paths, image = release[0], collections.OrderedDict(release[2])
  del image["Mixed_7c.branch_pool.bn.running_var"], image["emb_cnn_code.bias"]
  image["Mixed_5b.branch1x1.conv.weight"] = np.zeros((3, 12, 1, 1), np.float32)
  bad = _write_pth(str(tmp_path / "image_encoder100.pth"), image)
  with pytest.raises(WeightsImportError) as e:
    attngan_import.write_damsm_dir(str(tmp_path / "d"),
                                   attngan_import.read_files([paths[0], bad, paths[2]]), 18)
  message = str(e.value)
  assert "missing 2 keys" in message and "Mixed_7c.branch_pool.bn.running_var" in message
  assert "emb_cnn_code.bias" in message
  assert "Mixed_5b.branch1x1.conv.weight: (3, 12, 1, 1) in the file" in message
  assert "(1, 1, 12, 4) in the network" in message


def test_files_of_another_model_or_format(tmp_path):
  other = _write_pth(str(tmp_path / "netD.pth"),
                     {"img_code_s16.0.weight": np.zeros((2, 3, 4, 4), np.float32)})
  with pytest.raises(WeightsImportError, match="a state_dict of another model"):
    attngan_import.read_files([other])
  text_file = tmp_path / "notes.txt"
  text_file.write_text("hello")
  with pytest.raises(WeightsImportError, match="neither a torch .pth nor a .pickle"):
    attngan_import.read_files([str(text_file)])
  tf.train.Checkpoint(v=tf.Variable(1.0)).write(str(tmp_path / "ckpt-1"))  # a TF prefix
  with pytest.raises(WeightsImportError, match="ckpt-1: no such file"):
    attngan_import.read_files([str(tmp_path / "ckpt-1")])
  with pytest.raises(WeightsImportError, match="not AttnGAN's captions.pickle"):
    w.write_legacy(str(tmp_path / "x.pickle"), {"a": 1})  # a torch file named .pickle
    attngan_import.read_files([str(tmp_path / "x.pickle")])


def test_import_mode_with_the_damsm_files_writes_a_damsm_directory(release, tmp_path, run_flags):
  paths, _, _ = release
  from estimators import weights_import  # pylint: disable=import-outside-toplevel
  model_dir = str(tmp_path / "run")
  cfg = run_flags("--mode=import_weights", "--import_from=" + ",".join(paths),
                  "--dataset=digits_captions", f"--model_dir={model_dir}")
  # the files chose the model and the DAMSM's settings
  assert cfg.model == "attngan" and cfg.hparams.damsm_inception == "torchvision"
  assert (cfg.hparams.damsm_word_dim, cfg.hparams.damsm_embedding_dim) == (WORD_DIM,
                                                                           2 * HIDDEN)
  record = weights_import.write_run(cfg, paths)
  damsm_dir = os.path.join(model_dir, "damsm")
  assert record["directory"] == damsm_dir and record["checkpoint"] == "ckpt-200"
  assert not weights_import.holds_run(model_dir)  # a DAMSM directory, no run
  assert os.path.isfile(os.path.join(damsm_dir, "imported.json"))
  assert len(record["variables"]) == 1 + 6 + 94 * 5 + 3
  assert record["variables"]["text_000"].endswith("text_encoder200.pth:encoder.weight")
  assert damsm.load_damsm(damsm_dir).vocab.words == WORDS  # what --damsm_dir reads
  with pytest.raises(WeightsImportError, match="already holds a DAMSM"):
    weights_import.write_run(cfg, paths)


def test_a_text_encoder_without_its_vocabulary_and_a_half_damsm(release):
  paths, _, _ = release
  with pytest.raises(WeightsImportError, match="without its vocabulary.*captions.pickle"):
    attngan_import.read_release(paths[:2])
  with pytest.raises(WeightsImportError, match="needs both encoders: no image_encoder"):
    attngan_import.read_release([paths[0], paths[2]])


def test_a_flag_that_contradicts_the_files_names_both_values(release, tmp_path):
  paths, _, _ = release
  from estimators import weights_import  # pylint: disable=import-outside-toplevel
  with pytest.raises(WeightsImportError, match="--damsm_inception='keras' given, the files "
                     "have --damsm_inception='torchvision'"):
    weights_import.import_flags(str(tmp_path / "run"), paths, {"damsm_inception": "keras"})


# --- the generator (G_NET) -----------------------------------------------------------------------
NGF, C_DIM, Z_DIM, R_NUM = 2, 3, 5, 2  # G0: 4 x 4 x 16 NGF -> 4 up-blocks -> 64 x 64 x NGF


def _g_state(rng):
  """G_NET state_dict (code/model.py: CA_NET, INIT_STAGE_G(ngf * 16), NEXT_STAGE_G x 2 with
  R_NUM ResBlocks, GET_IMAGE_G x 3), nef = 2 * HIDDEN, no num_batches_tracked (torch 0.3)."""
  nef, g16 = 2 * HIDDEN, 16 * NGF
  state = collections.OrderedDict()

  def bn(prefix, c):
    state[f"{prefix}.weight"] = rng.uniform(0.5, 1.5, c)
    state[f"{prefix}.bias"] = rng.normal(0, 0.2, c)
    state[f"{prefix}.running_mean"] = rng.normal(0, 0.2, c)
    state[f"{prefix}.running_var"] = rng.uniform(0.5, 2.0, c)

  state["ca_net.fc.weight"] = rng.normal(0, 0.5, (4 * C_DIM, nef))
  state["ca_net.fc.bias"] = rng.normal(0, 0.5, 4 * C_DIM)
  state["h_net1.fc.0.weight"] = rng.normal(0, 0.5, (g16 * 4 * 4 * 2, C_DIM + Z_DIM))
  bn("h_net1.fc.1", g16 * 4 * 4 * 2)
  for i in range(1, 5):  # upBlock(in, out): 0 Upsample, 1 conv3x3(in, 2 out), 2 BN, 3 GLU
    cin, cout = g16 // 2 ** (i - 1), g16 // 2 ** i
    state[f"h_net1.upsample{i}.1.weight"] = rng.normal(0, 1 / 3 / cin ** 0.5,
                                                       (2 * cout, cin, 3, 3))
    bn(f"h_net1.upsample{i}.2", 2 * cout)
  for k in (2, 3):
    state[f"h_net{k}.att.conv_context.weight"] = rng.normal(0, 0.5, (NGF, nef, 1, 1))
    std = 1 / 3 / (2 * NGF) ** 0.5  # keeps the stages' images away from tanh's +-1
    for r in range(R_NUM):  # ResBlock(2 ngf): conv, BN, GLU, conv, BN
      p = f"h_net{k}.residual.{r}.block"
      state[f"{p}.0.weight"] = rng.normal(0, std, (4 * NGF, 2 * NGF, 3, 3))
      bn(f"{p}.1", 4 * NGF)
      state[f"{p}.3.weight"] = rng.normal(0, std, (2 * NGF, 2 * NGF, 3, 3))
      bn(f"{p}.4", 2 * NGF)
    state[f"h_net{k}.upsample.1.weight"] = rng.normal(0, std, (2 * NGF, 2 * NGF, 3, 3))
    bn(f"h_net{k}.upsample.2", 2 * NGF)
  for k in (1, 2, 3):
    state[f"img_net{k}.img.0.weight"] = rng.normal(0, 0.3, (3, NGF, 3, 3))
  return collections.OrderedDict((k, v.astype(np.float32)) for k, v in state.items())


def _conv3x3_nchw(x, weight):
  """PyTorch conv3x3, padding 1, no bias: x [B, C, H, W], weight [O, C, 3, 3]."""
  padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
  h, w = x.shape[2:]
  return sum(np.einsum("bchw,oc->bohw", padded[:, :, i:i + h, j:j + w], weight[:, :, i, j])
             for i in range(3) for j in range(3))


def _official_stages(state, sentence, words, lengths, z, eps):
  """numpy G_NET.forward in eval mode (NCHW inside): CA_NET, INIT_STAGE_G, NEXT_STAGE_G x 2
  (GlobalAttentionGeneral with each example's own padding mask, as this project does it: the
  official mask.repeat(queryL, 1) pairs rows with the wrong examples, upstream issue 93),
  GET_IMAGE_G x 3. words [B, nef, T]. Returns the three images NHWC."""
  sig = lambda v: 1 / (1 + np.exp(-v))
  glu = lambda v: v[:, :v.shape[1] // 2] * sig(v[:, v.shape[1] // 2:])
  up = lambda v: v.repeat(2, axis=2).repeat(2, axis=3)  # nearest x2

  def bn(x, p):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return ((x - state[f"{p}.running_mean"].reshape(shape))
            / np.sqrt(state[f"{p}.running_var"].reshape(shape) + 1e-5)
            * state[f"{p}.weight"].reshape(shape) + state[f"{p}.bias"].reshape(shape))

  x = glu(sentence @ state["ca_net.fc.weight"].T + state["ca_net.fc.bias"])
  c = x[:, :C_DIM] + np.exp(0.5 * x[:, C_DIM:]) * eps
  h = glu(bn(np.concatenate([c, z], 1) @ state["h_net1.fc.0.weight"].T, "h_net1.fc.1"))
  h = h.reshape(len(z), 16 * NGF, 4, 4)
  for i in range(1, 5):
    h = glu(bn(_conv3x3_nchw(up(h), state[f"h_net1.upsample{i}.1.weight"]),
               f"h_net1.upsample{i}.2"))
  images = [np.tanh(_conv3x3_nchw(h, state["img_net1.img.0.weight"]))]
  pad = np.arange(words.shape[2])[None, :] >= lengths[:, None]  # [B, T]
  for k in (2, 3):
    b, ch, hh, ww = h.shape
    source = np.einsum("oc,bct->bot", state[f"h_net{k}.att.conv_context.weight"][:, :, 0, 0],
                       words)  # [B, ngf, T]
    attn = np.einsum("bcn,bct->bnt", h.reshape(b, ch, -1), source)  # [B, N, T]
    attn = np.where(pad[:, None, :], -np.inf, attn)
    attn = np.exp(attn - attn.max(-1, keepdims=True))
    attn /= attn.sum(-1, keepdims=True)
    context = np.einsum("bct,bnt->bcn", source, attn).reshape(b, ch, hh, ww)
    x = np.concatenate([h, context], 1)
    for r in range(R_NUM):
      p = f"h_net{k}.residual.{r}.block"
      y = glu(bn(_conv3x3_nchw(x, state[f"{p}.0.weight"]), f"{p}.1"))
      x = x + bn(_conv3x3_nchw(y, state[f"{p}.3.weight"]), f"{p}.4")
    h = glu(bn(_conv3x3_nchw(up(x), state[f"h_net{k}.upsample.1.weight"]),
               f"h_net{k}.upsample.2"))
    images.append(np.tanh(_conv3x3_nchw(h, state[f"img_net{k}.img.0.weight"])))
  return [i.transpose(0, 2, 3, 1) for i in images]


def test_generator_import_writes_a_run_every_variable_from_its_key(release, tmp_path,
                                                                  run_flags):
  paths, text, _ = release
  from estimators import export, weights_import  # pylint: disable=import-outside-toplevel
  g_state = _g_state(np.random.default_rng(7))
  g_path = _write_pth(str(tmp_path / "bird_AttnGAN2.pth"), g_state)
  model_dir = str(tmp_path / "run")
  files = paths + [g_path]
  cfg = run_flags("--mode=import_weights", "--import_from=" + ",".join(files),
                  "--dataset=digits_captions", "--df_dim=2", f"--model_dir={model_dir}")
  hp = cfg.hparams
  assert (hp.gf_dim, hp.branch_num, hp.r_num, hp.condition_dim, hp.z_dim, cfg.image_size) == (
      NGF, 3, R_NUM, C_DIM, Z_DIM, 256)
  record = weights_import.write_run(cfg, files)
  ckpt = tf.train.latest_checkpoint(model_dir)
  reader = tf.train.load_checkpoint(ckpt)
  g16 = 16 * NGF
  perm = np.arange(2 * g16 * 16).reshape(2, g16, 4, 4).transpose(0, 2, 3, 1).reshape(-1)
  bn = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
        "moving_variance": "running_var"}
  want = {"generator/ca_net/fc/kernel": g_state["ca_net.fc.weight"].T,
          "generator/ca_net/fc/bias": g_state["ca_net.fc.bias"],
          "generator/init_fc/kernel": g_state["h_net1.fc.0.weight"].T[:, perm]}
  for ours, theirs in bn.items():
    want[f"generator/init_bn/{ours}"] = g_state[f"h_net1.fc.1.{theirs}"][perm]
  hwio = lambda key: np.transpose(g_state[key], (2, 3, 1, 0))
  for i in range(4):
    want[f"generator/init_up_{i}/conv/kernel"] = hwio(f"h_net1.upsample{i + 1}.1.weight")
    for ours, theirs in bn.items():
      want[f"generator/init_up_{i}/bn/{ours}"] = g_state[f"h_net1.upsample{i + 1}.2.{theirs}"]
  for k in (1, 2):
    want[f"generator/att_{k}/word_projection/kernel"] = (
        g_state[f"h_net{k + 1}.att.conv_context.weight"][:, :, 0, 0].T)
    for r in range(R_NUM):
      for j, (conv, norm) in enumerate(((0, 1), (3, 4)), start=1):
        p = f"h_net{k + 1}.residual.{r}.block"
        want[f"generator/res_{k}_{r}/conv{j}/kernel"] = hwio(f"{p}.{conv}.weight")
        for ours, theirs in bn.items():
          want[f"generator/res_{k}_{r}/bn{j}/{ours}"] = g_state[f"{p}.{norm}.{theirs}"]
    want[f"generator/up_{k}/conv/kernel"] = hwio(f"h_net{k + 1}.upsample.1.weight")
    for ours, theirs in bn.items():
      want[f"generator/up_{k}/bn/{ours}"] = g_state[f"h_net{k + 1}.upsample.2.{theirs}"]
  for k in range(3):
    want[f"generator/img_{k}/kernel"] = hwio(f"img_net{k + 1}.img.0.weight")
  want["generator/text_encoder/embedding/embeddings"] = text["encoder.weight"]
  keys = set(reader.get_variable_to_shape_map())
  for name, value in want.items():
    np.testing.assert_array_equal(reader.get_tensor(f"Generator/{name}"), value, err_msg=name)
    ema = f"Generator/{name}/ExponentialMovingAverage"
    if "moving_" in name or "text_encoder" in name:
      assert ema not in keys, ema
    else:  # the released weights are the average: G and its shadow alike
      np.testing.assert_array_equal(reader.get_tensor(ema), value, err_msg=ema)
  g_keys = {k for k in keys if k.startswith("Generator/") and "ExponentialMoving" not in k}
  assert len(g_keys - {f"Generator/{n}" for n in want}) == 6  # the text encoder's LSTMs
  assert record["variables"]["Generator/generator/init_fc/kernel"].endswith(
      "bird_AttnGAN2.pth:h_net1.fc.0.weight")
  assert "discriminators (netD*.pth)" in record["left_out"]
  assert os.path.isfile(os.path.join(model_dir, "vocab.txt"))

  # The run's generator as export restores it (EMA) draws every stage as PyTorch's G_NET.
  # Building it reads no captions: the dataset's held-out ones (which this tiny vocabulary
  # cannot encode, and which an imported run may not have at hand) once broke export here.
  generator = export.restore_generator(cfg, ckpt, use_ema=True)
  ids, lengths = np.array([[1, 2, 3, 4], [5, 6, 0, 0]], np.int32), np.array([4, 2], np.int32)
  rng = np.random.RandomState(3)
  z, eps = rng.standard_normal((2, Z_DIM)), rng.standard_normal((2, C_DIM))
  out = generator(tf.constant(z, tf.float32), ids, lengths, tf.constant(eps, tf.float32),
                  training=False)
  wants = _official_stages(g_state, out["sentence"].numpy().astype(np.float64),
                           out["words"].numpy().astype(np.float64).transpose(0, 2, 1),
                           lengths, z, eps)
  for k, want in enumerate(wants):
    assert 0.05 < np.abs(want).mean() < 0.9, k  # neither all 0 nor saturated at +-1
    np.testing.assert_allclose(out[f"stage_{k}"].numpy(), want, atol=1e-5, err_msg=k)


def test_a_generator_without_its_vocabulary_or_damsm(release, tmp_path):
  paths, _, _ = release
  g_path = _write_pth(str(tmp_path / "coco_AttnGAN2.pth"), _g_state(np.random.default_rng(1)))
  with pytest.raises(WeightsImportError, match="an AttnGAN generator without its vocabulary"):
    attngan_import.read_release(paths[:2] + [g_path])
  with pytest.raises(WeightsImportError, match="generator needs its DAMSM: no image_encoder"):
    attngan_import.read_release([paths[0], paths[2], g_path])


def test_generator_missing_keys_all_listed_and_a_shape_names_key_and_both(release):
  from estimators.models import attngan_networks, damsm_networks  # pylint: disable=import-outside-toplevel
  text = release[1]
  encoder = damsm_networks.TextEncoder(len(WORDS), WORD_DIM, HIDDEN, name="text_encoder")
  generator = attngan_networks.Generator(encoder, 256, branch_num=3, ngf=NGF, z_dim=Z_DIM,
                                         condition_dim=C_DIM, r_num=R_NUM)
  generator(tf.zeros([1, Z_DIM]), tf.ones([1, 2], tf.int32), tf.constant([2]),
            tf.zeros([1, C_DIM]))
  state = _g_state(np.random.default_rng(2))
  del state["h_net3.residual.1.block.4.running_var"], state["img_net2.img.0.weight"]
  state["h_net2.upsample.1.weight"] = np.zeros((4, 3, 3, 3), np.float32)
  with pytest.raises(WeightsImportError) as e:
    attngan_import.fill_generator(generator, state, "g.pth", text, "t.pth")
  message = str(e.value)
  assert ("missing 2 keys: h_net3.residual.1.block.4.running_var, img_net2.img.0.weight"
          in message or "missing 2 keys: img_net2.img.0.weight, h_net3.residual.1.block.4."
          "running_var" in message), message
  assert "g.pth:h_net2.upsample.1.weight: (4, 3, 3, 3) in the file, (3, 3, 4, 4)" in message
