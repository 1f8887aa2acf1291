"""bench/tfgan_example.py: settings and engine-variant parsing, turn-taking, the table."""
import threading

import pytest

from bench import tfgan_example


def test_settings_and_variants_parse_and_reject_bad_input():
  assert tfgan_example.parse_settings("16:8, 32:16") == [(16, 8), (32, 16)]
  for bad in ("16", "12:8", "16:0", "a:8", ""):
    with pytest.raises(ValueError):
      tfgan_example.parse_settings(bad)
  assert tfgan_example.parse_variants("default,gan_estimator+xla") == [
      ("default", {}), ("gan_estimator+xla", {"engine": "gan_estimator", "xla": True})]
  with pytest.raises(ValueError, match="unknown"):
    tfgan_example.parse_variants("fast")


def test_turns_interleave_steps_one_contender_at_a_time():
  turns = tfgan_example.Turns(["a", "b", "c"])
  log, lock = [], threading.Lock()

  def contender(name, steps):
    turns.acquire(name)
    for i in range(steps):
      if i:
        turns.release(name)
        turns.acquire(name)
      with lock:
        log.append(name)
    turns.release(name, finished=True)
  threads = [threading.Thread(target=contender, args=(n, k)) for n, k in
             (("c", 3), ("b", 1), ("a", 3))]
  for t in threads:
    t.start()
  for t in threads:
    t.join(timeout=10)
  assert log == ["a", "b", "c", "a", "c", "a", "c"]


def test_table_gives_the_ratio_at_the_median_step():
  rows = [((16, 8), "TF-GAN example", 10.0, 9.0, 800.0, None),
          ((16, 8), "default", 12.5, 11.0, 640.0, 1.25)]
  lines = tfgan_example.format_table(rows).splitlines()
  assert lines[2] == "| 16 | 8 | TF-GAN example | 800 | 10.0 | 9.0 | 1.00 (reference) |"
  assert lines[3] == "| 16 | 8 | default | 640 | 12.5 | 11.0 | 1.25x |"


def test_ylg_settings_need_64_channels_at_the_discriminators_attention():
  assert tfgan_example.parse_settings("32:8,64:16", "ylg_sagan") == [(32, 8), (64, 16)]
  with pytest.raises(ValueError, match="divisible by 32"):
    tfgan_example.parse_settings("16:8", "ylg_sagan")
  assert tfgan_example.reference_name("ylg_sagan", "/some/ylg") == "YLG official"
  assert tfgan_example.reference_name("ylg_sagan", None) == "TF-GAN example"
  assert tfgan_example.reference_name("sagan", "/some/ylg") == "TF-GAN example"
  assert "vs YLG official" in tfgan_example.format_table([], "YLG official")


def test_ylg_checkout_is_checked_and_its_networks_adapted(tmp_path):
  with pytest.raises(ValueError, match="no ylg/train_experiment.py"):
    tfgan_example.import_ylg_official(str(tmp_path))
  import types  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  def generator(z, labels, gf_dim, num_classes, training=True):  # the released return values
    with tf.compat.v1.variable_scope("generator"):
      w = tf.compat.v1.get_variable("w", initializer=2.0)
    return z * w, "attention map"

  def discriminator(images, labels, df_dim, num_classes):
    return images + 1.0, "features", "attention map", ["d vars"]
  te = types.SimpleNamespace(gen_module=types.SimpleNamespace(generator=generator, other=1),
                             dis_module=types.SimpleNamespace(discriminator=discriminator))
  tfgan_example._adapt_ylg_networks(te)  # pylint: disable=protected-access
  tfgan_example._adapt_ylg_networks(te)  # pylint: disable=protected-access  (once only)
  assert te.gen_module.other == 1
  with tf.Graph().as_default():
    images, variables = te.gen_module.generator(tf.constant(3.0), None, 16, 10)
    assert [v.name for v in variables] == ["generator/w:0"]
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      assert sess.run(images) == 6.0
  assert te.dis_module.discriminator(1.0, None, 16, 10) == (2.0, ["d vars"])
