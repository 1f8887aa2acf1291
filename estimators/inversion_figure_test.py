"""The README inversion figure: rows of comparison.png enlarged, captions and the table from
inversion.json (fake inversion directories, no model)."""
import json

import numpy as np
from PIL import Image

from estimators import inversion_figure as fig


def _fake_inversion(path, value):
  path.mkdir()
  Image.fromarray(np.full((8, 40, 3), value, np.uint8)).save(path / "comparison.png")
  methods = {m: {"psnr": 20.0 + i, "ssim": 0.5 + i / 10, "best_restart": 1}
             for i, m in enumerate(("pixel", "weighted_pixel", "attention"))}
  (path / "inversion.json").write_text(json.dumps(
      {"methods": methods, "start": {"psnr_per_restart": [1.0, 9.5],
                                      "ssim_per_restart": [0.0, 0.125]}}))
  return str(path)


def test_rows_are_the_enlarged_comparisons_and_the_table_their_best_restarts(tmp_path):
  dirs = {0: _fake_inversion(tmp_path / "a", 50), 5: _fake_inversion(tmp_path / "b", 200)}
  out = tmp_path / "docs" / "figure.png"
  fig.figure(dirs, str(out))
  image = np.asarray(Image.open(out).convert("RGB"))
  cell = 8 * fig.SCALE
  assert image.shape == (fig.CAPTION + 2 * (cell + fig.CAPTION), 5 * cell, 3)
  for r, value in enumerate((50, 200)):
    top = fig.CAPTION + r * (cell + fig.CAPTION)
    assert (image[top:top + cell] == value).all()
  assert fig.table(dirs, {0: 3, 5: 7}).splitlines()[2:] == [
      "| 0 (3) | 9.50 dB / 0.125 | 20.00 dB / 0.500 | 21.00 dB / 0.600 | 22.00 dB / 0.700 |",
      "| 5 (7) | 9.50 dB / 0.125 | 20.00 dB / 0.500 | 21.00 dB / 0.600 | 22.00 dB / 0.700 |"]
