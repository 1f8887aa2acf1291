"""Throughput of each data pipeline at 128 px against a bare decode loop over the same files.

  python bench/data.py                        # 1536 ImageNet-style JPEGs, 7 timed passes each
  python bench/data.py --num_images=384 --passes=3

Writes JPEGs with ImageNet's typical sizes (500x375, 375x500, 500x333, 333x500, 400x300) at
quality 95, cut from the two real photos bundled with scikit-learn (scaled, flipped, jittered), once
into a temp dir in every layout the loaders read (image folder, ImageNet TFRecord shards, CUB,
COCO), plus CIFAR-10 binary batches.
The baseline ("bare decode") is the least work that reads those images: a tf.data map of
read_file + decode_jpeg over the same files (or records), parallel, nothing else (it keeps one
pixel per image, so images of any size batch). Each pipeline
and its baseline are batched by 32 and timed over full passes after one warm-up pass; passes of
all pipelines alternate, so load from other processes spreads over all of them. Reported: the
best and median images/s and the median CPU ms per image (process CPU time, less sensitive to
other processes on a shared machine); ratio = pipeline / its baseline. Also the literal "bare
decode loop": a Python loop of read_file + decode_jpeg, one image at a time.
Passes should be long enough for the steady state a training epoch sees: each pass starts new
iterators (shards opened, functions instantiated, thread pools and autotuning warmed up), a fixed
cost of some tens of ms that an ImageNet epoch spreads over 1.28M images. With 384 images a pass
lasts ~0.2 s and that cost is a sixth of it, hence the 1536 default.
"""
import argparse
import os
import resource
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SIZES = [(375, 500), (500, 375), (333, 500), (500, 333), (300, 400)]


def _cpu_seconds():
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def write_files(root, n):
  """Writes every layout; returns {layout: path} and the JPEG paths of the image folder."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from data import format_writers as fw  # pylint: disable=import-outside-toplevel
  jpegs = [fw.jpeg_bytes(fw.photo_image(*SIZES[i % len(SIZES)], seed=i), quality=95)
           for i in range(n)]
  folder = os.path.join(root, "folder")
  paths = [fw.write_bytes(os.path.join(folder, f"c{i % 10}", f"{i:05d}.jpg"), j)
           for i, j in enumerate(jpegs)]
  shards = [[(j, 1 + i % 1000) for i, j in enumerate(jpegs) if i % 8 == k] for k in range(8)]
  fw.write_imagenet_shards(os.path.join(root, "imagenet"), "train", shards)
  caption = b"\n".join(b"a small bird with a red crown and short wings %d" % k
                       for k in range(10)) + b"\n"
  cub = []
  for i, j in enumerate(jpegs):
    h, w = SIZES[i % len(SIZES)]
    cub.append(dict(name=f"{1 + i % 5:03d}.Bird/Bird_{i:05d}", data=j, cls=1 + i % 5,
                    box=(w * 0.2, h * 0.2, w * 0.5, h * 0.6), split="train", captions=caption))
  fw.write_cub(os.path.join(root, "cub"), cub)
  images = [{"id": i + 1, "file_name": f"COCO_train2014_{i + 1:012d}.jpg", "data": j}
            for i, j in enumerate(jpegs)]
  annotations = [{"id": 10 * i + k, "image_id": i + 1, "caption": f"a photo of thing {k}"}
                 for i in range(n) for k in range(5)]
  fw.write_coco(os.path.join(root, "coco"), "train2014", "captions_train2014.json", images,
                annotations)
  fw.write_coco(os.path.join(root, "coco"), "val2014", "captions_val2014.json", [], [])
  os.makedirs(os.path.join(root, "coco", "val2014"), exist_ok=True)
  cifar = os.path.join(root, "cifar")
  rng = np.random.RandomState(0)
  for b in range(1, 6):
    count = 10 * n // 5
    fw.write_bytes(os.path.join(cifar, f"data_batch_{b}.bin"), fw.cifar_binary(
        rng.randint(0, 256, (count, 32, 32, 3)).astype(np.uint8), rng.randint(0, 10, count)))
  return {"folder": folder, "imagenet": os.path.join(root, "imagenet"),
          "cub": os.path.join(root, "cub"), "coco": os.path.join(root, "coco"),
          "cifar": cifar}, paths


def pipelines(dirs, paths, size):
  """name -> (make pipeline, make baseline); every dataset yields the same images once."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  import data  # pylint: disable=import-outside-toplevel
  auto = tf.data.AUTOTUNE

  def one_pixel(image):  # a scalar that needs the whole decode, so images of any size batch
    return image[0, 0, 0]

  def bare_files():
    return tf.data.Dataset.from_tensor_slices(paths).map(
        lambda p: one_pixel(tf.io.decode_jpeg(tf.io.read_file(p), channels=3)),
        num_parallel_calls=auto)

  def bare_records():
    files = tf.data.Dataset.list_files(os.path.join(dirs["imagenet"], "train-*"), shuffle=False)
    feature = {"image/encoded": tf.io.FixedLenFeature([], tf.string)}
    return files.interleave(tf.data.TFRecordDataset, cycle_length=8,
                            num_parallel_calls=auto).map(
        lambda r: one_pixel(tf.io.decode_jpeg(
            tf.io.parse_single_example(r, feature)["image/encoded"], channels=3)),
        num_parallel_calls=auto)

  def bare_cifar():
    files = tf.data.Dataset.list_files(os.path.join(dirs["cifar"], "*.bin"), shuffle=False)
    return files.interleave(lambda f: tf.data.FixedLengthRecordDataset(f, 3073),
                            num_parallel_calls=auto).map(
        lambda r: tf.io.decode_raw(r, tf.uint8), num_parallel_calls=auto)

  def load(name, directory, image_size=size, **kw):
    return lambda: data.load(name, directory, "train", image_size=image_size, seed=0, **kw)
  return {
      "imagenet TFRecord shards": (
          load("imagenet", dirs["imagenet"], jpeg_downscale=True), bare_records),
      "  same, TF-GAN exact pixels (the default)": (
          load("imagenet", dirs["imagenet"]), bare_records),
      "image folder (ffhq)": (load("ffhq", dirs["folder"]), bare_files),
      "CUB + captions": (load("cub", dirs["cub"]), bare_files),
      "COCO + captions": (load("coco", dirs["coco"]), bare_files),
      "CIFAR-10 binary (32 px, cached)": (load("cifar10", dirs["cifar"], image_size=32),
                                          bare_cifar),
  }


def python_loop_rate(paths, passes=2):
  """The literal bare loop: read and decode each file in turn, eagerly, one thread."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  best = 0.0
  for _ in range(passes):
    start = time.time()
    for p in paths:
      tf.io.decode_jpeg(tf.io.read_file(p), channels=3)
    best = max(best, len(paths) / (time.time() - start))
  return best


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--num_images", type=int, default=1536)
  parser.add_argument("--passes", type=int, default=7)
  parser.add_argument("--size", type=int, default=128)
  parser.add_argument("--batch", type=int, default=32)
  return parser.parse_args(argv)


def format_table(runs, loop_rate, size, num_images):
  """The result table's lines. runs: {(name, "pipeline" | "bare"): {"count": images per pass,
  "rate": [images/s per pass], "cpu": [CPU ms per image per pass]}}, in row order;
  loop_rate: images/s of the Python loop over num_images files."""
  names = list(dict.fromkeys(n for n, _ in runs))
  head, loop = f"pipeline ({size} px unless noted)", "bare decode loop (Python, 1 thread)"
  width = max(len(label) for label in names + [head, loop])  # the longest label fits
  lines = [
      f"{head:{width}s} {'images':>6s} | "
      f"{'img/s best':>10s} {'median':>6s} {'cpu ms':>6s} | {'bare best':>9s} {'median':>6s} "
      f"{'cpu ms':>6s} | {'ratio':>5s} {'cpu ratio':>9s}"]
  for name in names:
    p, b = runs[(name, "pipeline")], runs[(name, "bare")]
    cpu, bare_cpu = statistics.median(p["cpu"]), statistics.median(b["cpu"])
    lines.append(
        f"{name:{width}s} {p['count']:6d} | {max(p['rate']):10.0f} "
        f"{statistics.median(p['rate']):6.0f} {cpu:6.2f} | {max(b['rate']):9.0f} "
        f"{statistics.median(b['rate']):6.0f} {bare_cpu:6.2f} | "
        f"{max(p['rate']) / max(b['rate']):5.2f} {bare_cpu / cpu:9.2f}")
  lines.append(
      f"{loop:{width}s} {num_images:6d} | {loop_rate:10.0f}"
      f"   imagenet (DCT downscale) pipeline best / loop best: "
      f"{max(runs[('imagenet TFRecord shards', 'pipeline')]['rate']) / loop_rate:.2f}")
  return lines


def main(argv=None):
  args = parse_args(argv)
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  with tempfile.TemporaryDirectory() as root:
    t = time.time()
    dirs, paths = write_files(root, args.num_images)
    print(f"wrote {args.num_images} JPEGs (mean {sum(os.path.getsize(p) for p in paths) / len(paths) / 1e3:.0f} KB) "
          f"in every layout in {time.time() - t:.0f} s; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    runs = {}
    for name, (make, make_bare) in pipelines(dirs, paths, args.size).items():
      for kind, fn in (("pipeline", make), ("bare", make_bare)):
        ds = fn().batch(args.batch).prefetch(2)
        count = sum(int(tf.shape(tf.nest.flatten(b)[0])[0]) for b in ds)   # warm-up pass
        runs[(name, kind)] = {"ds": ds, "count": count, "rate": [], "cpu": []}
    for _ in range(args.passes):
      for run in runs.values():
        start, cpu = time.time(), _cpu_seconds()
        for _ in run["ds"]:
          pass
        run["rate"].append(run["count"] / (time.time() - start))
        run["cpu"].append(1e3 * (_cpu_seconds() - cpu) / run["count"])
    loop_rate = python_loop_rate(paths)

  print("\n" + "\n".join(format_table(runs, loop_rate, args.size, len(paths))))
  print("\nratio = best img/s of the pipeline / best of its bare decode (a parallel tf.data map of "
        "read + decode_jpeg\nover the same files); best passes are the least disturbed by other "
        "processes. cpu ratio = bare CPU ms per\nimage / pipeline CPU ms per image (process CPU "
        "time; steadier on a shared machine). 1.0 = no overhead.")


if __name__ == "__main__":
  main()
