"""TF-GAN / YLG SAGAN estimator checkpoints -> a run (--mode=import_weights), in process.

The official variables are made by running TF-GAN's own example network builders (the installed
tensorflow_gan 2.1.0 examples/self_attention_estimator) in a TF1 graph under the estimator's
`Generator` / `Discriminator` scopes, every variable given its own random values, and saved with
tf.train.Saver (which writes the .meta the importer reads the attention kind from). The YLG code
(giannisdaras/ylg f41c818, ylg/ops.py) creates the same variables; its checkpoint differs only by
the mask addend [8, Nq, Nk] its attention adds to the logits, which the YLG checkpoint's graph
gets here as that constant.
"""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import estimators.compat  # noqa: F401  (TF-GAN 2.1.0 needs inspect.getargspec)
import run
from estimators import export, weights_import
from estimators.model_registry import WeightsImportError
from estimators.models import sagan_import
from tfgan_attention import YLGAttention

CLASSES, Z, STEP = 10, 8, 4321  # 10 classes: the default dataset's (digits)
LABELS = np.array([3, 7], np.int32)


def _official_variables(gf, df):
  """TF-GAN's example networks in a TF1 graph: (graph, z, y, images at training=False)."""
  # pylint: disable=import-outside-toplevel
  from tensorflow_gan.examples.self_attention_estimator import discriminator as tfgan_d
  from tensorflow_gan.examples.self_attention_estimator import generator as tfgan_g
  graph = tf.Graph()
  with graph.as_default():
    z = tf.compat.v1.placeholder(tf.float32, [2, Z])
    y = tf.compat.v1.placeholder(tf.int32, [2])
    with tf.compat.v1.variable_scope("Generator"):  # tfgan.gan_model's scopes
      images, _ = tfgan_g.generator(z, y, gf, CLASSES, training=False)
    with tf.compat.v1.variable_scope("Discriminator"):
      tfgan_d.discriminator(tf.zeros([2, 128, 128, 3]), y, df, CLASSES)
  return graph, z, y, images


def _draw(name, shape, rng):
  """Distinct values; kernels with sigma on both sides of 1; u the kernel's exact leading left
  singular vector (a trained u), so TF-GAN's and the project's sigma are both exact."""
  if "moving_variance" in name:
    return rng.uniform(0.5, 2.0, shape)
  value = rng.uniform(-1, 1, shape)
  if name.endswith(("kernel", "weights", "embedding_map")):
    m = value.T if name.endswith("embedding_map") else value.reshape(-1, shape[-1])
    value = value * rng.uniform(0.5, 1.6) / np.linalg.svd(m, compute_uv=False)[0]
  return value


def write_checkpoint(root, gf=4, df=4, ylg=False, drop=(), seed=0):
  """root/model.ckpt-STEP of the official networks; returns ({key: value}, graph tensors).
  ylg: the YLG graph's mask constant, and random u vectors (no SVDs at its wider D)."""
  graph, z, y, images = _official_variables(gf, df)
  rng = np.random.RandomState(seed)
  values = {}
  with graph.as_default():
    variables = {v.name[:-2]: v for v in tf.compat.v1.global_variables()}
    for name in sorted(variables):
      if "spectral_norm_u" not in name and ylg:
        values[name] = rng.uniform(-1, 1, variables[name].shape).astype(np.float32)
      elif "spectral_norm_u" not in name:
        values[name] = _draw(name, variables[name].shape, rng).astype(np.float32)
    for name in sorted(variables):
      if "spectral_norm_u" in name and ylg:
        values[name] = rng.uniform(-1, 1, variables[name].shape).astype(np.float32)
      elif "spectral_norm_u" in name:
        kernel = name.split("/spectral_normalize/")[0]
        if kernel.endswith("/d_embedding"):
          kernel, m = kernel + "/embedding_map", values[kernel + "/embedding_map"].T
        else:
          kernel = kernel.split("/", len(kernel.split("/")) // 2)[-1]  # <scope>/<kernel key>
          m = values[kernel].reshape(-1, values[kernel].shape[-1])
        left = np.linalg.svd(m.astype(np.float64), full_matrices=False)[0][:, :1]
        values[name] = (left * np.sign(left.sum())).astype(np.float32)
    # Estimator extras: the step, Adam's slots and powers (left out by the import).
    step = tf.compat.v1.train.get_or_create_global_step()
    kernel = "Generator/generator/g_snh0/dense/kernel"
    slots = [tf.compat.v1.get_variable(kernel + s, variables[kernel].shape)
             for s in ("/Adam", "/Adam_1")]
    power = tf.compat.v1.get_variable("beta1_power", [])
    if ylg:  # ylg/ops.py: attn += (1 - masks) * -1000, masks [8, 32*32, 16*16]
      with tf.compat.v1.name_scope("Generator/generator/g_ops/"):
        tf.constant(np.zeros([8, 1024, 256], np.float32), name="add/y")
    saver = tf.compat.v1.train.Saver(
        [v for n, v in variables.items() if n not in drop] + [step, power] + slots)
    with tf.compat.v1.Session(graph=graph) as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      sess.run([variables[n].assign(v) for n, v in values.items()] + [step.assign(STEP)])
      os.makedirs(root, exist_ok=True)
      saver.save(sess, os.path.join(root, "model.ckpt"), global_step=STEP)
      feed = {z: np.random.RandomState(9).standard_normal([2, Z]), y: LABELS}
      official_images = sess.run(images, feed)
  return values, (feed[z], official_images)


def _u_source(ours):
  """Our u variable's key -> TF-GAN's u key, written independently of the importer's rules."""
  net = "Generator/generator/" if ours.startswith("Generator/") else "Discriminator/discriminator/"
  layer = ours.split("/", 2)[2].rsplit("/sn_u", 1)[0]
  if layer == "d_embedding":
    return net + "d_embedding/spectral_normalize/spectral_norm/spectral_norm_u"
  scope = net + (f"{layer}/dense" if layer in ("g_snh0", "d_sn_linear") else
                 layer if "_ops/" in layer else f"{layer}/{layer.rsplit('/', 1)[-1]}")
  leaf = "weights" if "_ops/" in layer else "kernel"
  return f"{scope}/{scope}/{leaf}/spectral_normalize/spectral_norm/spectral_norm_u"


@pytest.mark.filterwarnings("ignore:`tf.layers")
def test_tfgan_checkpoint_imports_every_variable_and_generates_as_tfgan(tmp_path, run_flags):
  values, (z, official_images) = write_checkpoint(str(tmp_path / "tfgan"))
  model_dir = str(tmp_path / "run")
  cfg = run_flags("--mode=import_weights", f"--import_from={tmp_path}/tfgan",
               f"--model_dir={model_dir}")
  # The .meta decided the model; the variables the widths, size and attention place.
  hp = cfg.hparams
  assert cfg.model == "sagan" and cfg.image_size == 128 and cfg.ema_decay == 0.0
  assert (hp.z_dim, hp.gf_dim, hp.df_dim, hp.attention_resolution, hp.num_heads) == (Z, 4, 4, 32, 1)
  assert (hp.sn_bound, hp.bn_inference) == ("tfgan", "moving")
  run._run_mode(cfg)  # pylint: disable=protected-access

  ckpt = tf.train.latest_checkpoint(model_dir)
  assert ckpt.endswith(f"model.ckpt-{STEP}")
  reader = tf.train.load_checkpoint(ckpt)
  keys = set(reader.get_variable_to_shape_map()) - {"global_step"}
  record = json.load(open(os.path.join(model_dir, "imported.json")))
  # Every value is its source's (reshaped) or, for u, l2n(u^T W) of its own kernel: with u the
  # exact left singular vector, that is the kernel's right singular vector (numpy's SVD).
  n_u = 0
  for key in sorted(keys):
    got = reader.get_tensor(key)
    if key.endswith("/sn_u"):
      source = _u_source(key)
      assert record["variables"][key].startswith(source + " "), key
      kernel = source.split("/spectral_normalize/")[0]
      if kernel.endswith("/d_embedding"):
        m = values[kernel + "/embedding_map"].T
      else:
        kernel = kernel.split("/", len(kernel.split("/")) // 2)[-1]
        m = values[kernel].reshape(-1, values[kernel].shape[-1])
      _, _, right_t = np.linalg.svd(m.astype(np.float64), full_matrices=False)
      right = right_t[:1] * np.sign(right_t[0] @ (values[source].T @ m)[0])
      np.testing.assert_allclose(got, right, atol=1e-5, err_msg=key)
      n_u += 1
    else:
      source = record["variables"][key]
      np.testing.assert_array_equal(got, values[source].reshape(got.shape), err_msg=key)
  assert n_u == len([k for k in values if "spectral_norm_u" in k]) == 21 + 23
  assert len(keys) == len(values)  # one run variable per official one
  assert record["variables"]["Generator/generator/g_block1/cbn_0/cbn/gamma"] == (
      "Generator/generator/g_block1/cbn_0/gamma")
  assert record["variables"]["Discriminator/discriminator/d_embedding/embeddings"] == (
      "Discriminator/discriminator/d_embedding/embedding_map")
  assert set(record["left_out"]) == {"*/Adam, */Adam_1 (2 keys)", "beta1_power", "global_step"}
  assert record["release"]["attention"] == "dense" and record["step"] == STEP

  # The run's generator, restored as export/sample do, draws TF-GAN's images (training=False:
  # BN moving statistics; the bound W / max(1, sigma)).
  restored = export.restore_generator(cfg, ckpt, use_ema=False)
  ours = restored(tf.constant(z, tf.float32), tf.constant(LABELS), training=False).numpy()
  assert np.abs(official_images).max() > 0.1
  np.testing.assert_allclose(ours, official_images, atol=1e-5, rtol=0)


def test_convert_u_is_tfgans_next_v():
  rng = np.random.RandomState(1)
  kernel, u = rng.standard_normal([3, 3, 5, 7]), rng.standard_normal([45, 1])
  w = kernel.reshape(45, 7)
  v = w.T @ u[:, 0]  # TF-GAN: v = l2n(W^T u)
  np.testing.assert_allclose(sagan_import.convert_u(u, kernel)[0], v / np.linalg.norm(v),
                             rtol=1e-6)
  table, u = rng.standard_normal([4, 6]), rng.standard_normal([6, 1])  # embedding [classes, dim]
  v = table @ u[:, 0]
  np.testing.assert_allclose(sagan_import.convert_u(u, table, embedding=True)[0],
                             v / np.linalg.norm(v), rtol=1e-6)


def test_ylg_head_order_conversion_gives_the_official_interleaved_layer():
  """YLGAttention(interleave_heads=True) is the official channel order: with the official
  sn_conv_attn kernel it must equal the default (head-major) layer with the converted kernel."""
  rng = np.random.RandomState(2)
  x = tf.constant(rng.standard_normal([1, 8, 8, 64]), tf.float32)
  official = YLGAttention(interleave_heads=True, implementation="dense", name="a")
  ours = YLGAttention(implementation="dense", name="b")
  official(x), ours(x)  # build
  for a, b in zip(official.variables, ours.variables):
    value = rng.standard_normal(a.shape).astype(np.float32)
    a.assign(value)
    b.assign(sagan_import.interleaved_to_head_major(value) if "sn_conv_attn/kernel" in a.name
             else value)
  kernel = official.attn_out.kernel.numpy()
  converted = ours.attn_out.kernel.numpy()
  for h in range(8):  # independent index check: ours h * dv + i <- official i * 8 + h
    for i in range(4):
      np.testing.assert_array_equal(converted[:, :, h * 4 + i], kernel[:, :, i * 8 + h])
  np.testing.assert_allclose(ours(x).numpy(), official(x).numpy(), atol=1e-5)


@pytest.mark.filterwarnings("ignore:`tf.layers")
def test_ylg_checkpoint_is_told_by_its_meta_graph_and_heads_reordered(tmp_path, run_flags):
  values, _ = write_checkpoint(str(tmp_path / "ylg"), gf=16, df=32, ylg=True)
  with pytest.raises(WeightsImportError, match=r"shows YLG sparse attention: import it with "
                     r"--model=ylg_sagan"):
    weights_import.import_flags(str(tmp_path / "x"), [str(tmp_path / "ylg")], {"model": "sagan"})
  model_dir = str(tmp_path / "run")
  cfg = run_flags("--mode=import_weights", f"--import_from={tmp_path}/ylg",
               f"--model_dir={model_dir}")
  assert cfg.model == "ylg_sagan" and (cfg.hparams.gf_dim, cfg.hparams.df_dim) == (16, 32)
  run._run_mode(cfg)  # pylint: disable=protected-access
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(model_dir))
  for net, scope in (("Generator/generator", "generator"),
                     ("Discriminator/discriminator", "discriminator")):
    ops = "g_ops" if scope == "generator" else "d_ops"
    got = reader.get_tensor(f"{net}/{ops}/sn_conv_attn/kernel")
    official = values[f"{net}/{ops}/sn_conv_attn/weights"]
    dv = got.shape[2] // 8
    for h in range(8):
      for i in range(dv):
        np.testing.assert_array_equal(got[:, :, h * dv + i], official[:, :, i * 8 + h])
    np.testing.assert_array_equal(reader.get_tensor(f"{net}/{ops}/sn_conv_theta/kernel"),
                                  values[f"{net}/{ops}/sn_conv_theta/weights"])


@pytest.mark.filterwarnings("ignore:`tf.layers")
def test_another_format_a_contradicting_width_and_missing_keys(tmp_path, run_flags):
  lada = tmp_path / "lada"
  tf.train.Checkpoint(ema_generator=tf.Module(), w=tf.Variable(1.0)).save(str(lada / "ckpt"))
  with pytest.raises(WeightsImportError, match=r"not a TF-GAN SAGAN / YLG estimator checkpoint "
                     r"\(no Generator/generator/g_snh0/dense/kernel; it holds e.g."):
    weights_import.import_flags(str(tmp_path / "x"), [str(lada)], {"model": "ylg_sagan"})
  junk = tmp_path / "weights.pth"
  junk.write_bytes(b"PK\x03\x04")
  with pytest.raises(WeightsImportError, match="weights.pth: not a TF1 estimator checkpoint"):
    weights_import.import_flags(str(tmp_path / "x"), [str(junk)], {"model": "sagan"})

  root = str(tmp_path / "tfgan")
  drop = ("Generator/generator/g_ops/sigma_ratio",
          "Discriminator/discriminator/d_block2/sn_conv1/sn_conv1/kernel")
  write_checkpoint(root, drop=drop)
  with pytest.raises(WeightsImportError) as e:
    weights_import.import_flags(str(tmp_path / "x"), [root], {"gf_dim": 8, "df_dim": 4})
  assert str(e.value).startswith("--gf_dim=8 given, the files have --gf_dim=4 (")
  assert "drop --gf_dim" in str(e.value)
  model_dir = tmp_path / "run"
  cfg = run_flags("--mode=import_weights", f"--import_from={root}", f"--model_dir={model_dir}")
  with pytest.raises(WeightsImportError, match="missing 2 keys: Generator/generator/g_ops/"
                     "sigma_ratio, Discriminator/discriminator/d_block2/sn_conv1/sn_conv1/kernel"):
    weights_import.write_run(cfg, [root])
  assert not weights_import.holds_run(str(model_dir))
  # The classes come from the checkpoint; the dataset must have as many.
  cfg = run_flags("--mode=import_weights", f"--import_from={root}", f"--model_dir={model_dir}",
               "--dataset=ffhq", f"--data_dir={tmp_path}")
  with pytest.raises(WeightsImportError, match=r"has 10 classes, --dataset=ffhq has 0: give a "
                     r"dataset with 10 \(cifar10, digits"):
    weights_import.write_run(cfg, [root])


def test_attention_kind_from_the_meta_graph(tmp_path):
  """The graph facts read: ylg/ops.py's mask addend [8, Nq, Nk] (YLG), a head split's Transpose
  (the YLG code's --nH dense SAGAN, refused), neither (TF-GAN's one-head block), no .meta."""
  def meta(name, build):
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.name_scope("Generator/generator/g_ops/"):
      build()
      tf.compat.v1.train.export_meta_graph(filename=str(tmp_path / f"{name}.meta"))
    return str(tmp_path / name)

  x = lambda: tf.zeros([2, 16, 4], name="theta")
  assert sagan_import.attention_kind(meta("ylg", lambda: tf.constant(
      np.zeros([8, 16, 4], np.float32), name="add/y"))) == "ylg"
  heads = meta("heads", lambda: tf.transpose(tf.reshape(x(), [2, 16, 2, 2]), [0, 2, 1, 3]))
  assert sagan_import.attention_kind(heads) == "dense_heads"
  assert sagan_import.attention_kind(meta("dense", lambda: tf.matmul(x(), x(),
                                                                     transpose_b=True))) == "dense"
  assert sagan_import.attention_kind(str(tmp_path / "none")) is None
