"""The one entry point: every --dataset name, common options, generic sharding, option errors."""
import re

import pytest
import tensorflow as tf

import data
from data import sharding


def test_every_dataset_of_the_issue_is_registered_with_what_run_py_needs():
  names = {"digits", "cifar10", "imagenet", "imagenet32", "imagenet64", "imagenet128",
           "imagenet256", "cub", "coco", "image_folder", "celeba", "ffhq", "lsun"}
  for name in names:
    assert data.get_spec(name).name == name
  assert set(data.DATASETS) == names
  cub, coco = data.get_spec("cub"), data.get_spec("coco")
  assert (cub.has_captions, cub.captions_per_image, cub.default_max_words, cub.num_classes) == (
      True, 10, 18, 200)
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
      (["jpeg_downscale=3"], "jpeg_downscale='3': expected bool (default True)"),
      (["parallel_reads=many"], "parallel_reads='many': expected int or none"),
      (["max_words=5"], "'max_words' is set by --max_words"),
      (["colour=red"], "dataset 'imagenet' takes no option 'colour'; its own options: "
                       "jpeg_downscale, parallel_reads, resize_method, shuffle, source"),
      (["=3"], "takes key=value pairs, got '=3'")]:
    with pytest.raises(ValueError, match=re.escape(message)):
      parse_options("imagenet", pairs)
