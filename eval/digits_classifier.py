"""A small digits classifier for the embedded default's quality numbers (never called FID/IS).

`digits_fid` is the Frechet distance between generated and real digits in this network's
128-d penultimate features; `digits_score` is TF-GAN's classifier score on its 10 logits. The
network is trained reproducibly (fixed seed, fixed split) the first time it is needed, checked
for held-out accuracy, and cached on disk under a key hashed from everything that defines it.
"""
import hashlib
import json
import os

import numpy as np
import tensorflow as tf

from data.digits import digits_arrays

MIN_TEST_ACCURACY = 0.95
_RECIPE = {"arch": "conv32-conv64-fc128-v1", "epochs": 12, "batch": 64, "lr": 1e-3, "seed": 7,
           "image_size": 32, "augment": "none"}


def default_cache_dir():
  return os.environ.get("TFGAN_ATTENTION_CACHE",
                        os.path.join(os.path.expanduser("~"), ".cache", "tfgan_attention"))


def build_classifier():
  """Keras model: images [N, 32, 32, 3] in [-1, 1] -> (features [N, 128], logits [N, 10])."""
  inputs = tf.keras.Input([32, 32, 3])
  h = tf.keras.layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
  h = tf.keras.layers.MaxPool2D()(h)
  h = tf.keras.layers.Conv2D(64, 3, padding="same", activation="relu")(h)
  h = tf.keras.layers.MaxPool2D()(h)
  h = tf.keras.layers.Flatten()(h)
  features = tf.keras.layers.Dense(128, activation="relu", name="features")(h)
  logits = tf.keras.layers.Dense(10, name="logits")(features)
  return tf.keras.Model(inputs, [features, logits], name="digits_classifier")


def recipe_hash():
  return hashlib.sha256(json.dumps(_RECIPE, sort_keys=True).encode()).hexdigest()[:16]


def train_classifier():
  """Trains from scratch with the fixed recipe; returns (model, held-out accuracy)."""
  tf.keras.utils.set_random_seed(_RECIPE["seed"])
  x_train, y_train = digits_arrays("train", _RECIPE["image_size"])
  x_test, y_test = digits_arrays("test", _RECIPE["image_size"])
  model = build_classifier()
  trainer = tf.keras.Model(model.input, model.output[1])
  trainer.compile(optimizer=tf.keras.optimizers.Adam(_RECIPE["lr"]),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  trainer.fit(x_train, y_train, epochs=_RECIPE["epochs"], batch_size=_RECIPE["batch"],
              shuffle=True, verbose=0)
  return model, held_out_accuracy(model, x_test, y_test)


def held_out_accuracy(model, x_test=None, y_test=None):
  if x_test is None:
    x_test, y_test = digits_arrays("test", _RECIPE["image_size"])
  logits = model.predict(x_test, batch_size=256, verbose=0)[1]
  return float(np.mean(np.argmax(logits, 1) == y_test))


def load_classifier(cache_dir=None):
  """The cached classifier, training (and caching) it on first use.

  Raises:
    RuntimeError: the trained network misses the held-out accuracy bar (it is not cached).
  """
  cache_dir = cache_dir or default_cache_dir()
  path = os.path.join(cache_dir, f"digits_classifier_{recipe_hash()}.weights.h5")
  model = build_classifier()
  if os.path.exists(path):
    model.load_weights(path)
    return model
  model, accuracy = train_classifier()
  if accuracy < MIN_TEST_ACCURACY:
    raise RuntimeError(f"digits classifier reached only {accuracy:.3f} held-out accuracy "
                       f"(< {MIN_TEST_ACCURACY}); refusing to use it for digits_fid")
  os.makedirs(cache_dir, exist_ok=True)
  tmp = f"{path}.tmp-{os.getpid()}.weights.h5"
  model.save_weights(tmp)
  os.replace(tmp, path)  # readers see no file or the whole file
  return model
