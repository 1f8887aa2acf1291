"""bench/data.py (named apart from data/'s tests): arguments and presets, the result table from
given pass numbers, and the files it writes for 5 images (no pipeline is timed)."""
import glob
import math
import os

from PIL import Image
import pytest

from bench import data as data_bench
from bench import run_all


def test_defaults_are_the_documented_full_settings_and_quick_is_smaller():
  # docstring and README: 1536 JPEGs x 7 timed passes at 128 px, batches of 32
  assert run_all.BENCHMARKS["data"].full == []
  args = data_bench.parse_args(run_all.BENCHMARKS["data"].full)
  assert (args.num_images, args.passes, args.size, args.batch) == (1536, 7, 128, 32)
  args = data_bench.parse_args(run_all.BENCHMARKS["data"].quick)
  assert (args.num_images, args.passes, args.size, args.batch) == (192, 3, 128, 32)


@pytest.mark.parametrize("argv", [["--num_images=many"], ["--passes=1.5"], ["--sizes=64"]])
def test_bad_arguments_are_refused(argv, capsys):
  with pytest.raises(SystemExit) as e:
    data_bench.parse_args(argv)
  assert e.value.code == 2 and "error:" in capsys.readouterr().err


def test_table_gives_best_median_cpu_and_ratios():
  runs = {("imagenet TFRecord shards", "pipeline"):
              {"count": 192, "rate": [100.0, 300.0, 200.0], "cpu": [2.0, 4.0, 3.0]},
          ("imagenet TFRecord shards", "bare"):
              {"count": 192, "rate": [600.0, 400.0, 500.0], "cpu": [1.5, 1.5, 1.5]},
          ("CIFAR-10 binary (32 px, cached)", "pipeline"):
              {"count": 1920, "rate": [4000.0], "cpu": [0.25]},
          ("CIFAR-10 binary (32 px, cached)", "bare"):
              {"count": 1920, "rate": [8000.0], "cpu": [0.1]}}
  lines = data_bench.format_table(runs, loop_rate=150.0, size=64, num_images=192)
  assert len(lines) == 4
  assert " ".join(lines[0].split()) == (
      "pipeline (64 px unless noted) images | img/s best median cpu ms | bare best median cpu ms | "
      "ratio cpu ratio")
  # best 300, median 200, CPU 3.00 ms; bare best 600, median 500, 1.50 ms; 300/600, 1.5/3.0
  assert lines[1].split() == ["imagenet", "TFRecord", "shards", "192", "|", "300", "200", "3.00",
                              "|", "600", "500", "1.50", "|", "0.50", "0.50"]
  width = len("bare decode loop (Python, 1 thread)")  # the longest label here: 35
  assert lines[1].index("192") == width + 1 + 3  # name padded, count right-aligned in 6
  # one pass each: 4000 / 8000 img/s, 0.25 / 0.10 CPU ms -> ratios 0.50 and 0.40
  assert lines[2].split() == ["CIFAR-10", "binary", "(32", "px,", "cached)", "1920", "|", "4000",
                              "4000", "0.25", "|", "8000", "8000", "0.10", "|", "0.50", "0.40"]
  # the Python loop: 150 img/s over 192 files; imagenet pipeline best / loop = 300 / 150
  assert lines[3].split() == ["bare", "decode", "loop", "(Python,", "1", "thread)", "192", "|",
                              "150", "imagenet", "(DCT", "downscale)", "pipeline", "best", "/",
                              "loop", "best:", "2.00"]


def test_cpu_seconds_is_a_finite_positive_process_time():
  first = data_bench._cpu_seconds()
  assert math.isfinite(first) and first > 0
  assert data_bench._cpu_seconds() >= first


def test_write_files_writes_every_layout_at_imagenet_sizes(tmp_path):
  dirs, paths = data_bench.write_files(str(tmp_path), 5)
  assert sorted(dirs) == ["cifar", "coco", "cub", "folder", "imagenet"]
  assert [os.path.relpath(p, dirs["folder"]) for p in paths] == [
      f"c{i}/{i:05d}.jpg" for i in range(5)]
  # one image of each size, in SIZES order (height, width): 500x375, 375x500, 500x333, ...
  assert [Image.open(p).size[::-1] for p in paths] == data_bench.SIZES
  assert len(glob.glob(os.path.join(dirs["imagenet"], "train-*-of-00008"))) == 8
  # 5 CIFAR batches of 10 * 5 // 5 = 10 records of 1 label byte + 32 * 32 * 3 pixels
  assert [os.path.getsize(os.path.join(dirs["cifar"], f"data_batch_{b}.bin"))
          for b in range(1, 6)] == [10 * 3073] * 5


def test_a_label_longer_than_the_others_widens_the_column_and_the_bars_align():
  long_name = "  same, TF-GAN exact pixels (the default)"  # 41 characters, one of the real rows
  runs = {(name, kind): {"count": 8, "rate": [10.0], "cpu": [1.0]}
          for name in ("imagenet TFRecord shards", long_name) for kind in ("pipeline", "bare")}
  lines = data_bench.format_table(runs, loop_rate=5.0, size=128, num_images=8)
  bars = {tuple(i for i, c in enumerate(line) if c == "|")[:1] for line in lines}
  assert bars == {(len(long_name) + 1 + 6 + 1,)}  # the first bar of every row in one column
  assert lines[2].startswith(long_name + " ")
