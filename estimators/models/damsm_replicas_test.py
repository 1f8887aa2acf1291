"""DAMSM pretraining over replicas (estimators/models/damsm_replicas.py): mirrored on 2 logical
CPUs equals one device; two workers on loopback pretrain together; errors at start.

Logical CPU devices must be made before TensorFlow initialises, so the mirrored comparison runs
in a subprocess (this file run as a script: `--child OUT.npz`) that writes both runs' numbers;
the test compares them. The DAMSM is damsm_model_test's tiny one (small CNN, 16-d features).
"""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:  # run as a script
  sys.path.insert(0, ROOT)

import tensorflow as tf  # noqa: E402  pylint: disable=wrong-import-position

from estimators import testing  # noqa: E402  pylint: disable=wrong-import-position
from estimators.engines import cluster  # noqa: E402  pylint: disable=wrong-import-position
from estimators.models import damsm_model_test, damsm_pretrain, damsm_replicas  # noqa: E402  pylint: disable=wrong-import-position

@pytest.fixture(scope="module", autouse=True)
def _unregister():
  """damsm_model_test's throwaway model (its _cfg registers it) is gone after this module."""
  yield
  damsm_model_test.model_registry.unregister(damsm_model_test.NAME)


CLIP = 0.05  # below the tiny text encoder's gradient norm: the clip acts (asserted)
GLOBAL_BATCH = 8
STEPS = 2


def _child(out):
  """Two steps of the same tiny DAMSM from the same weights on the same global batches, on one
  device and mirrored over 2 logical CPUs: losses, weights and Adam slots into `out` (.npz)."""
  cluster.split_cpu(2)
  from data import get_spec  # pylint: disable=import-outside-toplevel
  cfg = damsm_model_test._cfg(  # pylint: disable=protected-access
      "unused", damsm_batch_size=GLOBAL_BATCH, damsm_rnn_grad_clip=CLIP, damsm_class_masks=True,
      damsm_variant="official", damsm_lr=0.01)
  vocab = get_spec(cfg.dataset).vocabulary(cfg.data_dir)
  config = {**damsm_model_test.damsm.config_dict(cfg, vocab, True)}
  data = damsm_pretrain._batches(  # pylint: disable=protected-access
      damsm_pretrain._load_split(cfg, "train", seed=5, vocab=vocab),  # pylint: disable=protected-access
      GLOBAL_BATCH, shuffle_seed=5).take(STEPS)
  devices = [d.name for d in tf.config.list_logical_devices("CPU")]
  strategies = {"one": tf.distribute.get_strategy(),
                "mirrored": tf.distribute.MirroredStrategy(devices)}
  trainers = {k: damsm_pretrain.Trainer(cfg, config, True, s) for k, s in strategies.items()}
  for key, var in trainers["one"].flat.items():  # the same start whatever the initialisers did
    trainers["mirrored"].flat[key].assign(var)
  result = {"labels": np.concatenate([b["labels"].numpy() for b in data])}
  for name, trainer in trainers.items():
    result[f"{name}/start"] = np.concatenate([v.numpy().ravel() for v in trainer.flat.values()])
    for i, batch in enumerate(trainer.distribute(data)):
      for k, v in trainer.train_step(batch).items():
        result[f"{name}/step{i}/{k}"] = v.numpy()
    for key, var in trainer.flat.items():
      result[f"{name}/weights/{key}"] = var.numpy()
    for var in trainer.optimizer.variables:
      result[f"{name}/optimizer/{var.name}"] = var.numpy()
    result[f"{name}/replicas"] = trainer.strategy.num_replicas_in_sync
    for k, v in trainer.eval_step(next(iter(trainer.distribute(data)))).items():
      result[f"{name}/eval/{k}"] = v.numpy()
  np.savez(out, **result)


def _run_child(tmp_path):
  out = tmp_path / "result.npz"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
  env.pop("TF_CONFIG", None)
  proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", str(out)],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return dict(np.load(out))


def test_mirrored_two_cpus_two_steps_equal_one_device(tmp_path):
  """Loss over the global batch (gathered features, class masks), per-example dropout, the clip
  on the all-reduced gradient: weights, Adam slots and losses equal one device's."""
  result = _run_child(tmp_path)
  assert result["one/replicas"] == 1 and result["mirrored/replicas"] == 2
  labels = result["labels"].reshape(STEPS, GLOBAL_BATCH)
  assert all(len(set(row)) < GLOBAL_BATCH for row in labels)  # same-class pairs: masks act
  np.testing.assert_array_equal(result["one/start"], result["mirrored/start"])
  for i in range(STEPS):
    for k in ("loss", "w0", "w1", "s0", "s1", "text_grad_norm"):
      one, multi = result[f"one/step{i}/{k}"], result[f"mirrored/step{i}/{k}"]
      assert np.isfinite(one) and one != 0
      np.testing.assert_allclose(multi, one, rtol=2e-6, err_msg=f"step {i} {k}")
    assert result[f"one/step{i}/text_grad_norm"] > CLIP  # the clip acts
  compared = 0
  for key in result:
    if key.startswith(("one/weights/", "one/optimizer/")):
      one, multi = result[key], result[key.replace("one/", "mirrored/", 1)]
      scale = max(np.abs(one).max(), 1e-12)
      assert np.abs(multi - one).max() <= 2e-5 * scale, key  # measured: <= 3.5e-6
      compared += 1
  moments = [k for k in result if k.startswith("one/optimizer/m/")]
  assert compared > 20 and moments, sorted(result)
  moved = result["one/start"] != np.concatenate(
      [result[k].ravel() for k in result if k.startswith("one/weights/")])
  assert moved.mean() > 0.5  # the step changed most weights
  for k in ("loss", "i2t_top1_sentence", "t2i_top1_word"):
    np.testing.assert_allclose(result[f"mirrored/eval/{k}"], result[f"one/eval/{k}"], rtol=2e-6)


def test_example_seeded_dropout_is_the_examples_not_the_splits():
  step = tf.Variable(3, dtype=tf.int64)
  rows = {"value": tf.range(8, dtype=tf.int64)}
  layer = damsm_replicas.ExampleSeededDropout(0.5, 7, step, 8, lambda: rows["value"])
  x = tf.ones([8, 5, 40])
  whole = layer(x, training=True).numpy()
  halves = []
  for part in (tf.range(4, dtype=tf.int64), tf.range(4, 8, dtype=tf.int64)):
    rows["value"] = part
    halves.append(layer(x[:4], training=True).numpy())
  np.testing.assert_array_equal(whole, np.concatenate(halves))
  assert set(np.unique(whole)) == {0.0, 2.0} and abs((whole == 0).mean() - 0.5) < 0.05
  step.assign(4)
  assert (layer(x[:4], training=True).numpy() != halves[1]).mean() > 0.3  # a new step, new masks
  np.testing.assert_array_equal(layer(x[:4], training=False).numpy(), x[:4].numpy())


def test_uneven_split_and_batch_statistics_fail_at_start_writing_nothing(tmp_path, monkeypatch):
  workers = {"worker": ["localhost:1", "localhost:2", "localhost:3"]}
  monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": workers,
                                              "task": {"type": "worker", "index": 0}}))
  cfg = damsm_model_test._cfg(tmp_path / "run").replace(  # pylint: disable=protected-access
      distribution="multi_worker")
  with pytest.raises(cluster.DistributionError, match="--damsm_batch_size=50 is the global "
                     "DAMSM batch and must divide evenly over the 3 replicas"):
    damsm_pretrain.pretrain(cfg.replace(hparams=dataclasses.replace(cfg.hparams,
                                                                    damsm_batch_size=50)))
  inception = dataclasses.replace(cfg.hparams, damsm_image_encoder="inception_v3",
                                  damsm_variant="official")
  with pytest.raises(cluster.DistributionError, match="batch_statistics .* over 3 replicas "
                     "each would normalise its own share.*--damsm_inception_bn=inference"):
    damsm_pretrain.pretrain(cfg.replace(hparams=inception))
  with pytest.raises(cluster.DistributionError, match="no TPU path .*drop --use_tpu"):
    damsm_pretrain.pretrain(cfg.replace(distribution="none", use_tpu=True))
  assert not os.path.exists(tmp_path / "run")  # nothing written
  assert damsm_replicas.check(cfg, cfg.hparams.resolved()) == 3  # 48 splits over 3


BATCH = 96  # 14 steps of the digits' 1,438 training captions


@pytest.mark.slow
def test_two_workers_on_loopback_pretrain_one_damsm(tmp_path):
  """run.py --mode=pretrain_damsm --distribution=multi_worker, 2 processes: the chief writes the
  DAMSM directory, the other worker none of it; the result is the one-device run's."""
  flags = [f"--{k}={v}" for k, v in damsm_model_test.TINY.items() if k != "damsm_batch_size"]
  codes, outputs = testing.run_loopback_workers(
      [sys.executable, damsm_model_test.__file__, f"--model={damsm_model_test.NAME}",
       "--mode=pretrain_damsm", "--dataset=digits_captions", "--distribution=multi_worker",
       f"--model_dir={tmp_path / 'run'}", "--seed=3", *flags, f"--damsm_batch_size={BATCH}"],
      tmp_path, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT))
  assert codes == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
  damsm_dir = tmp_path / "run" / "damsm"
  assert sorted(os.listdir(damsm_dir)) == sorted([
      "checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index", "damsm_config.json",
      "eval", "metrics.jsonl", "train", "vocab.txt"])  # worker 1's private copy deleted
  records = [json.loads(line) for line in open(damsm_dir / "metrics.jsonl")]
  assert len(records) == 1 and records[0]["step"] == 1438 // BATCH
  summaries = [[line for line in out.splitlines() if line.startswith("DAMSM epoch 1/1:")]
               for out in outputs]
  # Synchronous: worker 1 trained too, and its held-out numbers (from its own copy of the
  # weights) are the chief's.
  assert len(summaries[0]) == 1 and summaries[0] == summaries[1], summaries
  reference = damsm_pretrain.pretrain(damsm_model_test._cfg(  # pylint: disable=protected-access
      tmp_path / "one_device", damsm_batch_size=BATCH))
  first = [json.loads(line) for line in open(os.path.join(reference, "metrics.jsonl"))][0]
  # The one-device run's numbers to round-off, which Adam amplifies over the 14 steps (measured:
  # train-loss mean 1.5e-8 relative, held-out loss 1e-7, weights 1.9e-5 of each tensor's largest
  # entry; with batch 48, 29 steps: 7e-6, 4e-4, 6%); another batch composition: ~1e-2.
  assert records[0]["train"]["loss"] == pytest.approx(first["train"]["loss"], rel=1e-6)
  assert records[0]["held_out"]["loss"] == pytest.approx(first["held_out"]["loss"], rel=1e-5)
  one = tf.train.load_checkpoint(os.path.join(reference, "ckpt-1"))
  two = tf.train.load_checkpoint(str(damsm_dir / "ckpt-1"))
  names = [n for n in one.get_variable_to_shape_map() if n.startswith(("text_", "image_"))]
  assert len(names) > 10
  for name in names:
    a, b = one.get_tensor(name), two.get_tensor(name)
    assert np.abs(a - b).max() <= 1e-3 * np.abs(a).max(), name


if __name__ == "__main__":
  if sys.argv[1:2] == ["--child"]:
    _child(sys.argv[2])
