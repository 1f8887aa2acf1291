"""Multi-device and multi-worker training through tf.distribute (estimators/engines/:
distribute.py, train_op.py, cluster.py).

Logical CPU devices must be made before TensorFlow initialises, so the mirrored comparisons and
the two-worker cluster run in subprocesses; the rest runs in the test process.
"""
import dataclasses
import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from estimators import experiment, export
from estimators.engines import cluster, plan
from estimators.engines.train_op import resample_noise
from estimators.models import get_model
from estimators import testing
from estimators.testing import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _validate(cfg):
  plan.resolve(cfg)


def test_global_batch_splits_evenly_or_fails_with_the_fix():
  assert cluster.per_replica_batch_size(256, 8) == 32
  with pytest.raises(cluster.DistributionError, match="must divide evenly over the 4 "
                     "replicas; use a multiple of 4 .e.g. 8."):
    cluster.per_replica_batch_size(10, 4)


def test_too_many_devices_and_missing_or_bad_tf_config_are_clear_errors(tmp_path, monkeypatch):
  with pytest.raises(cluster.DistributionError, match="--num_devices=99 but only 1"):
    _validate(tiny_config(tmp_path, distribution="mirrored", num_devices=99))
  monkeypatch.delenv("TF_CONFIG", raising=False)
  with pytest.raises(cluster.DistributionError, match="needs TF_CONFIG"):
    _validate(tiny_config(tmp_path, distribution="multi_worker"))
  monkeypatch.setenv("TF_CONFIG", "{not json")
  with pytest.raises(cluster.DistributionError, match="not valid JSON"):
    _validate(tiny_config(tmp_path, distribution="multi_worker"))
  workers = {"worker": ["a:1", "b:1", "c:1"]}
  monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": workers,
                                              "task": {"type": "worker", "index": 1}}))
  assert cluster.expected_replicas(tiny_config(tmp_path, distribution="multi_worker")) == 3
  assert not cluster.is_chief()
  with pytest.raises(cluster.DistributionError, match="over the 3 replicas"):
    _validate(tiny_config(tmp_path, distribution="multi_worker", batch_size=8))
  monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": workers,
                                              "task": {"type": "worker", "index": 0}}))
  assert cluster.is_chief()


def element_draws(rows, z_dim, num_classes, seed):
  """(noise, labels) the model's training input_fn draws for examples `rows`."""
  cfg = tiny_config("unused", z_dim=z_dim, num_classes=num_classes)
  inputs = get_model(cfg.model).generator_inputs(cfg, rows, seed, real=None)
  return inputs["noise"], inputs["labels"]


def test_generator_inputs_depend_on_the_example_not_on_the_batch_split():
  seed = tf.constant([3, 4], tf.int64)
  noise, labels = element_draws(tf.range(8, dtype=tf.int64), 5, 10, seed)
  first, first_labels = element_draws(tf.range(4, dtype=tf.int64), 5, 10, seed)
  second, second_labels = element_draws(tf.range(4, 8, dtype=tf.int64), 5, 10, seed)
  np.testing.assert_array_equal(noise.numpy(), np.concatenate([first, second]))
  np.testing.assert_array_equal(labels.numpy(), np.concatenate([first_labels, second_labels]))
  other, _ = element_draws(tf.range(8, dtype=tf.int64), 5, 10, tf.constant([3, 5], tf.int64))
  assert np.abs(noise.numpy() - other.numpy()).min() > 0
  assert labels.dtype == tf.int32 and 0 <= labels.numpy().min() and labels.numpy().max() < 10
  big, _ = element_draws(tf.range(4000, dtype=tf.int64), 4, 10, seed)
  assert abs(big.numpy().mean()) < 0.05 and abs(big.numpy().std() - 1) < 0.05
  resampled = resample_noise({"noise": noise, "labels": labels, "g_noise": other,
                               "g_labels": labels + 1})
  assert set(resampled) == {"noise", "labels"}
  np.testing.assert_array_equal(resampled["noise"], other)
  np.testing.assert_array_equal(resampled["labels"], labels + 1)


def test_ladagan_augments_each_example_as_one_device_does(tmp_path):
  """LadaGAN's DiffAugment draws travel with the generator inputs, drawn per example like the
  noise: a replica's share of the global batch is augmented as one device augments those rows,
  the reals and the fakes each with their own draws."""
  cfg = tiny_config(tmp_path, model="ladagan", z_dim=8, g_dim="8,8,4", g_mlp_dim=8,
                    d_enc_dim="4,4", d_out_dim="4,4", diffaugment="color,translation,cutout")
  spec = get_model("ladagan")
  seed = tf.constant([3, 4], tf.int64)
  inputs = lambda first, last: spec.generator_inputs(
      cfg, tf.range(first, last, dtype=tf.int64), seed, real=None)
  whole, halves = inputs(0, 8), [inputs(0, 4), inputs(4, 8)]
  assert set(whole) == {"noise", "augment_real", "augment_fake"}
  for key, value in whole.items():
    np.testing.assert_array_equal(value.numpy(), np.concatenate([h[key] for h in halves]))
  images = tf.random.stateless_uniform([8, 32, 32, 3], [1, 2], -1, 1)
  discriminator = lambda x, training: tf.reduce_mean(x, [1, 2, 3])[:, None]

  def seen(data, inputs_, training=True):
    return spec.discriminate(cfg, discriminator, data, inputs_, training)["images"].numpy()
  reals = seen({"images": images}, whole)
  np.testing.assert_array_equal(reals, np.concatenate(
      [seen({"images": images[i:i + 4]}, h) for i, h in zip((0, 4), halves)]))
  fakes = seen({"images": images, "augment_draws": whole["augment_fake"]}, whole)
  assert np.abs(reals - fakes).max(axis=(1, 2, 3)).min() > 0.01  # their own draws
  assert np.abs(reals - images.numpy()).max(axis=(1, 2, 3)).min() > 0.01
  np.testing.assert_array_equal(seen({"images": images}, whole, training=False), images)


@pytest.mark.slow
def test_one_device_in_graph_step_trains_both_networks_and_updates_bn(tmp_path):
  """The one_device step equals the same step (the model's: G update, then D update) run without
  a strategy,
  from the same checkpoint on the same input batch: weights, BN moving statistics and Adam slots
  (the slots hold the gradients: Adam's first update is nearly scale-free, its slots are not)."""
  cfg = tiny_config(tmp_path / "one_device", distribution="one_device", max_steps=1,
                    save_checkpoints_steps=1, bn_decay=0.9)
  assert export.checkpoint_step(experiment.run_train(cfg)) == 1
  ref = dataclasses.replace(cfg, model_dir=str(tmp_path / "no_strategy"), distribution="none")
  os.makedirs(ref.model_dir)
  for path in glob.glob(f"{cfg.model_dir}/model.ckpt-0.*"):
    shutil.copy(path, ref.model_dir)
  tf.compat.v1.train.update_checkpoint_state(ref.model_dir, f"{ref.model_dir}/model.ckpt-0")
  # Both run the model's declared step (SAGAN: G first): the engine no longer picks the order.
  assert export.checkpoint_step(experiment.run_train(ref)) == 1
  start = tf.train.load_checkpoint(f"{cfg.model_dir}/model.ckpt-0")
  end = tf.train.load_checkpoint(f"{cfg.model_dir}/model.ckpt-1")
  expected = tf.train.load_checkpoint(f"{ref.model_dir}/model.ckpt-1")
  names = sorted(end.get_variable_to_shape_map())
  assert names == sorted(expected.get_variable_to_shape_map())
  for name in ("Generator/generator/g_snconv_last/kernel",
               "Discriminator/discriminator/d_sn_linear/kernel",
               "Generator/generator/g_bn/moving_mean",
               "Generator/generator/g_block1/cbn_0/cbn/moving_variance"):
    assert np.abs(end.get_tensor(name) - start.get_tensor(name)).max() > 1e-5, name
  assert end.get_tensor("global_step") == 1
  for name in names:
    np.testing.assert_allclose(end.get_tensor(name), expected.get_tensor(name), rtol=1e-6,
                               atol=1e-9, err_msg=name)  # bit-identical when measured


def _replica_check(tmp_path, cross_replica_bn, bn_decay=0.999):
  out = tmp_path / "result.json"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("TF_CONFIG", None)
  proc = subprocess.run(
      [sys.executable, "-m", "estimators.replica_check", "--cpu_devices=2", "--batch_size=8",
       f"--cross_replica_bn={int(cross_replica_bn)}", f"--bn_decay={bn_decay}",
       f"--root={tmp_path / 'runs'}",
       f"--json={out}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(out.read_text())


@pytest.mark.slow
def test_mirrored_two_devices_first_step_matches_one_device_with_the_same_global_batch(tmp_path):
  result = _replica_check(tmp_path, cross_replica_bn=True)
  one, multi = result["losses"]["one_device"], result["losses"]["multi"]
  assert set(one) == set(multi) and len(one) == 3  # D loss, G loss, the estimator's loss
  for tag, value in one.items():
    assert multi[tag] == pytest.approx(value, rel=1e-5, abs=1e-5), tag
  for net, grads in result["gradients"].items():  # Adam's first slot = the step's gradient
    assert grads["variables"] > 10 and grads["scale"] > 1e-3
    assert grads["relative"] < 1e-4, (net, grads)
  assert not result["missing_in_multi"]
  bn = result["bn_moving_statistics"]
  assert len(bn) >= 10
  for name, stats in bn.items():  # DESIGN trap 8: every replica's BN update ran
    assert stats["change"] > 1e-5, name
    assert stats["max_abs_diff"] < 1e-6, (name, stats)


@pytest.mark.slow
def test_mirrored_per_replica_bn_averages_both_replicas_updates(tmp_path):
  """Without cross-replica BN each replica normalises its half batch; its moving statistics
  are averaged. For the first BN layer (same input on both runs) the mean of the two halves'
  means is the global mean, and the mean of their variances is below the global variance."""
  result = _replica_check(tmp_path, cross_replica_bn=False, bn_decay=0.5)  # big steps
  first = "Generator/generator/g_block1/cbn_0/cbn/moving_"
  mean, var = (result["bn_moving_statistics"][first + k] for k in ("mean", "variance"))
  assert mean["change"] > 1e-5 and mean["max_abs_diff"] < 1e-6
  assert var["max_multi_minus_one"] < 1e-7  # never above the one-device (global) variance
  assert var["min_multi_minus_one"] < -1e-4  # and below it where the halves differ
  one, multi = result["losses"]["one_device"], result["losses"]["multi"]
  d_loss = "loss/discriminator"
  assert multi[d_loss] != pytest.approx(one[d_loss], rel=1e-5)  # per-replica BN is visible


def test_each_worker_reads_a_disjoint_shard_and_together_all_the_data(tmp_path, monkeypatch):
  """The training input_fn as the estimator calls it on worker i of 2 (an InputContext): each
  reads its own half of digits' training images, no image twice, none left out."""
  import data as data_pkg  # pylint: disable=import-outside-toplevel
  from estimators.engines.input_fn import make_train_input_fn  # pylint: disable=import-outside-toplevel
  loaded = []
  real_load = data_pkg.load
  monkeypatch.setattr(data_pkg, "load",
                      lambda name, **kwargs: loaded.append(real_load(name, **kwargs)) or loaded[-1])
  cfg = tiny_config(tmp_path, distribution="multi_worker")

  def images_read(input_context):
    make_train_input_fn(cfg)(input_context=input_context)
    return [e["images"].numpy().tobytes() for e in loaded[-1]]
  whole = images_read(None)
  shards = [images_read(tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i,
                                                   num_replicas_in_sync=2)) for i in range(2)]
  assert len(whole) > 1000 and abs(len(shards[0]) - len(shards[1])) <= 1
  assert not set(shards[0]) & set(shards[1])
  assert sorted(shards[0] + shards[1]) == sorted(whole)


def _elements(cfg, count, input_context=None):
  """The first `count` (features, labels) elements of the training input_fn, as numpy."""
  from estimators.engines.input_fn import make_train_input_fn  # pylint: disable=import-outside-toplevel
  ds = make_train_input_fn(cfg)(input_context=input_context).take(count)
  return [tf.nest.map_structure(lambda t: t.numpy(), e) for e in ds]


def _concat(parts):
  return tf.nest.map_structure(lambda *a: np.concatenate(a), *parts)


@pytest.mark.parametrize("pipelines,replicas", [(1, 2), (2, 2), (2, 4)])
def test_global_batch_input_gives_each_replica_its_rows_of_the_one_device_batch(
    tmp_path, pipelines, replicas):
  """--worker_input=global_batch: whatever the split (one pipeline feeding 2 replicas as
  mirrored does, 2 workers of one replica, 2 workers of 2), the replicas' elements of a step,
  put together in replica order, are the one-device batch of that step: the same real images
  and labels, the same noise and fake labels in both sub-steps' draws."""
  cfg = tiny_config(tmp_path, distribution="multi_worker", worker_input="global_batch")
  steps, local = 2, replicas // pipelines
  one = _elements(cfg, steps)
  per_pipeline = [_elements(cfg, steps * local, tf.distribute.InputContext(
      num_input_pipelines=pipelines, input_pipeline_id=p, num_replicas_in_sync=replicas))
                  for p in range(pipelines)]
  for step in range(steps):
    together = _concat([per_pipeline[p][step * local + r]
                        for p in range(pipelines) for r in range(local)])
    assert together[0]["noise"].shape == (8, 16)
    tf.nest.map_structure(np.testing.assert_array_equal, together, one[step])
  assert not np.array_equal(one[0][0]["noise"], one[1][0]["noise"])  # new draws each step
  assert not np.array_equal(one[0][0]["noise"], one[0][0]["g_noise"])  # and each sub-step


def test_sharded_input_still_draws_the_one_device_noise(tmp_path):
  """--worker_input=shard (the default): each of 2 workers reads its own shard, so the real
  images differ from one device's, but the generator inputs are the one-device draw of the
  global rows."""
  cfg = tiny_config(tmp_path, distribution="multi_worker")
  assert cfg.worker_input == "shard"
  one = _elements(cfg, 2)
  workers = [_elements(cfg, 2, tf.distribute.InputContext(
      num_input_pipelines=2, input_pipeline_id=p, num_replicas_in_sync=2)) for p in range(2)]
  for step in range(2):
    features = _concat([workers[p][step][0] for p in range(2)])
    tf.nest.map_structure(np.testing.assert_array_equal, features, one[step][0])
    images = np.concatenate([workers[p][step][1]["images"] for p in range(2)])
    assert images.shape == one[step][1]["images"].shape
    assert not np.array_equal(images, one[step][1]["images"])


def test_unknown_worker_input_fails_at_start(tmp_path):
  with pytest.raises(cluster.DistributionError, match="unknown worker_input 'all'; choose one "
                     "of .'shard', 'global_batch'."):
    _validate(tiny_config(tmp_path, worker_input="all"))


def test_non_chief_workers_write_their_own_bad_records_report(tmp_path, monkeypatch):
  from data import bad_records  # pylint: disable=import-outside-toplevel
  # A fresh count, as a worker process starts with (earlier tests in this process skipped some).
  monkeypatch.setattr(bad_records, "LOG", bad_records.BadRecordLog())
  cluster = {"worker": ["localhost:1", "localhost:2", "localhost:3"]}
  cfg = tiny_config(tmp_path, distribution="multi_worker")
  written = {}
  for index in (2, 0):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster,
                                                "task": {"type": "worker", "index": index}}))
    written[index] = os.path.basename(experiment.report_bad_records(cfg))
  assert written == {2: "bad_records.worker_2.json", 0: "bad_records.json"}
  assert sorted(f for f in os.listdir(tmp_path) if f.startswith("bad_records")) == [
      "bad_records.json", "bad_records.worker_2.json"]
  assert json.load(open(tmp_path / "bad_records.worker_2.json"))["total_skipped"] == 0


# Per model: run.py flags at tiny widths, from scratch (the SAGAN run, 3 steps, is the one the
# worker-level files are checked on); LadaGAN takes 2 steps of its declared step with R1 and
# DiffAugment on. Every model's two-worker step is compared with one device's in
# training_step_test (--worker_input=global_batch), so YLG-SAGAN and AttnGAN run there only.
# LadaGAN's workers run without oneDNN (_WORKER_ENV): with it, worker 0 segfaulted in its first
# training session.run in 1 of 8 runs here and once before (2026-12-07, machine loaded). The
# core dump: a null brgemm kernel called in oneDNN's
# brgemm_convolution_bwd_strided_t<avx512_core>::ker_base, under TensorFlow 2.15's
# MklConvCustomBackpropInputOp (Conv2DBackpropInput): a crash inside TensorFlow's oneDNN, not
# in this project's code, which would make this test fail at random. README "Several devices"
# (Multi-worker) gives users the same workaround.
_WORKER_RUNS = {
    "sagan": ["--max_steps=3", "--gf_dim=8", "--df_dim=8", "--z_dim=16", "--batch_size=8",
              "--save_checkpoints_steps=3"],
    "ladagan": ["--model=ladagan", "--image_size=32", "--z_dim=8", "--g_dim=8,8,4",
                "--g_mlp_dim=8", "--d_enc_dim=4,4", "--d_out_dim=4,4", "--batch_size=4",
                "--max_steps=2", "--save_checkpoints_steps=2"],
}
_WORKER_ENV = {"ladagan": {"TF_ENABLE_ONEDNN_OPTS": "0"}}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(_WORKER_RUNS))
def test_two_workers_on_loopback_train_together_and_write_one_set_of_checkpoints(tmp_path, name):
  model_dir = tmp_path / "run"
  steps = int(next(f for f in _WORKER_RUNS[name] if f.startswith("--max_steps="))[12:])
  codes, outputs = testing.run_loopback_workers(
      [sys.executable, "run.py", "--mode=train", "--distribution=multi_worker",
       f"--model_dir={model_dir}", "--save_summary_steps=1", *_WORKER_RUNS[name]],
      tmp_path, cwd=ROOT, env=dict(os.environ, **_WORKER_ENV.get(name, {})))
  assert codes == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
  # The chief's checkpoints are the run's; the other worker keeps the estimator's private copy
  # (read back if it is restarted) under tmp_worker_1.
  final = export.checkpoint_step(tf.train.latest_checkpoint(str(model_dir)))
  assert final == steps, final
  assert sorted(p for p in os.listdir(model_dir) if p.startswith("tmp_worker")) == ["tmp_worker_1"]
  assert os.path.exists(model_dir / "run_config.json")
  assert json.load(open(model_dir / "run_config.json"))["config"]["model"]["name"] == name
  # Each worker reports what its own shard skipped: the chief bad_records.json, worker 1 its own.
  assert sorted(f for f in os.listdir(model_dir) if f.startswith("bad_records")) == [
      "bad_records.json", "bad_records.worker_1.json"]
  for report in ("bad_records.json", "bad_records.worker_1.json"):
    assert json.load(open(model_dir / report))["total_skipped"] == 0
  chief = tf.train.load_checkpoint(str(model_dir / f"model.ckpt-{final}"))
  other = tf.train.load_checkpoint(str(model_dir / "tmp_worker_1" / f"model.ckpt-{final}"))
  start = tf.train.load_checkpoint(str(model_dir / "model.ckpt-0"))
  available = chief.get_variable_to_shape_map()
  trained = [n for n in available  # the trained weights: those with an Adam slot
             if n.startswith(("Generator/", "Discriminator/")) and n.endswith("kernel")
             and any(f"{n}/{net}_adam" in available for net in ("generator", "discriminator"))]
  assert len(trained) > 10
  for net in ("Generator/", "Discriminator/"):
    assert any(n.startswith(net) for n in trained), net
  for name_ in trained:  # synchronous: both workers hold the same weights after every step
    np.testing.assert_allclose(chief.get_tensor(name_), other.get_tensor(name_), atol=1e-6)
    assert np.abs(chief.get_tensor(name_) - start.get_tensor(name_)).max() > 1e-5, name_
