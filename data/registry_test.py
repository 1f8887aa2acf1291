"""The one entry point: every --dataset name, common options, generic sharding, option errors."""
import re

import pytest
import tensorflow as tf

import data
from data import pipeline
from data import sharding


def test_every_dataset_of_the_issue_is_registered_with_what_run_py_needs():
  names = {"digits", "cifar10", "imagenet", "imagenet32", "imagenet64", "imagenet128",
           "imagenet256", "cub", "coco", "image_folder", "celeba", "ffhq", "lsun",
           "digits_captions"}
  for name in names:
    assert data.get_spec(name).name == name
  assert set(data.DATASETS) == names
  cub, coco = data.get_spec("cub"), data.get_spec("coco")
  assert (cub.has_captions, cub.captions_per_image, cub.default_max_words, cub.num_classes) == (
      True, 10, 18, 200)
  captioned = data.get_spec("digits_captions")
  assert (captioned.has_captions, captioned.captions_per_image, captioned.num_classes) == (
      True, 10, 10)
  assert (coco.has_captions, coco.captions_per_image, coco.default_max_words, coco.num_classes) == (
      True, 5, 12, 0)
  assert callable(cub.vocabulary) and callable(coco.vocabulary)
  assert data.get_spec("imagenet128").num_classes == 1000
  assert data.get_spec("imagenet64").default_image_size == 64
  assert not data.get_spec("cifar10").has_captions and data.get_spec("cifar10").vocabulary is None


def test_common_options_work_for_a_loader_without_them_and_shards_partition_it():
  parts = [list(data.load("digits", split="test", image_size=8, seed=3, strict=True,
                          num_shards=2, shard_index=i).map(lambda e: e["labels"]).as_numpy_iterator())
           for i in range(2)]
  whole = list(data.load("digits", split="test", image_size=8).map(
      lambda e: e["labels"]).as_numpy_iterator())
  assert (len(parts[0]), len(parts[1]), len(whole)) == (180, 179, 359)
  assert parts[0] == whole[0::2] and parts[1] == whole[1::2]


def test_unknown_options_and_conflicting_shard_arguments_are_errors():
  with pytest.raises(ValueError, match="takes no option max_words"):
    data.load("digits", max_words=18)
  with pytest.raises(ValueError, match="max_words"):   # lists the dataset's own options
    data.load("cub", data_dir="/nonexistent", max_word=18)
  with pytest.raises(ValueError, match="not both"):
    sharding.resolve(tf.distribute.InputContext(2, 0), num_shards=2, shard_index=0)
  with pytest.raises(ValueError, match="go together"):
    sharding.resolve(num_shards=2)
  with pytest.raises(ValueError, match="bad shard"):
    sharding.Shard(2, 2)


def test_parse_options_types_values_and_names_what_the_dataset_takes():
  from data.registry import parse_options, own_options  # pylint: disable=import-outside-toplevel
  assert own_options("imagenet") == ["jpeg_downscale", "parallel_reads", "resize_method",
                                     "shuffle", "source"]
  assert parse_options("imagenet", ["jpeg_downscale=False", "parallel_reads=-1",
                                    "resize_method=area", "source=tfds"]) == {
      "jpeg_downscale": False, "parallel_reads": -1, "resize_method": "area", "source": "tfds"}
  assert parse_options("ffhq", ["cache=/tmp/c", "crop_size=140"]) == {
      "cache": "/tmp/c", "crop_size": 140}
  assert parse_options("ffhq", ["cache=true"]) == {"cache": True}
  for pairs, message in [
      (["jpeg_downscale=3"], "jpeg_downscale='3': expected bool (default False)"),
      (["shuffle_buffer_mb=lots"], "shuffle_buffer_mb='lots': expected float (default 512)"),
      (["parallel_reads=many"], "parallel_reads='many': expected int or none"),
      (["max_words=5"], "'max_words' is set by --max_words"),
      (["colour=red"], "dataset 'imagenet' takes no option 'colour'; its own options: "
                       "jpeg_downscale, parallel_reads, resize_method, shuffle, source; every "
                       "dataset's: shuffle_buffer_mb"),
      (["=3"], "takes key=value pairs, got '=3'")]:
    with pytest.raises(ValueError, match=re.escape(message)):
      parse_options("imagenet", pairs)


def test_every_dataset_takes_the_shuffle_memory_budget_through_load_and_parse_options():
  from data.registry import parse_options  # pylint: disable=import-outside-toplevel
  for name in sorted(data.DATASETS):
    assert parse_options(name, ["shuffle_buffer_mb=256"]) == {"shuffle_buffer_mb": 256.0}, name
  assert isinstance(parse_options("digits", ["shuffle_buffer_mb=256"])["shuffle_buffer_mb"], float)
  ds = data.load("digits", split="test", image_size=8, shuffle_buffer_mb=1.5)
  assert pipeline.shuffle_buffer_mb_of(ds) == 1.5
  assert pipeline.shuffle_buffer_mb_of(data.load("digits", split="test", image_size=8)) == 512.0
  with pytest.raises(ValueError, match="shuffle_buffer_mb must be a positive number of MiB, got 0"):
    data.load("digits", split="test", image_size=8, shuffle_buffer_mb=0)


def test_resolved_options_give_every_option_with_its_default_or_given_value():
  from data.registry import resolved_options  # pylint: disable=import-outside-toplevel
  imagenet = {"jpeg_downscale": False, "parallel_reads": None, "resize_method": "tfgan",
              "shuffle": None, "shuffle_buffer_mb": 512, "source": "auto"}
  assert resolved_options("imagenet128") == imagenet
  assert list(resolved_options("imagenet128")) == sorted(imagenet)
  assert resolved_options("imagenet", ["jpeg_downscale=true", "shuffle_buffer_mb=64"]) == {
      **imagenet, "jpeg_downscale": True, "shuffle_buffer_mb": 64.0}
  assert resolved_options("imagenet", {"parallel_reads": -1}) == {**imagenet, "parallel_reads": -1}
  assert resolved_options("digits") == {"shuffle_buffer_mb": 512}
  assert resolved_options("cifar10") == {"cache": True, "shuffle": None, "shuffle_buffer_mb": 512,
                                         "source": "auto"}
  cub = resolved_options("cub")          # run.py's own options (max_words, vocabulary) are not
  assert "max_words" not in cub and "vocabulary" not in cub and cub["jpeg_downscale"] is False
  for name in sorted(data.DATASETS):      # exactly what parse_options accepts
    for key, value in resolved_options(name).items():
      if value is not None:
        text = str(value).lower() if isinstance(value, bool) else str(value)
        assert _parses(name, f"{key}={text}"), (name, key)
  with pytest.raises(ValueError, match="dataset 'digits' takes no option 'crop_size'"):
    resolved_options("digits", {"crop_size": 3})
  with pytest.raises(ValueError, match="'max_words' is set by --max_words"):
    resolved_options("cub", ["max_words=5"])


def _parses(name, pair):
  from data.registry import parse_options  # pylint: disable=import-outside-toplevel
  return bool(parse_options(name, [pair]))
