"""Writes tiny datasets in the real on-disk formats, for the data tests and bench/data.py.

Nothing here is used by the pipelines themselves: it produces the files a user would have (JPEG and
PNG files, ImageNet TFRecord shards, CIFAR-10 binary batches, CUB and COCO layouts, prepared TFDS
directories built by the real TFDS builders from tiny source archives).
"""
import io
import json
import os
import pickle
import tarfile
from typing import Dict, Iterable, List, Sequence, Tuple
from unittest import mock

import numpy as np
from PIL import Image
import tensorflow as tf


def smooth_image(height: int, width: int, seed: int) -> np.ndarray:
  """uint8 [h, w, 3] with photo-like structure (gradients, edges, mild noise)."""
  rng = np.random.RandomState(seed)
  y, x = np.mgrid[0:height, 0:width].astype(np.float32)
  f = rng.uniform(8, 40, size=3)
  base = np.stack([np.sin(x / f[0]) * 90 + 128, np.cos(y / f[1]) * 90 + 128,
                   ((x + y) / f[2] * 30) % 256], axis=-1)
  return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def photo_image(height: int, width: int, seed: int) -> np.ndarray:
  """uint8 [h, w, 3]: a random crop (rotated for portrait sizes, flipped, brightness-jittered) of
  one of the two real 427x640 photos bundled with scikit-learn: realistic JPEG statistics without
  downloads. Sizes up to 427 x 640 (or 640 x 427) keep the photo's own detail (no upscaling)."""
  from sklearn.datasets import load_sample_images  # pylint: disable=import-outside-toplevel
  rng = np.random.RandomState(seed)
  photo = load_sample_images().images[seed % 2]
  if height > photo.shape[0]:
    photo = np.rot90(photo)
  if height > photo.shape[0] or width > photo.shape[1]:
    scale = max(height / photo.shape[0], width / photo.shape[1])
    photo = np.asarray(Image.fromarray(photo).resize(
        (int(np.ceil(photo.shape[1] * scale)), int(np.ceil(photo.shape[0] * scale)))))
  y = rng.randint(0, photo.shape[0] - height + 1)
  x = rng.randint(0, photo.shape[1] - width + 1)
  crop = photo[y:y + height, x:x + width].astype(np.float32) * rng.uniform(0.8, 1.2)
  return np.clip(crop[:, ::-1] if rng.rand() < 0.5 else crop, 0, 255).astype(np.uint8)


def jpeg_bytes(image: np.ndarray, quality: int = 90) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(image).save(buf, format="JPEG", quality=quality)
  return buf.getvalue()


def png_bytes(image: np.ndarray) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(image).save(buf, format="PNG")
  return buf.getvalue()


def write_bytes(path: str, data: bytes) -> str:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "wb") as f:
    f.write(data)
  return path


# ImageNet TFRecords (build_imagenet_data.py / imagenet_to_gcs.py format).

def imagenet_example(jpeg: bytes, label: int, height: int = 0, width: int = 0) -> bytes:
  def b(v):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

  def i(v):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
  return tf.train.Example(features=tf.train.Features(feature={
      "image/encoded": b(jpeg), "image/format": b(b"JPEG"), "image/class/label": i(label),
      "image/class/synset": b(b"n00000000"), "image/height": i(height), "image/width": i(width),
  })).SerializeToString()


def write_imagenet_shards(directory: str, split: str,
                          shards: Sequence[Sequence[Tuple[bytes, int]]]) -> List[str]:
  """shards[k] = [(jpeg bytes, 1-based label), ...] -> <directory>/<split>-0000k-of-0000n."""
  os.makedirs(directory, exist_ok=True)
  paths = []
  for k, records in enumerate(shards):
    path = os.path.join(directory, f"{split}-{k:05d}-of-{len(shards):05d}")
    with tf.io.TFRecordWriter(path) as writer:
      for jpeg, label in records:
        writer.write(imagenet_example(jpeg, label))
    paths.append(path)
  return paths


# CIFAR-10 binary version.

def cifar_binary(images: np.ndarray, labels: Sequence[int]) -> bytes:
  """images uint8 [N, 32, 32, 3] -> records of label byte + R plane + G plane + B plane."""
  planes = np.transpose(images, [0, 3, 1, 2]).reshape(len(images), -1)
  return np.concatenate([np.asarray(labels, np.uint8)[:, None], planes], axis=1).tobytes()


# CUB-200-2011 + captions (AttnGAN layout).

def write_cub(data_dir: str, images: Sequence[Dict], attngan_split: bool = True) -> None:
  """images: dicts with name ('<class dir>/<image>'), image (uint8 array) or data (file bytes),
  box (x, y, w, h floats), cls (1-based), split ('train'|'test'), captions (file bytes)."""
  root = os.path.join(data_dir, "CUB_200_2011")
  lines = {"images.txt": [], "bounding_boxes.txt": [], "image_class_labels.txt": [],
           "train_test_split.txt": []}
  for n, im in enumerate(images, start=1):
    data = im["data"] if "data" in im else jpeg_bytes(im["image"])
    write_bytes(os.path.join(root, "images", im["name"] + ".jpg"), data)
    write_bytes(os.path.join(data_dir, "text", im["name"] + ".txt"), im["captions"])
    lines["images.txt"].append(f"{n} {im['name']}.jpg")
    lines["bounding_boxes.txt"].append(f"{n} " + " ".join(f"{v:.1f}" for v in im["box"]))
    lines["image_class_labels.txt"].append(f"{n} {im['cls']}")
    lines["train_test_split.txt"].append(f"{n} {1 if im['split'] == 'train' else 0}")
  for name, rows in lines.items():
    write_bytes(os.path.join(root, name), ("\n".join(rows) + "\n").encode())
  if attngan_split:
    for split in ("train", "test"):
      names = [im["name"] for im in images if im["split"] == split]
      write_bytes(os.path.join(data_dir, split, "filenames.pickle"),
                  pickle.dumps(names, protocol=2))


# COCO 2014 captions.

def write_coco(data_dir: str, split_dir: str, json_name: str, images: Sequence[Dict],
               annotations: Sequence[Dict]) -> None:
  """images: dicts id, file_name, image (array) or data (bytes); annotations: COCO dicts."""
  for im in images:
    data = im["data"] if "data" in im else jpeg_bytes(im["image"])
    write_bytes(os.path.join(data_dir, split_dir, im["file_name"]), data)
  content = {"info": {}, "licenses": [],
             "images": [{"id": im["id"], "file_name": im["file_name"], "height": 0, "width": 0}
                        for im in images],
             "annotations": list(annotations)}
  write_bytes(os.path.join(data_dir, "annotations", json_name), json.dumps(content).encode())


# Prepared TFDS directories, built by the real TFDS builders from tiny source archives.

def _tar_bytes(members: Iterable[Tuple[str, bytes]]) -> bytes:
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode="w") as tar:
    for name, data in members:
      info = tarfile.TarInfo(name)
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return buf.getvalue()


def prepare_tfds_imagenet(data_dir: str, manual_dir: str, train: Dict[str, List[bytes]],
                          validation: List[bytes]) -> None:
  """train: synset -> JPEGs (named <synset>_<i>.JPEG); validation JPEGs are named
  ILSVRC2012_val_0000000k.JPEG, so they get the first labels of TFDS's validation_labels.txt."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  inner = [(f"{syn}.tar", _tar_bytes((f"{syn}_{i}.JPEG", j) for i, j in enumerate(jpegs)))
           for syn, jpegs in train.items()]
  write_bytes(os.path.join(manual_dir, "ILSVRC2012_img_train.tar"), _tar_bytes(inner))
  write_bytes(os.path.join(manual_dir, "ILSVRC2012_img_val.tar"), _tar_bytes(
      (f"ILSVRC2012_val_{i + 1:08d}.JPEG", j) for i, j in enumerate(validation)))
  builder = tfds.builder("imagenet2012", data_dir=data_dir)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=manual_dir, compute_stats=tfds.download.ComputeStatsMode.SKIP))


def prepare_tfds_cifar10(data_dir: str, batches_parent: str) -> None:
  """Runs TFDS's cifar10 builder on <batches_parent>/cifar-10-batches-bin/ instead of the
  download (its _generate_examples reads these same binary files)."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]
  write_bytes(os.path.join(batches_parent, "cifar-10-batches-bin", "batches.meta.txt"),
              ("\n".join(names) + "\n").encode())
  with mock.patch.object(tfds.download.DownloadManager, "download_and_extract",
                         return_value=batches_parent):
    tfds.builder("cifar10", data_dir=data_dir).download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            compute_stats=tfds.download.ComputeStatsMode.SKIP))


def tfgan_reference_crop(image, size: int) -> np.ndarray:
  """TF-GAN self_attention_estimator's `_process_record` on a decoded uint8 image [H, W, 3]:
  central square via crop_and_resize, scaled to [-1, 1]. The independent reference for tests."""
  shape = tf.cast(tf.shape(image), tf.float32)
  box = tf.minimum(shape[0], shape[1])
  y0, x0 = tf.math.ceil(0.5 * (shape[0] - box)), tf.math.ceil(0.5 * (shape[1] - box))
  boxes = [[y0 / (shape[0] - 1), x0 / (shape[1] - 1), (y0 + box - 1) / (shape[0] - 1),
            (x0 + box - 1) / (shape[1] - 1)]]
  out = tf.image.crop_and_resize([image], boxes=boxes, box_indices=[0], crop_size=[size, size])
  return (out[0] * (2. / 255) - 1.).numpy()


def elements_in_tf1_graph(make_dataset) -> List[dict]:
  """Every element of `make_dataset()` built and read inside a TF1 graph and session, as an
  estimator's input_fn is: numpy dicts, in order."""
  out = []
  with tf.Graph().as_default():
    nxt = tf.compat.v1.data.make_one_shot_iterator(make_dataset()).get_next()
    with tf.compat.v1.Session() as sess:
      try:
        while True:
          out.append(sess.run(nxt))
      except tf.errors.OutOfRangeError:
        pass
  return out


def image_folder_with_a_corrupt_png(directory: str, num_good: int = 6) -> str:
  """`num_good` 40x48 PNGs 00.png, 01.png, ... and a truncated 03_truncated.png in `directory`
  (the strict-data error tests' folder); returns the bad file's path."""
  for i in range(num_good):
    write_bytes(os.path.join(directory, f"{i:02d}.png"), png_bytes(smooth_image(40, 48, i)))
  return write_bytes(os.path.join(directory, "03_truncated.png"), b"\x89PNG\r\n\x1a\n broken")

