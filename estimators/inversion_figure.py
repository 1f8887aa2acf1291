"""The README's inversion figure (issue #26 item 4): held-out digits inverted by the three methods.

    python -m estimators.inversion_figure --flagfile=configs/ylg_sagan_digits.cfg \\
        --images=0,1,2,3 --out=docs/inversion_digits.png [--invert_steps=N ...]

Runs `run.py --mode=invert --invert_image=digits:test:K` for each K (the digits test split, which
no run trains on; its class is the label) with the given flagfile and any further --invert_*
flags, each into <model_dir>/inversions/figure_digits_test_K (a finished one is not redone), then
stacks the comparison.png rows (original, start, eq. 1 pixel, eq. 4 weighted pixel, eq. 3
attention), each cell enlarged 4x with its PSNR / SSIM from inversion.json under it, and prints
the same numbers as a Markdown table.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLUMNS = (("original", None), ("start", "start"), ("eq. 1 pixel", "pixel"),
           ("eq. 4 weighted pixel", "weighted_pixel"), ("eq. 3 attention", "attention"))
SCALE, CAPTION = 4, 14


def _flag_value(flagfile, name):
  for line in open(flagfile, encoding="utf-8"):
    if line.startswith(f"--{name}="):
      return line.strip().split("=", 1)[1]
  return None


def invert_all(flagfile, model_dir, images, extra):
  """{K: its inversion directory}, each made by one run.py --mode=invert process."""
  dirs = {}
  for k in images:
    out = os.path.join(model_dir, "inversions", f"figure_digits_test_{k}")
    if not os.path.exists(os.path.join(out, "inversion.json")):
      subprocess.run([sys.executable, os.path.join(ROOT, "run.py"), f"--flagfile={flagfile}",
                      f"--model_dir={model_dir}", "--mode=invert",
                      f"--invert_image=digits:test:{k}", f"--sample_dir={out}", *extra],
                     check=True, cwd=ROOT)
    dirs[k] = out
  return dirs


def scores(record):
  """{column key: (PSNR, SSIM)} of the best restart of each method (and of that start)."""
  out = {m: (v["psnr"], v["ssim"]) for m, v in record["methods"].items()}
  best = record["methods"]["attention"]["best_restart"]  # comparison.png's start is this one
  out["start"] = (record["start"]["psnr_per_restart"][best],
                  record["start"]["ssim_per_restart"][best])
  return out


def figure(dirs, out_path):
  """Stacks each directory's comparison.png, enlarged, with a header and PSNR / SSIM captions."""
  from PIL import Image, ImageDraw  # pylint: disable=import-outside-toplevel
  rows = []
  for d in dirs.values():
    with open(os.path.join(d, "inversion.json"), encoding="utf-8") as f:
      rows.append((np.asarray(Image.open(os.path.join(d, "comparison.png")).convert("RGB")),
                   scores(json.load(f))))
  cell = rows[0][0].shape[0] * SCALE
  width = cell * len(COLUMNS)
  canvas = Image.new("RGB", (width, CAPTION + len(rows) * (cell + CAPTION)), "white")
  draw = ImageDraw.Draw(canvas)
  for c, (title, _) in enumerate(COLUMNS):
    draw.text((c * cell + 3, 1), title, fill="black")
  for r, (strip, numbers) in enumerate(rows):
    top = CAPTION + r * (cell + CAPTION)
    big = Image.fromarray(strip).resize((strip.shape[1] * SCALE, cell), Image.NEAREST)
    canvas.paste(big, (0, top))
    for c, (_, key) in enumerate(COLUMNS):
      if key:
        psnr, ssim = numbers[key]
        draw.text((c * cell + 3, top + cell + 1), f"{psnr:.1f} dB / {ssim:.2f}", fill="black")
  os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
  canvas.save(out_path, optimize=True)
  return rows


def table(dirs, labels):
  lines = ["| test image (class) | start | eq. 1 pixel | eq. 4 weighted pixel | eq. 3 attention |",
           "|---|---|---|---|---|"]
  for k, d in dirs.items():
    with open(os.path.join(d, "inversion.json"), encoding="utf-8") as f:
      numbers = scores(json.load(f))
    cells = [f"{numbers[m][0]:.2f} dB / {numbers[m][1]:.3f}"
             for m in ("start", "pixel", "weighted_pixel", "attention")]
    lines.append(f"| {k} ({labels[k]}) | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--flagfile", required=True)
  parser.add_argument("--model_dir", default=None, help="default: the flagfile's")
  parser.add_argument("--images", default="0,1,2,3", help="indices into the digits test split")
  parser.add_argument("--out", default="docs/inversion_digits.png")
  args, extra = parser.parse_known_args(argv)
  model_dir = args.model_dir or _flag_value(args.flagfile, "model_dir")
  images = [int(k) for k in args.images.split(",")]
  from data import digits  # pylint: disable=import-outside-toplevel
  labels = digits.digits_source("test")[1]
  dirs = invert_all(args.flagfile, model_dir, images, extra)
  figure(dirs, args.out)
  print(table(dirs, {k: int(labels[k]) for k in images}))
  print(f"figure: {args.out}")


if __name__ == "__main__":
  main()
