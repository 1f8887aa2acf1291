"""DAMSM pretraining (AttnGAN, Xu et al. 2018, sec. 3.2): `--mode=pretrain_damsm`.

Trains the text and image encoders with eq. 14 on cfg.dataset's captions, resuming from the
DAMSM directory (its format, the hyperparameters and loading: estimators/models/damsm.py).
Official recipe (code/pretrain_DAMSM.py): batch 48, Adam 0.002 (0.5, 0.999), lr x0.98 per epoch
while above lr0 / 10, RNN gradient-norm clip 0.25; each epoch ends with the held-out loss and
top-1 retrieval on the test split, a metrics.jsonl line and a checkpoint.

`--distribution=mirrored` / `multi_worker` split the global batch (damsm_batch_size) over the
replicas and compute the one-device step (estimators/models/damsm_replicas.py): the loss over the
global batch, per-example dropout masks, the clip on the all-reduced gradient; the chief writes
the DAMSM directory.
"""
import json
import math
import os
import sys
import time

from absl import logging
import numpy as np
import tensorflow as tf

from estimators.engines import cluster
from estimators.models import damsm, damsm_replicas
from estimators.models.damsm import (CHECKPOINT_PREFIX, CONFIG_FILE, METRICS_FILE,
                                     RANDOM_WEIGHTS_NOTE, VOCAB_FILE, build_encoders,
                                     flat_variables, validate_damsm)
from eval import metrics_log
from tfgan_attention import damsm as damsm_lib

def _dataset_spec(cfg):
  from data import get_spec  # pylint: disable=import-outside-toplevel
  spec = get_spec(cfg.dataset)
  if not spec.has_captions:
    raise ValueError(f"--mode=pretrain_damsm needs a caption dataset (cub, coco, "
                     f"digits_captions); --dataset={cfg.dataset} has no captions")
  if "test" not in spec.splits:
    raise ValueError(f"dataset {cfg.dataset} has no 'test' split for the held-out loss")
  return spec


def _load_split(cfg, split, seed, vocab):
  from data import load  # pylint: disable=import-outside-toplevel
  h = cfg.hparams
  options = {k: v for k, v in dict(cfg.data_options).items() if v is not None}
  options.pop("vocabulary", None)
  return load(cfg.dataset, cfg.data_dir, split=split, image_size=h.damsm_image_size, seed=seed,
              strict=cfg.strict_data, max_words=h.damsm_words_num, vocabulary=vocab, **options)


def _lr_at(h, epoch):
  """Official schedule: lr0, x decay after each epoch while lr > lr0 / 10."""
  lr = h.damsm_lr
  for _ in range(epoch):
    if lr > h.damsm_lr / 10.0:
      lr *= h.damsm_lr_decay
  return lr






_ARCHITECTURE_KEYS = ("image_encoder", "embedding_dim", "word_dim", "words_num", "image_size",
                      "cnn_width", "inception", "inception_weights_path", "vocab_size",
                      "vocab_sha256")
_ABSENT_MEANS = {"inception": "keras"}  # keys older damsm_config.json files do not have


class Trainer:
  """The encoders, optimiser and compiled steps of one pretraining run, under `strategy` (the
  default one: one device). Steps take a batch of `distribute(dataset)` (per replica under a
  strategy: damsm_replicas says how the split computes the one-device step)."""

  def __init__(self, cfg, config, use_masks, strategy=None):
    h = cfg.hparams.resolved()
    self.h, self.use_masks = h, use_masks
    self.variant = cfg.hparams.loss_variant()
    self.strategy = strategy or tf.distribute.get_strategy()
    self._rows = None  # the global indices of the rows a replica encodes (set in each step)
    tf.keras.utils.set_random_seed(cfg.seed)  # the initial weights
    with self.strategy.scope():
      self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
      self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step",
                              aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
      self.text_encoder, self.image_encoder = build_encoders(config, h.damsm_inception_bn)
      self.text_encoder.dropout = damsm_replicas.ExampleSeededDropout(
          self.text_encoder.dropout.rate, cfg.seed, self.step, h.damsm_batch_size,
          lambda: self._rows, name="dropout")
      self.optimizer = tf.keras.optimizers.Adam(h.damsm_lr, beta_1=0.5, beta_2=0.999)
      # Slots exist before a restore, so a resumed run gets its Adam moments back.
      self.optimizer.build(self.text_encoder.trainable_variables
                           + self.image_encoder.trainable_variables)
    self.flat = flat_variables(self.text_encoder, self.image_encoder)
    if any(v is self.step for v in self.flat.values()):
      raise AssertionError("the step counter must not be saved as an encoder weight")
    self.checkpoint = tf.train.Checkpoint(optimizer=self.optimizer, epoch=self.epoch,
                                          step=self.step, **self.flat)
    self.train_step = tf.function(self._train_step)
    self.eval_step = tf.function(self._eval_step)

  def distribute(self, dataset):
    """Global batches (`_batches`) -> what the steps take (per-replica rows under a strategy)."""
    return damsm_replicas.distribute(self.strategy, dataset, self.h.damsm_batch_size)

  def _losses(self, batch, training):
    """Eq. 14 over the GLOBAL batch (every replica's features gathered)."""
    self._rows = batch["index"]
    words, sentence = self.text_encoder(batch["captions"], batch["caption_length"],
                                        training=training)  # [b, T, D], [b, D]
    regions, image_global = self.image_encoder(batch["images"], training=training)
    labels = [batch["labels"]] if self.use_masks else []  # COCO has none
    words, sentence, regions, image_global, lengths, *labels = damsm_replicas.global_batch(
        words, sentence, regions, image_global, batch["caption_length"], *labels)
    class_ids = labels[0] if labels else None
    loss = damsm_lib.damsm_loss(words, sentence, regions, image_global, lengths,
                                class_ids=class_ids, variant=self.variant)
    return loss, words, sentence, regions, image_global, lengths

  def _replica_train_step(self, batch):
    text_vars = self.text_encoder.trainable_variables
    image_vars = self.image_encoder.trainable_variables
    with tf.GradientTape() as tape:
      loss = self._losses(batch, training=True)[0]
    grads = damsm_replicas.sum_gradients(tape.gradient(loss.total, text_vars + image_vars))
    text_grads, image_grads = grads[:len(text_vars)], grads[len(text_vars):]
    text_norm = tf.linalg.global_norm(text_grads)  # of the global gradient: the official clip
    if self.h.damsm_rnn_grad_clip > 0:
      text_grads, _ = tf.clip_by_global_norm(text_grads, self.h.damsm_rnn_grad_clip,
                                             use_norm=text_norm)
    self.optimizer.apply_gradients(zip(text_grads + image_grads, text_vars + image_vars),
                                   skip_gradients_aggregation=True)  # summed above
    self.step.assign_add(1)
    return {"loss": loss.total, "w0": loss.w0, "w1": loss.w1, "s0": loss.s0, "s1": loss.s1,
            "text_grad_norm": text_norm}

  def _train_step(self, batch):
    return damsm_replicas.reduce_mean(
        self.strategy, self.strategy.run(self._replica_train_step, args=(batch,)))

  def _replica_eval_step(self, batch):
    loss, words, sentence, regions, image_global, lengths = self._losses(batch, training=False)
    sentence_scores = damsm_lib.sentence_scores(image_global, sentence)  # [B, B]
    w_scores, _ = damsm_lib.word_scores(words, regions, lengths, self.variant)
    return {"loss": loss.total, "w0": loss.w0, "w1": loss.w1, "s0": loss.s0, "s1": loss.s1,
            **top1_retrieval(sentence_scores, "sentence"), **top1_retrieval(w_scores, "word")}

  def _eval_step(self, batch):
    """The held-out metrics of a global batch (each replica computes them on the gathered
    batch; their mean over replicas is that value)."""
    return damsm_replicas.reduce_mean(
        self.strategy, self.strategy.run(self._replica_eval_step, args=(batch,)))


def top1_retrieval(scores, tag):
  """Top-1 retrieval accuracy within a batch from scores [B_images, B_captions] (diagonal =
  matching pairs): image->text = the true caption scores highest in its row, text->image in its
  column. Chance is 1/B."""
  truth = tf.range(tf.shape(scores)[0], dtype=tf.int64)
  i2t = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(scores, axis=1), truth), tf.float32))
  t2i = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(scores, axis=0), truth), tf.float32))
  return {f"i2t_top1_{tag}": i2t, f"t2i_top1_{tag}": t2i}


def _batches(ds, batch_size, shuffle_seed=None):
  from data import pipeline  # pylint: disable=import-outside-toplevel
  if shuffle_seed is not None:
    size = pipeline.shuffle_buffer_size(ds.element_spec, pipeline.shuffle_buffer_mb_of(ds))
    ds = ds.shuffle(size, seed=shuffle_seed, reshuffle_each_iteration=False)
  keep = ("images", "captions", "caption_length", "labels")
  ds = ds.map(lambda e: {k: v for k, v in e.items() if k in keep})
  return ds.batch(batch_size, drop_remainder=True).map(damsm_replicas.with_index).prefetch(2)


def _mean_of(rows):
  return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} if rows else {}


ONE_DEVICE = damsm_replicas.ONE_DEVICE


class _Saver:
  """Checkpoints: the chief's go to the DAMSM directory; another worker (multi_worker) saves too,
  as TensorFlow asks of every worker, into a private directory it deletes at the end."""

  def __init__(self, checkpoint, damsm_dir, chief):
    self.directory = damsm_dir if chief else os.path.join(
        damsm_dir, f"tmp_{cluster.task_name()}")
    self.manager = tf.train.CheckpointManager(checkpoint, self.directory,
                                              max_to_keep=3 if chief else 1,
                                              checkpoint_name=CHECKPOINT_PREFIX)
    self.chief = chief

  def save(self, number):
    return self.manager.save(checkpoint_number=number)

  def close(self):
    if not self.chief:
      tf.io.gfile.rmtree(self.directory)


def pretrain(cfg, options=None):
  """--mode=pretrain_damsm: trains the DAMSM encoders on cfg.dataset (eq. 14), resuming.

  One epoch = one pass over the train split in full batches of damsm_batch_size (shuffled with a
  seed of (cfg.seed, epoch), so a resumed run sees the same batches). After each epoch: the
  held-out loss and top-1 retrieval on the test split, a line in metrics.jsonl, TensorBoard
  scalars and a checkpoint. Returns the DAMSM directory.
  """
  del options  # the DAMSM reads no run-wide mode option
  from estimators import progress, run_dir  # pylint: disable=import-outside-toplevel
  problem = validate_damsm(cfg.hparams)
  if problem:
    raise ValueError(problem)
  h = cfg.hparams.resolved()
  damsm_replicas.check(cfg, h)  # the replicas, the batch split: before anything runs or is written
  strategy = damsm_replicas.make_strategy(cfg)
  chief = cluster.is_chief()
  spec = _dataset_spec(cfg)
  damsm_dir = damsm.damsm_dir_of(cfg)
  os.makedirs(damsm_dir, exist_ok=True)
  data_options = {k: v for k, v in dict(cfg.data_options).items() if v is not None}
  data_options.pop("vocabulary", None)
  data_options.pop("max_words", None)
  vocab = spec.vocabulary(cfg.data_dir, **data_options)
  use_masks = bool(h.damsm_class_masks and spec.num_classes)
  if h.damsm_class_masks and not spec.num_classes:
    logging.warning("DAMSM: --dataset=%s has no classes; no class masks (as the official COCO "
                    "setting)", cfg.dataset)
  config = damsm.config_dict(cfg, vocab, use_masks)
  config_path = os.path.join(damsm_dir, CONFIG_FILE)
  if os.path.exists(config_path):
    with open(config_path, encoding="utf-8") as f:
      previous = json.load(f)
    changed = [k for k in _ARCHITECTURE_KEYS
               if previous.get(k, _ABSENT_MEANS.get(k)) != config.get(k)]
    if changed:
      raise ValueError(
          f"{damsm_dir} holds a DAMSM with other settings ({', '.join(changed)}: "
          f"{[previous.get(k) for k in changed]} there, {[config.get(k) for k in changed]} "
          f"now); resume with the same flags or pass another --damsm_dir")
  if h.damsm_image_encoder == "inception_v3" and not h.damsm_inception_weights:
    logging.warning("DAMSM: %s", RANDOM_WEIGHTS_NOTE)
  if chief:
    run_dir.write_run_config(cfg.model_dir, {**cfg.to_dict(), "mode": "pretrain_damsm",
                                             "damsm_image_weights": config["image_weights_source"],
                                             "damsm_dir": damsm_dir}, sys.argv)
  trainer = Trainer(cfg, config, use_masks, strategy)
  config["variables"] = damsm.variable_table(trainer.flat)
  latest = tf.train.latest_checkpoint(damsm_dir)  # the chief's (every worker resumes from it)
  if chief:
    vocab.save(os.path.join(damsm_dir, VOCAB_FILE))
    run_dir.atomic_write_json(config_path, config)
  saver = _Saver(trainer.checkpoint, damsm_dir, chief)
  if latest:
    trainer.checkpoint.restore(latest).assert_consumed()
    logging.info("DAMSM: resumed from %s (epoch %d)", latest, int(trainer.epoch.numpy()))
  def writer(name):  # TensorBoard scalars: the chief's
    return (tf.summary.create_file_writer(os.path.join(damsm_dir, name)) if chief
            else tf.summary.create_noop_writer())
  train_writer, eval_writer = writer("train"), writer("eval")
  test_ds = _load_split(cfg, "test", seed=0, vocab=vocab)
  if h.damsm_eval_examples:
    test_ds = test_ds.take(h.damsm_eval_examples)
  chance = 1.0 / h.damsm_batch_size
  print(f"DAMSM pretraining: {spec.name}, {config['image_weights_source']}, batch "
        f"{h.damsm_batch_size}, epochs {int(trainer.epoch.numpy())} -> {h.damsm_epochs}, "
        f"directory {damsm_dir}")
  start, steps_per_epoch = time.time(), None
  while int(trainer.epoch.numpy()) < h.damsm_epochs:
    epoch = int(trainer.epoch.numpy())
    lr = _lr_at(h, epoch)
    trainer.optimizer.learning_rate.assign(lr)
    if h.damsm_reset_adam_each_epoch:
      for var in trainer.optimizer.variables:
        var.assign(tf.zeros_like(var))
    train_ds = _batches(_load_split(cfg, "train", seed=cfg.seed * 100003 + epoch, vocab=vocab),
                        h.damsm_batch_size, shuffle_seed=cfg.seed * 100003 + epoch)
    rows = []
    cardinality = int(train_ds.cardinality())
    steps = steps_per_epoch or (cardinality if cardinality > 0 else None)
    batches = trainer.distribute(train_ds)
    batches = (progress.track(batches, steps, f"DAMSM epoch {epoch + 1}", unit="batches",
                              count=lambda _: 1) if steps else batches)
    for batch in batches:
      values = {k: float(v) for k, v in trainer.train_step(batch).items()}
      if not all(math.isfinite(v) for v in values.values()):
        raise FloatingPointError(f"DAMSM loss is not finite at step {int(trainer.step.numpy())}:"
                                 f" {values}; lower --damsm_lr")
      rows.append(values)
      with train_writer.as_default(step=int(trainer.step.numpy())):
        for k, v in values.items():
          tf.summary.scalar(f"damsm/{k}", v)
    steps_per_epoch = len(rows)
    if not rows:
      raise ValueError(f"the train split of {cfg.dataset} has fewer examples than one DAMSM "
                       f"batch ({h.damsm_batch_size})")
    held_out = _mean_of([{k: float(v) for k, v in trainer.eval_step(b).items()}
                         for b in trainer.distribute(_batches(test_ds, h.damsm_batch_size))])
    trainer.epoch.assign(epoch + 1)
    record = {"epoch": epoch + 1, "step": int(trainer.step.numpy()), "lr": lr,
              "train": _mean_of(rows), "held_out": held_out, "retrieval_chance": chance,
              "elapsed_s": round(time.time() - start, 1),
              "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with eval_writer.as_default(step=epoch + 1):
      for k, v in held_out.items():
        tf.summary.scalar(f"damsm_held_out/{k}", v)
      tf.summary.scalar("damsm/lr", lr)
    path = saver.save(epoch + 1)
    record["checkpoint"] = os.path.basename(path)
    if chief:
      metrics_log.append_jsonl(os.path.join(damsm_dir, METRICS_FILE), record)
    print(f"DAMSM epoch {epoch + 1}/{h.damsm_epochs}: train loss {record['train']['loss']:.3f}, "
          f"held-out loss {held_out.get('loss', float('nan')):.3f}, top-1 i2t "
          f"{held_out.get('i2t_top1_sentence', float('nan')):.3f} / t2i "
          f"{held_out.get('t2i_top1_sentence', float('nan')):.3f} (sentence), "
          f"{held_out.get('i2t_top1_word', float('nan')):.3f} / "
          f"{held_out.get('t2i_top1_word', float('nan')):.3f} (word); chance {chance:.3f}")
  train_writer.flush()
  eval_writer.flush()
  saver.close()
  return damsm_dir
