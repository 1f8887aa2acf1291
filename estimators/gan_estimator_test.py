"""Training inside TF-GAN's GANEstimator: the DESIGN.md traps, EMA, NaN handling, TPU path."""
import numpy as np
import pytest
import tensorflow as tf

from estimators import experiment, export
from estimators.engines import model_pieces, plan, train_op
from estimators.engines.input_fn import make_train_input_fn, tpu_input_context
from estimators.losses import NonFiniteLossError
from estimators.models import get_model
from estimators.networks import make_discriminator, network_for_graph
from estimators.engines.optimizers import EMA_SUFFIX
from estimators.testing import tiny_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  cfg = tiny_config(tmp_path_factory.mktemp("est"), max_steps=40, save_checkpoints_steps=40,
                    ema_decay=0.9)
  ckpt = experiment.run_train(cfg)
  return cfg, tf.train.load_checkpoint(ckpt)


def _normalised_sigma(reader, kernel_name):
  """Largest singular value of kernel / sigma(u), sigma from one power iteration on stored u."""
  w = reader.get_tensor(kernel_name)
  w = w.reshape(-1, w.shape[-1])
  u = reader.get_tensor(kernel_name.rsplit("/", 1)[0] + "/sn_u")
  v = u @ w.T
  v /= np.linalg.norm(v)
  u2 = v @ w
  u2 /= np.linalg.norm(u2)
  sigma = (v @ w @ u2.T).item()
  return np.linalg.svd(w / sigma, compute_uv=False)[0]


def test_every_spectrally_normalised_kernel_has_unit_spectral_norm(trained):
  _, reader = trained
  names = reader.get_variable_to_shape_map()
  sn_layers = [n[: -len("/sn_u")] for n in names if n.endswith("/sn_u")]
  assert len(sn_layers) > 30  # every conv, dense and embedding of both networks
  for layer in sn_layers:
    kernel = layer + ("/embeddings" if layer.endswith("d_embedding") else "/kernel")
    if kernel.endswith("/embeddings"):
      w = reader.get_tensor(kernel).T
      sigma_true = np.linalg.svd(w, compute_uv=False)[0]
      u = reader.get_tensor(layer + "/sn_u")
      v = u @ w.T
      v /= np.linalg.norm(v)
      u2 = v @ w
      est = (v @ w @ (u2 / np.linalg.norm(u2)).T).item()
      assert abs(sigma_true / est - 1.0) < 0.05, layer
    else:
      assert abs(_normalised_sigma(reader, kernel) - 1.0) < 0.05, layer


def test_batch_norm_moving_statistics_follow_the_decay_recurrence_over_each_steps_moments(
    tmp_path, monkeypatch):
  """Records the BN input x whenever (and only when) a moving-statistics update runs, then
  checks the checkpointed moving mean / variance after 3 steps against the recurrence
  m_k = d m_(k-1) + (1 - d) mean(x_k) (variance: biased, as tf.nn.moments) in numpy from 0 and
  1: one update per layer per step, with the moments of the batch that step's G update used, for
  every BN layer in the checkpoint (DESIGN.md trap 3: they move at all)."""
  from tfgan_attention import batch_norm  # pylint: disable=import-outside-toplevel
  inputs = {}    # id of the moments' mean tensor -> the BN input x
  recorded = {}  # moving_mean variable name -> [x of each update, in order]
  real_moments, real_register = batch_norm.batch_moments, batch_norm._register_updates  # pylint: disable=protected-access

  def moments(x, axes, cross_replica=True):
    mean, var = real_moments(x, axes, cross_replica)
    inputs[id(mean)] = x
    return mean, var

  def register(updates):
    # updates[0] is moving_mean.assign_sub((moving_mean - mean) * (1 - d)): find `mean`'s x
    name = updates[0].inputs[0].op.name
    diff = updates[0].inputs[1].op.inputs[0]   # (moving_mean - mean)
    x = inputs[id(diff.op.inputs[1])] if id(diff.op.inputs[1]) in inputs else None
    assert x is not None, name

    def record(value):
      recorded.setdefault(name, []).append(value.copy())
      return np.float32(0)
    marker = tf.numpy_function(record, [tf.cast(x, tf.float32)], tf.float32)
    with tf.control_dependencies([marker]):
      updates = [tf.group(u) for u in updates]
    real_register(updates)
  monkeypatch.setattr(batch_norm, "batch_moments", moments)
  monkeypatch.setattr(batch_norm, "_register_updates", register)
  decay, steps = 0.5, 3
  cfg = tiny_config(tmp_path, max_steps=steps, save_checkpoints_steps=steps, bn_decay=decay)
  reader = tf.train.load_checkpoint(experiment.run_train(cfg))
  names = reader.get_variable_to_shape_map()
  assert sorted(recorded) == sorted(n for n in names if n.endswith("moving_mean"))
  assert len(recorded) == 7  # 3 G blocks x 2 CBN + the final BN
  for name, xs in recorded.items():
    assert len(xs) == steps, (name, len(xs))  # exactly one update per step
    mean, variance = np.zeros(xs[0].shape[-1]), np.ones(xs[0].shape[-1])
    for x in xs:
      x = x.astype(np.float64).reshape(-1, x.shape[-1])
      mean = decay * mean + (1 - decay) * x.mean(0)
      variance = decay * variance + (1 - decay) * x.var(0)
    np.testing.assert_allclose(reader.get_tensor(name), mean, rtol=1e-4, atol=1e-6, err_msg=name)
    variance_name = name[: -len("moving_mean")] + "moving_variance"
    np.testing.assert_allclose(reader.get_tensor(variance_name), variance, rtol=1e-4, atol=1e-6,
                               err_msg=variance_name)
    # moved from the initial 0 and 1 by far more than the tolerance above
    assert np.abs(mean).max() > 1e-2 and np.abs(variance - 1).max() > 1e-2, name
    assert np.abs(xs[0] - xs[1]).max() > 1e-3  # steps saw different batches


def _power_iteration(u, kernel):
  w = kernel.reshape(-1, kernel.shape[-1])
  v = u @ w.T
  v /= np.linalg.norm(v)
  u = v @ w
  return u / np.linalg.norm(u)


def test_spectral_norm_calls_within_a_step_are_chained_in_tfgan_call_order(tmp_path):
  """The estimator graph's D is called twice per step (TF-GAN's gan_model: fake data first, then
  real). Each call must read the u the previous call wrote: fetching D(fake) alone runs one
  power iteration of every D layer's u; fetching D(real) alone runs two, D(fake)'s then its
  own. Unchained, D(real) would read the initial u (one iteration) or race with D(fake)'s write.
  (README words it as D(fake) reading D(real)'s u; TF-GAN 2.1 calls D(fake) first.)"""
  cfg = tiny_config(tmp_path)
  with tf.Graph().as_default():
    features, real = tf.compat.v1.data.make_one_shot_iterator(
        make_train_input_fn(cfg)()).get_next()
    gan_model = train_op.build_gan_model(
        model_pieces.make_pieces(plan.resolve(cfg)), real, features, tf.estimator.ModeKeys.TRAIN)
    discriminator, created = network_for_graph("discriminator", cfg)
    assert not created  # the very network both calls used
    layers = [m for m in discriminator.submodules if hasattr(m, "normalized_kernel")]
    assert len(layers) > 10
    kernels = [layer.kernel for layer in layers]
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      start = sess.run([layer.u for layer in layers])
      weights = sess.run(kernels)
      once = [_power_iteration(u, w) for u, w in zip(start, weights)]
      twice = [_power_iteration(u, w) for u, w in zip(once, weights)]
      for fetch, expected in ((gan_model.discriminator_gen_outputs, once),
                              (gan_model.discriminator_real_outputs, twice)):
        sess.run([layer.u.assign(u) for layer, u in zip(layers, start)])
        sess.run(fetch)
        for layer, u, want, u0 in zip(layers, sess.run([l.u for l in layers]), expected, start):
          np.testing.assert_allclose(u, want, atol=2e-5, err_msg=layer.name)
        np.testing.assert_array_equal(sess.run(kernels[0]), weights[0])  # no update ran
  # The two iterations are told apart: u moves by far more than the tolerance between them
  # (but for the final linear layer, whose single-output u is always 1).
  moved = [np.abs(a - b).max() for a, b in zip(once, twice) if a.size > 1]
  assert len(moved) == len(once) - 1 and min(moved) > 1e-3, moved


def test_discriminator_has_exactly_one_set_of_variables(trained):
  cfg, reader = trained
  names = [n for n in reader.get_variable_to_shape_map()
           if n.startswith("Discriminator/") and "adam" not in n]
  disc = make_discriminator(cfg)
  disc(tf.zeros([1, 32, 32, 3]), tf.zeros([1], tf.int32))
  expected = sorted("Discriminator/" + v.name.split(":")[0] for v in disc.variables)
  assert sorted(names) == expected
  assert not [n for n in reader.get_variable_to_shape_map() if "discriminator_1" in n]


def test_ema_shadows_are_checkpointed_and_lag_the_weights(trained, tmp_path):
  _, reader = trained
  names = reader.get_variable_to_shape_map()
  kernel = "Generator/generator/g_block1/snconv1/kernel"
  shadow = reader.get_tensor(f"{kernel}/{EMA_SUFFIX}")
  live = reader.get_tensor(kernel)
  assert shadow.shape == live.shape
  assert 1e-6 < np.abs(shadow - live).max()
  assert not [n for n in names if n.startswith("Discriminator/") and EMA_SUFFIX in n]

  # The shadow is the decay recurrence over the weights of successive steps: a checkpoint after
  # every step gives w_0..w_4, and shadow_k = d shadow_{k-1} + (1 - d) w_k from shadow_0 = w_0.
  decay, steps = 0.5, 4  # a low decay: each step moves the shadow by half the way
  cfg = tiny_config(tmp_path, max_steps=steps, save_checkpoints_steps=1,
                    keep_checkpoint_max=steps + 1, ema_decay=decay)
  experiment.run_train(cfg)
  readers = [tf.train.load_checkpoint(f"{cfg.model_dir}/model.ckpt-{k}") for k in range(steps + 1)]
  shadowed = sorted(n[: -len(EMA_SUFFIX) - 1] for n in readers[0].get_variable_to_shape_map()
                    if n.endswith(EMA_SUFFIX))
  trainable = sorted(n for n in readers[0].get_variable_to_shape_map()
                     if n.startswith("Generator/") and "adam" not in n and EMA_SUFFIX not in n
                     and not n.endswith(("moving_mean", "moving_variance", "sn_u")))
  assert shadowed == trainable and len(shadowed) > 20  # every trained G variable, nothing else
  for name in shadowed:
    expected = readers[0].get_tensor(name)
    np.testing.assert_array_equal(readers[0].get_tensor(f"{name}/{EMA_SUFFIX}"), expected)
    moved = 0.0
    for k in range(1, steps + 1):
      live = readers[k].get_tensor(name)
      expected = decay * expected + (1 - decay) * live
      np.testing.assert_allclose(readers[k].get_tensor(f"{name}/{EMA_SUFFIX}"), expected,
                                 rtol=1e-5, atol=1e-7, err_msg=f"{name} at step {k}")
      moved = max(moved, np.abs(live - readers[0].get_tensor(name)).max())
    assert moved > 1e-5, name  # the weights moved, so the recurrence was put to the test


@pytest.mark.parametrize("engine, batches_per_step", [("gan_estimator", 3), ("in_graph", 1)])
def test_nan_loss_stops_with_clear_error_and_keeps_last_good_checkpoint(tmp_path, engine,
                                                                        batches_per_step):
  cfg = tiny_config(tmp_path, save_checkpoints_steps=4, max_steps=12, engine=engine)

  def dataset_fn():
    # GANEstimator draws 3 batches a step (G hook, D hook, logged loss), the in-graph step 1:
    # the first 4 steps read only zeros, the fifth NaNs.
    images = np.zeros([4 * batches_per_step * 8 + 64, 32, 32, 3], np.float32)
    images[4 * batches_per_step * 8:] = np.nan
    return tf.data.Dataset.from_tensor_slices(
        {"images": images, "labels": np.zeros([len(images)], np.int32)})
  # Keep the order so the NaNs arrive after the first checkpoint.
  import data as data_pkg  # pylint: disable=import-outside-toplevel
  original = data_pkg.batch_pipeline
  data_pkg.batch_pipeline = lambda d, b, **kw: d.batch(b, drop_remainder=True)
  try:
    with pytest.raises(NonFiniteLossError, match="last good checkpoint is .*model.ckpt-4"):
      experiment.run_train(cfg, dataset_fn=dataset_fn)
  finally:
    data_pkg.batch_pipeline = original
  last = tf.train.latest_checkpoint(cfg.model_dir)
  assert export.checkpoint_step(last) == 4
  reader = tf.train.load_checkpoint(last)
  for name in reader.get_variable_to_shape_map():
    value = reader.get_tensor(name)
    if np.issubdtype(np.asarray(value).dtype, np.floating):
      assert np.isfinite(value).all(), name


@pytest.mark.parametrize("which", ["discriminator", "generator"])
def test_inf_loss_stops_with_the_same_message_and_keeps_last_good_checkpoint(tmp_path, monkeypatch,
                                                                              which):
  """An Inf loss (not NaN) from global step 6 on: the same stop as NaN, naming the loss that
  failed. The checkpoint saver reads the global step in the same session.run that increments it,
  before or after the increment (no ordering between them), so the step-4 checkpoint is written
  as model.ckpt-4 or, one step later, model.ckpt-5: both precede the first Inf step (6)."""
  cfg = tiny_config(tmp_path, save_checkpoints_steps=4, max_steps=12)
  spec = get_model(cfg.model)
  original = getattr(spec, f"{which}_loss")

  def inf_from_step_6(cfg_, gan_model):
    loss, scalars = original(cfg_, gan_model)
    step = tf.compat.v1.train.get_or_create_global_step()
    return loss + tf.where(step >= 6, np.inf, 0.0), scalars  # +inf: not a NaN anywhere
  monkeypatch.setattr(spec, f"{which}_loss", inf_from_step_6)
  with pytest.raises(NonFiniteLossError,
                     match=f"^the {which} loss became NaN or Inf; training stopped before "
                           r"applying that step\. The last good checkpoint is .*model\.ckpt-[45]\. "):
    experiment.run_train(cfg)
  last = tf.train.latest_checkpoint(cfg.model_dir)
  assert export.checkpoint_step(last) in (4, 5)
  reader = tf.train.load_checkpoint(last)
  for name in reader.get_variable_to_shape_map():
    value = reader.get_tensor(name)
    if np.issubdtype(np.asarray(value).dtype, np.floating):
      assert np.isfinite(value).all(), name


def test_training_data_that_yields_nothing_is_an_error_not_a_silent_step_zero(tmp_path):
  cfg = tiny_config(tmp_path, max_steps=4)

  def dataset_fn():  # e.g. every image of the set skipped as corrupt
    return tf.data.Dataset.from_tensor_slices(
        {"images": np.zeros([0, 32, 32, 3], np.float32), "labels": np.zeros([0], np.int32)})
  with pytest.raises(experiment.NoTrainingDataError,
                     match=r"no progress \(step 0\): the training data of --dataset=digits "
                           r"yielded no example\.$"):
    experiment.run_train(cfg, dataset_fn=dataset_fn)


def test_each_tpu_host_reads_its_own_shard_and_draws_its_own_noise(tmp_path, monkeypatch):
  class FakeTPUContext:  # what TPUEstimator passes to host 1 of 2 (per-host input)
    def current_input_fn_deployment(self):
      return "/job:worker/task:1/device:CPU:0", 1, 2, 4
  import data as data_pkg  # pylint: disable=import-outside-toplevel
  seen = {}
  real_load = data_pkg.load

  def load(name, **kwargs):
    seen.update(kwargs)
    return real_load(name, **kwargs)
  monkeypatch.setattr(data_pkg, "load", load)
  cfg = tiny_config(tmp_path)
  input_fn = make_train_input_fn(cfg)
  host1 = next(iter(input_fn(params={"batch_size": 4, "context": FakeTPUContext()})))
  context = seen["input_context"]
  assert (context.num_input_pipelines, context.input_pipeline_id,
          context.num_replicas_in_sync) == (2, 1, 1)
  host0 = next(iter(input_fn(params={"batch_size": 4})))        # CPU: no context, pipeline 0
  assert seen["input_context"] is None
  assert host1[0]["noise"].shape == (4, cfg.hparams.z_dim)
  assert not np.allclose(host1[0]["noise"], host0[0]["noise"])   # per-pipeline noise streams
  assert tpu_input_context({"batch_size": 4}) is None


def _first_batches(cfg, count):
  batches = []
  for features, _ in make_train_input_fn(cfg)().take(count):
    batches.append({k: v.numpy() for k, v in features.items()})
  return batches


def test_resumed_run_draws_new_noise_and_a_fresh_run_the_same(tmp_path):
  """The same command from scratch draws the same noise and fake labels; resumed from a step-6
  checkpoint it draws new ones, none equal to the 18 batches the first 6 steps could have read
  (3 per step on the hook path)."""
  first = _first_batches(tiny_config(tmp_path / "a"), 18)
  again = _first_batches(tiny_config(tmp_path / "b"), 18)
  for x, y in zip(first, again):
    assert sorted(x) == ["g_labels", "g_noise", "labels", "noise"]
    for key in x:
      np.testing.assert_array_equal(x[key], y[key])
  resumed_dir = tmp_path / "c"
  with tf.Graph().as_default():  # what the estimator finds in model_dir when it resumes
    step = tf.compat.v1.train.get_or_create_global_step()
    with tf.compat.v1.Session() as sess:
      sess.run(step.assign(6))
      tf.compat.v1.train.Saver().save(sess, str(resumed_dir / "model.ckpt"), global_step=6)
  assert tf.train.latest_checkpoint(str(resumed_dir)).endswith("model.ckpt-6")
  resumed = _first_batches(tiny_config(resumed_dir), 2)
  seen = np.concatenate([b[k] for b in first for k in ("noise", "g_noise")])  # [288, z]
  for batch in resumed:
    for key in ("noise", "g_noise"):
      # nearest first-segment row to each resumed row: far apart, not replayed
      distances = np.abs(batch[key][:, None, :] - seen[None]).max(-1)
      assert distances.min() > 0.1, key
    assert (batch["labels"] != first[0]["labels"]).any()
  np.testing.assert_array_equal(_first_batches(tiny_config(resumed_dir), 1)[0]["noise"],
                                resumed[0]["noise"])  # and resuming twice draws the same


TPU_STEP = dict(use_tpu=True, step_order="discriminator_first", generator_bn_updates="both_steps")


def test_tpu_gan_estimator_trains_evaluates_and_exports_on_cpu(tmp_path):
  # TPUGANEstimator's own step (D first; G's BN updates of both sub-steps): SAGAN declares
  # GANEstimator's, which it cannot run (training_step_test).
  cfg = tiny_config(tmp_path, **TPU_STEP, max_steps=2, save_summary_steps=1,
                    num_eval_samples=100)
  ckpt = experiment.run_train(cfg)
  assert export.checkpoint_step(ckpt) == 2
  record = experiment.run_eval(cfg)
  assert record["step"] == 2 and np.isfinite(record["metrics"]["digits_fid"])
  serve = tf.saved_model.load(experiment.run_export(cfg)).signatures["serving_default"]
  noise, labels = tf.random.stateless_normal([3, 16], seed=[1, 2]), tf.constant([1, 2, 7])
  served = serve(noise=noise, labels=labels)["images"].numpy()
  assert served.shape == (3, 32, 32, 3)
  spec = get_model(cfg.model)  # the checkpoint's generator, restored eagerly, on the same inputs
  generator = export.restore_generator(cfg, ckpt, use_ema=experiment.use_ema(cfg, ckpt))
  expected = spec.images(spec.generate(cfg, generator, {"noise": noise, "labels": labels},
                                       training=False)).numpy()
  assert np.abs(expected).max() > 0.05  # not a blank image that any export would match
  np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-5)


def test_tpu_per_core_batch_is_split_in_two_so_each_sub_step_sees_the_batch(tmp_path,
                                                                           monkeypatch):
  """TPUGANEstimator on CPU (1 core): TF-GAN asks the input_fn for 2 x batch_size per core
  (its effective batch for a D and a G sub-step) and splits it in two, so the D sub-step and the
  G sub-step each see batch_size / cores examples, as the other engines' steps do. (README
  says "per-core batch batch_size / cores, split again in two", which would give each sub-step
  half of that: it is the split halves that are batch_size / cores.)"""
  seen = {"input_batch": [], "real": [], "noise": []}
  make_input, make_d = make_train_input_fn, model_pieces.make_discriminator_fn

  def recording_input_fn(cfg_, dataset_fn=None):
    input_fn = make_input(cfg_, dataset_fn)

    def wrapped(params=None, input_context=None):
      seen["input_batch"].append(params["batch_size"])
      return input_fn(params=params, input_context=input_context)
    return wrapped

  def recording_discriminator_fn(cfg_):
    discriminator_fn = make_d(cfg_)

    def wrapped(data, generator_inputs, mode):
      seen["real"].append(data["images"].shape[0])
      seen["noise"].append(generator_inputs["noise"].shape[0])
      return discriminator_fn(data, generator_inputs, mode)
    return wrapped
  monkeypatch.setattr(experiment, "make_train_input_fn", recording_input_fn)
  monkeypatch.setattr(model_pieces, "make_discriminator_fn", recording_discriminator_fn)
  cfg = tiny_config(tmp_path, **TPU_STEP, max_steps=1, save_summary_steps=1, batch_size=8)
  experiment.run_train(cfg)
  assert seen["input_batch"] == [16]  # one host, one core: 2 x 8
  # 2 sub-steps (D, then G) x 2 discriminator calls (real, fake), each on a batch of 8
  assert seen["real"] == [8, 8, 8, 8] and seen["noise"] == [8, 8, 8, 8]


def test_tensorboard_has_losses_d_outputs_gates_speed_grids_and_attention_maps(trained):
  cfg, _ = trained
  import glob  # pylint: disable=import-outside-toplevel
  tags = set()
  for path in glob.glob(f"{cfg.model_dir}/events.out.tfevents.*"):
    for event in tf.compat.v1.train.summary_iterator(path):
      tags.update(v.tag for v in event.summary.value)
  expected = {"loss/generator", "loss/discriminator",
              "discriminator/mean_real_output",
              "discriminator/mean_fake_output", "attention/generator_gate",
              "attention/discriminator_gate", "global_step/sec", "fixed_noise_grid/image",
              "attention/generator_query_maps/image", "attention/generator_saliency/image"}
  assert expected <= tags, expected - tags


def _last_image(model_dir, tag):
  import glob  # pylint: disable=import-outside-toplevel
  found = None
  for path in sorted(glob.glob(f"{model_dir}/events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == tag:
          found = value.image.encoded_image_string
  return tf.io.decode_png(found).numpy().astype(np.int64)


def _reaches(pixels, low):
  """True when some pixel [..., 3] uint8 of an overlay (0.5 grey + 0.5 jet(x)) has x at the top
  (jet (0.5, 0, 0): R - B = 64, G = B) or, `low`, at the bottom (jet (0, 0, 0.5): B - R = 64,
  G = R) of its map; grey adds the same to every channel."""
  r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
  if low:
    return bool(np.any((np.abs(g - r) <= 1) & (np.abs(b - r - 64) <= 1)))
  return bool(np.any((np.abs(g - b) <= 1) & (np.abs(r - b - 64) <= 1)))


def test_tensorboard_attention_is_drawn_over_the_sample_per_map_normalised(trained):
  """The attention images are summaries' drawing: 128 px tiles, jet over the grey sample, each
  map normalised on its own so that it reaches both ends of the colour map."""
  cfg, _ = trained
  t = 128  # 32 px samples, 1 head; query grid 16x16 (8 px cells), key grid 8x8 (16 px cells)
  saliency = _last_image(cfg.model_dir, "attention/generator_saliency/image")
  queries = _last_image(cfg.model_dir, "attention/generator_query_maps/image")
  assert saliency.shape == (t, 2 * t, 3)  # the sample, then the head's saliency
  assert queries.shape == (t, 6 * t, 3)  # the marked sample, then the 5 query points' maps
  assert _reaches(saliency[:, t:], low=False) and _reaches(saliency[:, t:], low=True)
  assert not _reaches(saliency[:, :t], low=False)  # the sample itself: no heat
  centres = [(36, 36), (36, 100), (68, 68), (100, 36), (100, 100)]  # DEFAULT_QUERY_POINTS
  colours = [(255, 255, 0), (0, 255, 0), (0, 255, 255), (255, 0, 255), (255, 255, 255)]
  for i, ((r, c), colour) in enumerate(zip(centres, colours)):
    np.testing.assert_array_equal(queries[r, c], colour)  # every point on the sample
    tile = queries[:, (1 + i) * t:(2 + i) * t]
    np.testing.assert_array_equal(tile[r, c], colour)  # and its own on its map
    outside = np.ones((t, t), bool)
    outside[r - 5:r + 6, c - 5:c + 6] = False
    assert _reaches(tile[outside], low=False) and _reaches(tile[outside], low=True)


def test_same_seed_same_initial_weights_other_seed_other_weights(tmp_path):
  def initial(seed, name):
    cfg = tiny_config(tmp_path / name, seed=seed, max_steps=1)
    experiment.run_train(cfg)
    reader = tf.train.load_checkpoint(f"{cfg.model_dir}/model.ckpt-0")
    return [reader.get_tensor(n) for n in ("Generator/generator/g_snconv_last/kernel",
                                           "Discriminator/discriminator/d_sn_linear/kernel")]
  first, again, other = initial(3, "a"), initial(3, "b"), initial(4, "c")
  for x, y, z in zip(first, again, other):
    np.testing.assert_array_equal(x, y)
    assert np.abs(x - z).max() > 1e-3
