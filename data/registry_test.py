"""The one entry point: every --dataset name, common options, generic sharding, option errors."""
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
