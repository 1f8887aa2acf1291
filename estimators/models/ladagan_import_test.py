"""LadaGAN's released tf.train.Checkpoint -> a run (--mode=import_weights), in process.

The release is written here in the official layout: object paths and shapes read from the
official tensorflow/model.py and trainer.py (milmor/LadaGAN eb3ed9c), written out below by hand
(independently of ladagan_import's rules), at the tiniest widths the official config.json allows,
every variable with its own random values so a wrong pairing shows.
"""
import dataclasses
import hashlib
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import run
from estimators import evaluation, export, model_registry, weights_import
from estimators.model_registry import WeightsImportError
from estimators.models import ladagan, ladagan_networks

N_IMAGES = 1280
CONFIG = {  # the official config.py keys (utils.Config saves them all), tiny, 128 px: decoder + BN
    "img_size": 128, "batch_size": 8, "g_lr": 0.0002, "g_beta1": 0.5, "g_beta2": 0.99,
    "noise_dim": 16, "g_initializer": "orthogonal", "g_dim": [16, 8, 4], "g_heads": [2, 2, 2],
    "g_mlp": [8, 8, 8], "d_initializer": "orthogonal", "d_enc_dim": [4, 4, 4, 8],
    "d_out_dim": [8, 8], "d_heads": 2, "d_mlp": 8, "d_lr": 0.0003, "d_beta1": 0.5,
    "d_beta2": 0.99, "gp_weight": 0.0001, "policy": "color,translation,cutout",
    "fid_batch_size": 50, "gen_batch_size": 50, "loss": "nsl", "ema_decay": 0.999, "bcr": True,
    "cr_weight": 0.1, "dec_dim": [8, 4], "n_fid_real": 2500, "n_fid_gen": 2500, "plot_size": 5.2,
    "test_seed": 77}


def _ladaformer(off, proj, c, z, heads, mlp, modulated):
  """{official path: (shape, project path)} of one Ladaformer (official SMLadaformer /
  Ladaformer: attn = AdditiveAttention(wq, wk, wv, q_attn, to_out), mlp = Sequential of 2 Dense,
  norm1/norm2 = SMLayerNormalization(h, gamma, beta Dense) or LayerNormalization)."""
  rows = {}
  for official, mine in (("wq", "query"), ("wk", "key"), ("wv", "value"), ("to_out", "out")):
    rows[f"{off}/attn/{official}/kernel"] = ((c, c), f"{proj}/attention/{mine}/kernel")
    rows[f"{off}/attn/{official}/bias"] = ((c,), f"{proj}/attention/{mine}/bias")
  rows[f"{off}/attn/q_attn/kernel"] = ((c, heads), f"{proj}/attention/score/kernel")
  rows[f"{off}/attn/q_attn/bias"] = ((heads,), f"{proj}/attention/score/bias")
  rows[f"{off}/mlp/layer_with_weights-0/kernel"] = ((c, mlp), f"{proj}/mlp/fc1/kernel")
  rows[f"{off}/mlp/layer_with_weights-0/bias"] = ((mlp,), f"{proj}/mlp/fc1/bias")
  rows[f"{off}/mlp/layer_with_weights-1/kernel"] = ((mlp, c), f"{proj}/mlp/fc2/kernel")
  rows[f"{off}/mlp/layer_with_weights-1/bias"] = ((c,), f"{proj}/mlp/fc2/bias")
  for norm in ("norm1", "norm2"):
    if modulated:
      for official, mine, rows_in in (("h", "hidden", z), ("gamma", "gamma", c),
                                      ("beta", "beta", c)):
        rows[f"{off}/{norm}/{official}/kernel"] = ((rows_in, c), f"{proj}/{norm}/{mine}/kernel")
        rows[f"{off}/{norm}/{official}/bias"] = ((c,), f"{proj}/{norm}/{mine}/bias")
    else:
      rows[f"{off}/{norm}/gamma"] = ((c,), f"{proj}/{norm}/gamma")
      rows[f"{off}/{norm}/beta"] = ((c,), f"{proj}/{norm}/beta")
  return rows


def _bn(off, proj, c):
  return {f"{off}/{v}": ((c,), f"{proj}/{v}")
          for v in ("gamma", "beta", "moving_mean", "moving_variance")}


def official_generator(c):
  z, (c0, c1, c2), heads, mlp = c["noise_dim"], c["g_dim"], c["g_heads"][0], c["g_mlp"][0]
  rows = {"init/layer_with_weights-0/kernel": ((z, 64 * c0), "init_dense/kernel")}
  for s, width in ((8, c0), (16, c1), (32, c2)):
    rows[f"pos_emb_{s}/position_embedding/embeddings"] = ((s * s, width), f"pos_emb_{s}/embeddings")
    rows.update(_ladaformer(f"block_{s}", f"block_{s}", width, z, heads, mlp, True))
  for s, c_in, c_out in ((8, c0 // 4, c1), (16, c1 // 4, c2)):
    rows[f"conv_{s}/kernel"] = ((3, 3, c_in, c_out), f"lee_{s}/conv/kernel")
    rows[f"conv_{s}/bias"] = ((c_out,), f"lee_{s}/conv/bias")
  width = c2
  for i, w in enumerate(c["dec_dim"]):  # Sequential: UpSampling, Conv2D, BN, LeakyReLU per width
    rows[f"dec/layer_with_weights-{2 * i}/kernel"] = ((3, 3, width, w), f"dec_conv_{i}/kernel")
    rows[f"dec/layer_with_weights-{2 * i}/bias"] = ((w,), f"dec_conv_{i}/bias")
    rows.update(_bn(f"dec/layer_with_weights-{2 * i + 1}", f"dec_bn_{i}", w))
    width = w
  rows["ch_conv/kernel"] = ((3, 3, width, 3), "to_rgb/kernel")
  rows["ch_conv/bias"] = ((3,), "to_rgb/bias")
  return rows


def official_discriminator(c):
  enc, (o0, o1), heads, mlp = c["d_enc_dim"], c["d_out_dim"], c["d_heads"], c["d_mlp"]
  rows = {"inp_conv/layer_with_weights-0/kernel": ((3, 3, 3, enc[0]), "stem_conv/kernel")}
  for i, (c_in, w) in enumerate(zip(enc, enc[1:])):  # downBlock: main and direct Sequentials
    e = f"encoder/{i}"
    rows[f"{e}/main/layer_with_weights-0/kernel"] = ((3, 3, c_in, w), f"down_{i}/main_conv1/kernel")
    rows.update(_bn(f"{e}/main/layer_with_weights-1", f"down_{i}/main_bn1", w))
    rows[f"{e}/main/layer_with_weights-2/kernel"] = ((3, 3, w, w), f"down_{i}/main_conv2/kernel")
    rows.update(_bn(f"{e}/main/layer_with_weights-3", f"down_{i}/main_bn2", w))
    rows[f"{e}/direct/layer_with_weights-0/kernel"] = ((1, 1, c_in, w), f"down_{i}/skip_conv/kernel")
    rows.update(_bn(f"{e}/direct/layer_with_weights-1", f"down_{i}/skip_bn", w))
  e = enc[-1]
  rows["pos_emb_8/position_embedding/embeddings"] = ((256, e), "pos_emb_16/embeddings")
  rows.update(_ladaformer("block_8", "block_16", e, None, heads, mlp, False))
  rows["conv_4/kernel"] = ((3, 3, 4 * e, o0), "head_conv/kernel")
  rows["conv_4/bias"] = ((o0,), "head_conv/bias")
  rows["down_4/layer_with_weights-0/kernel"] = ((1, 1, o0, o1), "head_conv1x1/kernel")
  rows["down_4/layer_with_weights-1/kernel"] = ((4, 4, o1, 1), "logits_conv/kernel")
  return rows


def _module(tree):
  """Nested tf.Modules whose attribute names are the object path's parts."""
  node = tf.Module()
  for name, child in tree.items():
    setattr(node, name, _module(child) if isinstance(child, dict) else child)
  return node


def _nest(values):
  tree = {}
  for path, var in values.items():
    *parents, leaf = path.split("/")
    node = tree
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = var
  return tree


def write_release(root, config=CONFIG, drop=(), seed=0, trainable=False):
  """<root>/config.json + best-training-checkpoints/ckpt-N in the official layout; returns
  ({network/official path: value}, {network: {official path: (shape, project path)}}).
  trainable: values in +-0.3 (BN variances 0.5..1.5), which do not saturate G's tanh, so a
  training step moves every G weight (the default's all-positive values saturate it)."""
  rng = np.random.RandomState(seed)
  layouts = {"generator": official_generator(config), "ema_generator": official_generator(config),
             "discriminator": official_discriminator(config)}
  values, objects = {}, {}
  for net, rows in layouts.items():
    variables = {}
    for path, (shape, _) in rows.items():
      if f"{net}/{path}" in drop:
        continue
      value = rng.uniform(0.5, 1.5, shape).astype(np.float32)  # > 0: valid BN variances too
      if trainable and "moving_variance" not in path:
        value = (value - 1.0) * 0.6
      values[f"{net}/{path}"] = value
      variables[path] = tf.Variable(value)
    objects[net] = _module(_nest(variables))
  for opt in ("g_optimizer", "d_optimizer"):  # Keras 2.11+ Adam: _iterations, _variables/<i>
    objects[opt] = _module({"_iterations": tf.Variable(3, dtype=tf.int64),
                            "_learning_rate": tf.Variable(2e-4),
                            "_variables": {"1": tf.Variable(np.ones(4, np.float32)),
                                           "2": tf.Variable(np.ones(4, np.float32))}})
  ckpt = tf.train.Checkpoint(**objects, n_images=tf.Variable(N_IMAGES),
                             fid=tf.Variable(12.5), best_fid=tf.Variable(12.5))
  os.makedirs(root, exist_ok=True)
  with open(os.path.join(root, "config.json"), "w") as f:
    json.dump(config, f)
  tf.train.CheckpointManager(ckpt, os.path.join(root, "best-training-checkpoints"),
                             max_to_keep=2).save(N_IMAGES)
  return values, layouts


@pytest.fixture(scope="module")
def release(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("ffhq_128") / "ffhq_128")
  values, layouts = write_release(root)
  return root, values, layouts


def _expected(values, layouts, ema_all=True):
  """{project checkpoint key: official path} the import must produce (EMA on; `ema_all`: the
  EMA averages G's BN statistics too, LadaGAN's default --ema_variables=all)."""
  pairs = {}
  for off, (_, proj) in layouts["generator"].items():
    key = f"Generator/generator/{proj}"
    if "moving_" in proj and not ema_all:  # one set of BN statistics: the EMA generator's own
      pairs[key] = f"ema_generator/{off}"
    else:
      pairs[key] = f"generator/{off}"
      pairs[f"{key}/ExponentialMovingAverage"] = f"ema_generator/{off}"
  for off, (_, proj) in layouts["discriminator"].items():
    pairs[f"Discriminator/discriminator/{proj}"] = f"discriminator/{off}"
  return pairs


def test_import_mode_writes_a_run_every_variable_from_its_official_key(release, tmp_path,
                                                                       run_flags):
  root, values, layouts = release
  model_dir = str(tmp_path / "run")
  cfg = run_flags("--mode=import_weights", f"--import_from={root}", f"--model_dir={model_dir}")
  # config.json decided the model (no --model given), every hyperparameter and the run settings.
  assert cfg.model == "ladagan" and cfg.image_size == 128 and cfg.ema_decay == 0.999
  assert cfg.hparams == ladagan.LadaGANHParams(
      z_dim=16, g_dim="16,8,4", g_decoder="8,4", g_mlp_dim=8, lada_heads=2, d_enc_dim="4,4,4,8",
      d_out_dim="8,8", diffaugment="color,translation,cutout", r1_weight=1e-4, bcr_weight=0.1)
  assert (cfg.batch_size, cfg.generator_lr, cfg.discriminator_lr, cfg.beta1, cfg.beta2) == (
      8, 2e-4, 3e-4, 0.5, 0.99)
  run._run_mode(cfg)  # pylint: disable=protected-access

  ckpt = tf.train.latest_checkpoint(model_dir)
  assert ckpt == os.path.join(model_dir, f"model.ckpt-{N_IMAGES // 8}")
  reader = tf.train.load_checkpoint(ckpt)
  expected = _expected(values, layouts)
  assert set(reader.get_variable_to_shape_map()) == set(expected) | {"global_step"}
  assert reader.get_tensor("global_step") == N_IMAGES // 8
  for key, source in expected.items():
    np.testing.assert_array_equal(reader.get_tensor(key), values[source], err_msg=key)

  record = json.load(open(os.path.join(model_dir, "imported.json")))
  assert record["variables"] == expected
  assert record["step"] == N_IMAGES // 8 and record["release"]["images_seen"] == N_IMAGES
  assert record["release"]["name"] == "ffhq_128" and record["release"]["config"] == CONFIG
  for entry in record["files"]:
    assert entry["sha256"] == hashlib.sha256(open(entry["path"], "rb").read()).hexdigest()
  assert {os.path.basename(e["path"]) for e in record["files"]} == {
      "config.json", f"ckpt-{N_IMAGES}.index", f"ckpt-{N_IMAGES}.data-00000-of-00001",
      "checkpoint"}
  left_out = record["left_out"]
  assert {"g_optimizer/* (4 keys)", "d_optimizer/* (4 keys)", "n_images", "fid",
          "best_fid", "save_counter"} <= set(left_out)
  # The official EMA averages the BN statistics too: both sets are kept (G's own and the EMA's).
  assert not any("moving_" in k for k in left_out)

  # The directory is a run: a later mode reads run_config.json back to the same settings.
  assert run_flags("--mode=sample", f"--model_dir={model_dir}") == cfg
  # A mode's generator (restored as eval/sample/export do: EMA weights, the EMA's BN
  # statistics) equals the project's generator built anew with the EMA generator's weights.
  use_ema = evaluation.use_ema(cfg, ckpt)
  assert use_ema
  restored = export.restore_generator(cfg, ckpt, use_ema)
  reference = ladagan_networks.Generator(ladagan.architecture(cfg.hparams, 128), name="ref")
  z = tf.constant(np.random.RandomState(5).standard_normal((3, 16)), tf.float32)
  reference(z)
  sources = {proj: f"ema_generator/{off}" for off, (_, proj) in layouts["generator"].items()}
  for var in reference.variables:
    var.assign(values[sources[var.name.split(":")[0][len("ref/"):]]])
  assert restored is not reference
  np.testing.assert_array_equal(restored(z, training=False), reference(z, training=False))


def test_a_directory_holding_a_run_is_refused(release, tmp_path, run_flags):
  root, _, _ = release
  os.makedirs(tmp_path / "run")
  (tmp_path / "run" / "run_config.json").write_text("{}")
  with pytest.raises(WeightsImportError, match="already holds a run"):
    run_flags("--mode=import_weights", f"--import_from={root}", f"--model_dir={tmp_path}/run")


def test_a_flag_that_contradicts_config_json_names_both_values(release, tmp_path):
  root, _, _ = release
  with pytest.raises(WeightsImportError) as e:
    weights_import.import_flags(str(tmp_path), [root], {"g_dim": "32,8,4", "ema_decay": 0.0,
                                                        "batch_size": 8})
  assert ("--g_dim='32,8,4' given, the files have --g_dim='16,8,4'; --ema_decay=0.0 given, "
          "the files have --ema_decay=0.999") in str(e.value)
  assert "drop --g_dim, --ema_decay" in str(e.value)


@dataclasses.dataclass(frozen=True)
class _NoHParams:
  """A model with no hyperparameters (and no importer)."""


class _NoImporter(model_registry.ModelSpec):
  name, hparams_class = "no_importer", _NoHParams


def test_a_model_without_an_importer_lists_those_with_one(release, tmp_path):
  """Every model of the suite has an importer now, so the test registers one that has none."""
  root, _, _ = release
  model_registry.register(_NoImporter())
  try:
    assert "no_importer" not in weights_import.importer_models()
    with pytest.raises(WeightsImportError, match="--model=no_importer has no importer of "
                       "released weights; models that have one: .*ladagan"):
      weights_import.import_flags(str(tmp_path), [root], {"model": "no_importer"})
  finally:
    model_registry.unregister("no_importer")


def test_files_of_another_format_or_model(tmp_path):
  pth = tmp_path / "bird_AttnGAN2.pth"
  pth.write_bytes(b"PK\x03\x04 not a LadaGAN release")
  with pytest.raises(WeightsImportError, match="bird_AttnGAN2.pth: not a LadaGAN release"):
    weights_import.import_flags(str(tmp_path / "run"), [str(pth)], {"model": "ladagan"})
  other = tmp_path / "other"
  tf.train.Checkpoint(w=tf.Variable(1.0)).save(str(other / "ckpt"))
  (other / "config.json").write_text(json.dumps(CONFIG))
  with pytest.raises(WeightsImportError, match=r"not a LadaGAN tf.train.Checkpoint \(no "
                     r"ema_generator/ object paths; it holds e.g. \['save_counter"):
    weights_import.import_flags(str(tmp_path / "run"), [str(other)], {"model": "ladagan"})
  (other / "config.json").write_text(json.dumps({**CONFIG, "g_depth": 3}))
  with pytest.raises(WeightsImportError, match=r"unknown keys \['g_depth'\]"):
    weights_import.import_flags(str(tmp_path / "run"), [str(other)], {"model": "ladagan"})


def test_missing_keys_are_all_listed_and_nothing_is_written(tmp_path, run_flags):
  root = str(tmp_path / "cifar10")
  drop = ("ema_generator/block_8/attn/wq/kernel", "discriminator/conv_4/bias")
  write_release(root, drop=drop)
  model_dir = tmp_path / "run"
  cfg = run_flags("--mode=import_weights", f"--import_from={root}", f"--model_dir={model_dir}")
  with pytest.raises(WeightsImportError, match="missing 2 keys: ema_generator/block_8/attn/wq/"
                     "kernel, discriminator/conv_4/bias"):
    weights_import.write_run(cfg, [root])
  assert not weights_import.holds_run(str(model_dir))


def test_with_an_ema_of_trainable_weights_only_the_ema_generators_bn_statistics_fill_g(
    release, tmp_path, run_flags):
  root, values, layouts = release
  model_dir = str(tmp_path / "run")
  cfg = run_flags("--mode=import_weights", f"--import_from={root}", f"--model_dir={model_dir}",
                  "--ema_variables=trainable")
  run._run_mode(cfg)  # pylint: disable=protected-access
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(model_dir))
  expected = _expected(values, layouts, ema_all=False)
  assert set(reader.get_variable_to_shape_map()) == set(expected) | {"global_step"}
  for key, source in expected.items():
    np.testing.assert_array_equal(reader.get_tensor(key), values[source], err_msg=key)
  left_out = json.load(open(os.path.join(model_dir, "imported.json")))["left_out"]
  assert "generator/dec/layer_with_weights-1/moving_mean" in left_out
