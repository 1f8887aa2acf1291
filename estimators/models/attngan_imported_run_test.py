"""Every mode on a run imported from AttnGAN's released files (issue #23 item 2).

The release (G_NET, the DAMSM's two encoders, captions.pickle) is written once in the official
legacy torch format by attngan_import_test's writers, its vocabulary the embedded digits
captions' words so the run's own captions encode, and imported once. The authors released no
discriminator: the import writes none, evaluation, sampling and export never read one, and
training on initialises D_NET64/128/256 fresh and says so.
"""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import data
from estimators.models import attngan_import_test as release_files
from estimators.train_from_import import OTHER_FROZEN
from tests.imported_runs import check_trained_on, draw_every_figure, evaluate, run_mode, train_on

pytestmark = pytest.mark.slow
WORDS = data.get_spec("digits_captions").vocabulary(None).words


@pytest.fixture(name="imported", scope="module")
def _imported(tmp_path_factory):
  root = tmp_path_factory.mktemp("release")
  rng = np.random.default_rng(0)
  # pylint: disable=protected-access  (attngan_import_test's writers of the official formats)
  w = release_files
  files = [w._write_pth(str(root / "text_encoder200.pth"), w._text_state(rng, len(WORDS))),
           w._write_pth(str(root / "image_encoder200.pth"), w._image_state(rng)),
           w._write_captions(str(root / "captions.pickle"), WORDS),
           w._write_pth(str(root / "bird_AttnGAN2.pth"), w._g_state(rng))]
  model_dir = str(tmp_path_factory.mktemp("imported") / "run")
  run_mode("--mode=import_weights", "--import_from=" + ",".join(files),
           "--dataset=digits_captions", "--df_dim=2", f"--model_dir={model_dir}")
  return model_dir


def test_the_import_writes_no_discriminator_and_says_so(imported):
  record = json.load(open(os.path.join(imported, "imported.json")))
  assert record["not_released"] == {
      "Discriminator/": "the authors released no discriminator (netD*.pth)"}
  keys = tf.train.load_checkpoint(tf.train.latest_checkpoint(imported)).get_variable_to_shape_map()
  assert not [k for k in keys if k.startswith("Discriminator/")]
  assert not [k for k in record["variables"] if k.startswith("Discriminator/")]


def test_train_initialises_the_discriminators_and_optimiser_state_fresh(imported, tmp_path):
  model_dir = str(tmp_path / "run")
  imported_ckpt, step, console = train_on(imported, model_dir, "--batch_size=2", steps=1)
  assert step == 0
  after, line = check_trained_on(imported_ckpt, model_dir, step, console, steps=1,
                                 frozen=("text_encoder",), fresh=("Discriminator/",))
  # The frozen DAMSM text encoder inside G is the imported one, untrained.
  before = tf.train.load_checkpoint(imported_ckpt)
  key = "Generator/generator/text_encoder/embedding/embeddings"
  np.testing.assert_array_equal(after.get_tensor(key), before.get_tensor(key))
  fresh = json.load(open(os.path.join(model_dir, "imported.json")))["training_start"]["fresh"]
  assert fresh["Discriminator (not released: the authors released no discriminator "
               "(netD*.pth))"] > 10
  assert "Discriminator (not released: " in line
  # The frozen DAMSM outside G (its image encoder, G's loss reads it) starts as in a new run:
  # from --damsm_dir (the imported DAMSM), and no optimiser touches it.
  imported_keys = json.load(open(os.path.join(model_dir, "imported.json")))["variables"]
  assert f"{OTHER_FROZEN} (" in line
  assert "damsm_image_encoder" in {k.split("/", 1)[0] for k in after.get_variable_to_shape_map()
                                   if k not in imported_keys}


def test_eval_with_r_precision_sample_attention_maps_interpolate(imported, tmp_path):
  record = evaluate(imported, tmp_path, inception=False)  # digits metrics and R-precision
  assert record["step"] == 0
  for name in ("r_precision_paper", "r_precision_dmgan", "digits_fid"):
    assert 0 <= record["metrics"][name] < np.inf, name
  draw_every_figure(imported, tmp_path)
  captions = tmp_path / "captions.txt"
  captions.write_text("a regular one upright\nthe number drawn in normal ink\n")
  run_mode("--mode=sample", f"--model_dir={imported}", f"--captions_file={captions}",
           f"--sample_dir={tmp_path / 'captioned'}")
  assert len(os.listdir(tmp_path / "captioned")) >= 2


def test_export_serves_token_ids_and_caption_strings(imported):
  path = run_mode("--mode=export", f"--model_dir={imported}").split("SavedModel: ", 1)[1].strip()
  loaded = tf.saved_model.load(path)
  assert sorted(loaded.signatures) == ["attention", "caption_strings", "serving_default"]
  rng = np.random.RandomState(0)
  noise = tf.constant(rng.standard_normal((2, release_files.Z_DIM)), tf.float32)
  ca_noise = tf.constant(rng.standard_normal((2, release_files.C_DIM)), tf.float32)
  texts = ["a regular one upright", "the number drawn"]
  by_string = loaded.signatures["caption_strings"](captions=tf.constant(texts), noise=noise,
                                                   ca_noise=ca_noise)
  ids = [[WORDS.index(word) for word in text.split()] for text in texts]
  np.testing.assert_array_equal(by_string["captions"][0, :4], ids[0])
  by_ids = loaded.signatures["serving_default"](captions=by_string["captions"], noise=noise,
                                                ca_noise=ca_noise)
  assert by_ids["images"].shape == (2, 256, 256, 3)
  np.testing.assert_allclose(by_string["images"], by_ids["images"], atol=1e-5)
  attention = loaded.signatures["attention"](captions=by_string["captions"], noise=noise,
                                             ca_noise=ca_noise)
  np.testing.assert_allclose(attention["images"], by_ids["images"], atol=1e-5)
