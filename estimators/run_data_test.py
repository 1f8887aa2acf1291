"""The run's caption vocabulary: written by prepare_run_data, read back through load_options."""
import os

import pytest

import data
from data import bad_records
from data import format_writers
from estimators.config import GANConfig
from estimators.engines.input_fn import load_options, prepare_run_data

RED = "001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111"
BLUE = "001.Black_footed_Albatross/Black_Footed_Albatross_0002_55"
HERON = "002.Laysan_Albatross/Laysan_Albatross_0003_1033"
# Train captions first, then test, each word at its first occurrence (AttnGAN build_dictionary).
VOCAB = ["<end>", "the", "bird", "is", "red", "a", "small", "blue", "wings", "heron"]


@pytest.fixture(autouse=True)
def _fresh_log():
  bad_records.LOG.reset()


@pytest.fixture
def cub_dir(tmp_path):
  d = str(tmp_path / "birds")
  image = format_writers.smooth_image(24, 24, seed=0)
  format_writers.write_cub(d, [
      dict(name=RED, image=image, box=(0, 0, 24, 24), cls=1, split="train",
           captions=b"The bird is red.\nA red bird\n" * 5),
      dict(name=BLUE, image=image, box=(0, 0, 24, 24), cls=1, split="train",
           captions=b"Small, blue wings\n" * 10),
      dict(name=HERON, image=image, box=(0, 0, 24, 24), cls=2, split="test",
           captions=b"the blue heron\n" * 10)])
  return d


def _train_captions(cfg):
  ds = data.load("cub", cfg.data_dir, "train", image_size=16, augment=False, shuffle=False,
                 **load_options(cfg))
  return [e["all_captions"].numpy()[:2, :4].tolist() for e in ds]


def test_prepare_run_data_writes_the_vocabulary_and_loading_uses_its_ids(cub_dir, tmp_path):
  cfg = GANConfig(dataset="cub", data_dir=cub_dir, model_dir=str(tmp_path / "run"))
  prepare_run_data(cfg)
  path = os.path.join(cfg.model_dir, "vocab.txt")
  with open(path, encoding="utf-8") as f:
    assert f.read() == "\n".join(VOCAB) + "\n"
  assert load_options(cfg)["vocabulary"] == path
  # RED: "the bird is red" = 1 2 3 4, "a red bird" = 5 4 2; BLUE: "small blue wings" = 6 7 8.
  assert _train_captions(cfg) == [[[1, 2, 3, 4], [5, 4, 2, 0]], [[6, 7, 8, 0], [6, 7, 8, 0]]]
  assert bad_records.counts() == {}


def test_an_existing_run_vocabulary_is_kept_and_its_ids_are_used(cub_dir, tmp_path):
  """A resumed run (or evaluation) keeps the word ids it trained with."""
  cfg = GANConfig(dataset="cub", data_dir=cub_dir, model_dir=str(tmp_path / "run"))
  kept = ["<end>", "heron", "wings", "blue", "small", "red", "is", "bird", "the"]  # no "a"
  data.text.Vocabulary(kept).save(os.path.join(cfg.model_dir, "vocab.txt"))
  prepare_run_data(cfg)
  with open(os.path.join(cfg.model_dir, "vocab.txt"), encoding="utf-8") as f:
    assert f.read().split() == kept
  # "a" is not in the run's vocabulary: dropped when encoding, as AttnGAN drops unknown words.
  assert _train_captions(cfg) == [[[8, 7, 6, 5], [5, 7, 0, 0]], [[4, 3, 2, 0], [4, 3, 2, 0]]]
