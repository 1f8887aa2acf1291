"""The in-graph step (engine='in_graph') computes what TF-GAN's GANEstimator step computes.

From the same checkpoint and the same inputs, one step of each: GANEstimator runs the G update,
the D update (TF-GAN's sequential hooks, generator hook first; each in its own session.run, each
reading a new input element) and a third session.run for the logged loss; the in-graph engine
runs one train op (G update, then D update on a fresh forward pass that reads G's update). The input here repeats one element whose G draw ('g_' keys) equals its D
draw, so both engines feed G and D the same tensors in each sub-step. Compared: the D loss of the D
update, both networks' gradients (Adam's first slot: beta1 = 0, so after one step it IS the
gradient), every weight and batch-norm moving statistic after the step.

The engines run different numbers of spectral-norm power iterations on D's u (each training-mode
forward refines u once; the calls are chained): GANEstimator's G hook runs D on fake data only (1),
its D hook D on fake and real (2), its third session.run (the logged loss) D again (2); the
in-graph step's G sub-step also refines u for D's real call, whose output it never uses (1 + 1 +
2). So the shared starting checkpoint holds every u at its kernel's exact leading singular vector
(a fixed point of the iteration: extra rounds change it only by round-off), and the u are not
compared after the step (GANEstimator's logging pass leaves them moved once more).

TPUGANEstimator (on CPU) runs its own step too: D first, the input's batch split in two halves,
one per sub-step, G's train op with both sub-steps' G batch-norm updates. Fed a batch whose
second half repeats its first, it takes the step the in-graph engine takes with those step
flags (for LadaGAN its declared step) on the same rows.
"""
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.training import basic_session_run_hooks  # pylint: disable=g-direct-tensorflow-import
from tensorflow_gan.python import train as tfgan_train

from estimators.engines.build import build_estimator
from estimators.engines.input_fn import make_train_input_fn, prepare_run_data
from estimators.models.attngan_test import TINY as ATTNGAN_TINY, write_random_damsm
from estimators.testing import tiny_config

YLG_TINY = dict(model="ylg_sagan", gf_dim=16, df_dim=32, z_dim=4, batch_size=2)
LADAGAN_TINY = dict(model="ladagan", num_classes=0, z_dim=8, g_dim="8,8,4", g_mlp_dim=8,
                    d_enc_dim="4,4", d_out_dim="4,4", batch_size=2)
# The smallest SAGAN whose attention has channels to attend with (G and D see 8; batch 2), in
# `make test-quick` (the other models' cases and the TPUGANEstimator ones are slow). (The same
# comparison at tiny_config's widths, gf = df = 8, ran as a slow case until 2026-12-07: the same
# code path, three estimator graphs a minute more; removed.)
SIZES = [
    pytest.param(dict(gf_dim=2, df_dim=4, z_dim=4, batch_size=2, attention_resolution=8),
                 id="tiny"),
    # YLG's 8 heads need 64 channels at the attention block (gf 16 in G, df 32 in D at 32 px).
    pytest.param(YLG_TINY, id="ylg_sagan", marks=pytest.mark.slow),
    # LadaGAN with GANEstimator's step (G first, each network's own BN updates: the flags its
    # cell in the README's Model x engine table names); R1 and DiffAugment on. At 32 px its G
    # has no batch norm.
    pytest.param(dict(LADAGAN_TINY, step_order="generator_first",
                      generator_bn_updates="generator_step"), id="ladagan",
                 marks=pytest.mark.slow),
    # AttnGAN with GANEstimator's step (G first, fresh fakes), on its embedded captions; its
    # frozen DAMSM (random weights) in the test's directory.
    pytest.param(dict(ATTNGAN_TINY, batch_size=2, step_order="generator_first",
                      step_fakes="fresh"), id="attngan", marks=pytest.mark.slow),
]


def _dataset_fn():
  def element(i):
    image = tf.random.stateless_uniform([32, 32, 3], seed=tf.stack([i, 7]), minval=-1.0,
                                        maxval=1.0)
    return {"images": image, "labels": tf.cast(i % 10, tf.int32)}
  return tf.data.Dataset.range(16).map(element)


def _same_element_input_fn(cfg):
  """The first batch, forever, with the G sub-step's draw set to the D sub-step's."""
  inner = make_train_input_fn(cfg, dataset_fn=None if cfg.model == "attngan" else _dataset_fn)

  def same_draw(features, real):
    features = dict(features)
    for key in [k for k in features if not k.startswith("g_")]:
      features["g_" + key] = features[key]
    return features, real

  def input_fn(params=None):
    return inner(params).take(1).map(same_draw).cache().repeat()
  return input_fn


def _converge_spectral_norm_vectors(model_dir):
  """Rewrites model.ckpt-0 in model_dir with every sn_u set to its kernel's leading right
  singular vector (kernel viewed as [-1, C_out]; a class embedding as its transpose)."""
  prefix = os.path.join(model_dir, "model.ckpt-0")
  values = {n: v for n, v in _all_variables(prefix).items()}
  for name in [n for n in values if n.endswith("/sn_u")]:
    layer = name[:-len("/sn_u")]
    if layer + "/kernel" in values:
      w = values[layer + "/kernel"]
      w = w.reshape(-1, w.shape[-1])
    else:
      w = values[layer + "/embeddings"].T  # [dim, num_classes]
    u = np.linalg.svd(w.astype(np.float64))[2][0]  # [C_out]
    values[name] = u.reshape(1, -1).astype(np.float32)
  graph = tf.Graph()
  with graph.as_default():
    variables = {n: tf.compat.v1.Variable(v, name=f"v{i}") for i, (n, v) in
                 enumerate(sorted(values.items()))}
    saver = tf.compat.v1.train.Saver(var_list=variables)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      saver.save(session, prefix, write_meta_graph=False)


class _StopOnceCheckpointZeroIsSaved(tf.compat.v1.train.SessionRunHook):
  """Ends train() before its first step: the estimator's CheckpointSaverHook, a chief hook and so
  run before this one, has written model.ckpt-0 (the initial weights) by then."""

  def after_create_session(self, session, coord):
    del session
    coord.request_stop()


def _all_variables(path):
  reader = tf.train.load_checkpoint(path)
  return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}


def _variables(path):
  reader = tf.train.load_checkpoint(path)
  return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
          if np.issubdtype(np.asarray(reader.get_tensor(n)).dtype, np.floating)}


def _start_from(start_dir, *cfgs):
  """Each run directory of `cfgs` starts from start_dir's model.ckpt-0."""
  for cfg in cfgs:
    os.makedirs(cfg.model_dir, exist_ok=True)
    for path in tf.io.gfile.glob(os.path.join(start_dir, "model.ckpt-0.*")):
      shutil.copy(path, cfg.model_dir)
    with open(os.path.join(cfg.model_dir, "checkpoint"), "w", encoding="utf-8") as f:
      f.write('model_checkpoint_path: "model.ckpt-0"\n')


def _summary_scalars(model_dir):
  values = {}
  for name in sorted(os.listdir(model_dir)):
    if name.startswith("events.out.tfevents"):
      for event in tf.compat.v1.train.summary_iterator(os.path.join(model_dir, name)):
        for v in event.summary.value:
          if v.HasField("simple_value"):
            values.setdefault(v.tag, float(v.simple_value))  # the first step's
  return values


@pytest.mark.parametrize("size", SIZES)
def test_in_graph_step_equals_gan_estimator_step_from_the_same_checkpoint(tmp_path, monkeypatch,
                                                                         size):
  common = dict(max_steps=1, save_checkpoints_steps=1, save_summary_steps=1, **size)
  if size.get("model") == "attngan":
    common["damsm_dir"] = str(tmp_path / "damsm")
  ref = tiny_config(tmp_path / "gan_estimator", engine="gan_estimator", **common)
  fast = ref.replace(model_dir=str(tmp_path / "in_graph"), engine="in_graph")
  start_dir = str(tmp_path / "start")
  if ref.model == "attngan":  # its frozen DAMSM and each run's vocabulary
    write_random_damsm(ref)
    for cfg in (ref, fast, ref.replace(model_dir=start_dir)):
      prepare_run_data(cfg)

  hook_losses = []  # what each TF-GAN hook's session.run returned: its loss before the update

  def recording_before_run(self, run_context):
    for _ in range(self._train_steps):  # pylint: disable=protected-access
      hook_losses.append(run_context.session.run(self._train_ops))  # pylint: disable=protected-access
  monkeypatch.setattr(tfgan_train.RunTrainOpsHook, "before_run", recording_before_run)

  # graph.pbtxt (a text dump of each train graph, written by the CheckpointSaverHook) is not
  # compared here; not writing it saves about a sixth of the test's time.
  monkeypatch.setattr(basic_session_run_hooks.training_util, "write_graph",
                      lambda *args, **kwargs: None)

  tf.keras.utils.set_random_seed(0)
  build_estimator(ref.replace(model_dir=start_dir, max_steps=1)).train(
      _same_element_input_fn(ref), max_steps=1, hooks=[_StopOnceCheckpointZeroIsSaved()])
  assert tf.train.latest_checkpoint(start_dir).endswith("model.ckpt-0")  # and no step ran
  _converge_spectral_norm_vectors(start_dir)
  _start_from(start_dir, ref, fast)
  hook_losses.clear()
  build_estimator(ref).train(_same_element_input_fn(ref), max_steps=1)
  build_estimator(fast).train(_same_element_input_fn(fast), max_steps=1)

  assert len(hook_losses) == 2  # TF-GAN's G hook, then its D hook
  d_loss_ref = float(np.ravel(hook_losses[1])[0])
  d_loss_fast = _summary_scalars(fast.model_dir)["loss/discriminator"]
  assert d_loss_fast == pytest.approx(d_loss_ref, rel=1e-5, abs=1e-6)

  _assert_same_step(os.path.join(ref.model_dir, "model.ckpt-0"),
                    os.path.join(ref.model_dir, "model.ckpt-1"),
                    os.path.join(fast.model_dir, "model.ckpt-1"))


def _assert_same_step(start_path, ref_path, fast_path):
  """The checkpoints after one step of two engines from `start_path` hold the same gradients
  (Adam's first slots), weights and G's batch-norm moving statistics (sn_u not compared: see the
  module docstring)."""
  start = _variables(start_path)
  after_ref = _variables(ref_path)
  after_fast = _variables(fast_path)
  assert set(after_ref) == set(after_fast)
  for net, slot in (("Generator", "generator_adam"), ("Discriminator", "discriminator_adam")):
    names = [n for n in after_ref if n.startswith(net + "/") and n.endswith("/" + slot)]
    assert len(names) > 10
    scale = max(float(np.abs(after_ref[n]).max()) for n in names)
    assert scale > 1e-4  # real gradients, not zeros compared with zeros
    for n in names:
      np.testing.assert_allclose(after_fast[n], after_ref[n], rtol=1e-4, atol=1e-5 * scale,
                                 err_msg=f"gradient {n}")
  # Weights: Adam's first step is lr * g / (|g| + eps), so an entry whose gradient is round-off
  # (a bias in front of batch norm: exactly 0 in exact arithmetic) moves by +-lr on either side
  # at random. Entries with a gradient above round-off must move identically.
  for net, slot in (("Generator", "generator_adam"), ("Discriminator", "discriminator_adam")):
    names = [n[:-len("/" + slot)] for n in after_ref if n.endswith("/" + slot)]
    scale = max(float(np.abs(after_ref[n + "/" + slot]).max()) for n in names)
    for n in names:
      real = np.abs(after_ref[n + "/" + slot]) > 1e-4 * scale
      np.testing.assert_allclose(after_fast[n][real], after_ref[n][real], rtol=1e-5, atol=1e-6,
                                 err_msg=f"weight {n}")
  moved = [n for n in after_ref if n.endswith("/moving_mean")
           and not np.array_equal(after_ref[n], start[n])]
  assert moved  # batch-norm statistics (SAGAN: the G update's; LadaGAN: D's) did update
  # D's moving statistics are not compared: D's real and fake calls of one sub-step update them
  # in no fixed order on either engine (two moving averages do not commute: they differ by about
  # (1 - decay)^2 of the two batches' difference; LadaGAN's down_0/skip_bn failed once at 1e-4),
  # and no D call ever runs in inference mode, so nothing reads them (as training_step_test).
  for n in [n for n in after_ref if "/moving_" in n and not n.startswith("Discriminator/")]:
    np.testing.assert_allclose(after_fast[n], after_ref[n], rtol=1e-5, atol=1e-6,
                               err_msg=f"batch-norm statistic {n}")


def _first_half_twice_input_fn(cfg):
  """TPUGANEstimator's input: the first batch, forever, its second half (the G sub-step's rows)
  set to its first (the D sub-step's)."""
  inner = make_train_input_fn(cfg, dataset_fn=_dataset_fn)

  def first_half_twice(*batch):
    def twice(t):
      half = t.shape[0] // 2
      return tf.concat([t[:half], t[:half]], 0)
    return tf.nest.map_structure(twice, batch)

  def input_fn(params=None):
    return inner(params).take(1).map(first_half_twice).cache().repeat()
  return input_fn


# TPUGANEstimator's own step (D first, a draw per sub-step, G's train op with both sub-steps' G BN
# updates): the in-graph engine with the same step flags, fed the same rows in each sub-step.
TPU_CASES = [
    pytest.param(dict(gf_dim=2, df_dim=4, z_dim=4, batch_size=2, attention_resolution=8,
                      step_order="discriminator_first", generator_bn_updates="both_steps"),
                 id="sagan"),
    pytest.param(dict(YLG_TINY, step_order="discriminator_first",
                      generator_bn_updates="both_steps"), id="ylg_sagan"),
    pytest.param(dict(LADAGAN_TINY, step_order="discriminator_first",
                      generator_bn_updates="both_steps"), id="ladagan"),
]


@pytest.mark.slow
@pytest.mark.parametrize("size", TPU_CASES)
def test_tpu_gan_estimator_step_equals_in_graph_step_from_the_same_checkpoint(tmp_path, size):
  common = dict(max_steps=1, save_checkpoints_steps=1, save_summary_steps=1, **size)
  tpu = tiny_config(tmp_path / "tpu", use_tpu=True, **common)
  fast = tpu.replace(model_dir=str(tmp_path / "in_graph"), use_tpu=False)
  tf.keras.utils.set_random_seed(0)
  start_dir = str(tmp_path / "start")
  build_estimator(fast.replace(model_dir=start_dir)).train(
      _same_element_input_fn(fast), max_steps=1, hooks=[_StopOnceCheckpointZeroIsSaved()])
  _converge_spectral_norm_vectors(start_dir)
  _start_from(start_dir, tpu, fast)
  build_estimator(tpu).train(_first_half_twice_input_fn(tpu), max_steps=1)
  build_estimator(fast).train(_same_element_input_fn(fast), max_steps=1)
  _assert_same_step(os.path.join(start_dir, "model.ckpt-0"),
                    os.path.join(tpu.model_dir, "model.ckpt-1"),
                    os.path.join(fast.model_dir, "model.ckpt-1"))
