"""The paper numbers the scoreboard compares against, checked against the papers' tables as typed
here a second time (SAGAN Table 1, YLG Table 1, AttnGAN Table 2, LadaGAN Tables III and IV)."""
import re

from eval import paper_results
from eval.paper_results import EXPERIMENTS


def _numbers(prefix):
  return {(e.name, n.metric.name): n.value for e in EXPERIMENTS if e.name.startswith(prefix)
          for n in e.numbers}


def test_sagan_table1_fid_and_is_of_every_column():
  # Columns: no attention; SAGAN feat8..feat64; Residual feat8..feat64.
  fid = [22.96, 22.98, 22.14, 18.28, 18.65, 42.13, 22.40, 27.33, 28.82]
  inception = [42.87, 43.15, 45.94, 51.43, 52.52, 23.17, 44.49, 38.50, 38.96]
  names = (["SAGAN Table 1: no attention"]
           + [f"SAGAN Table 1: SAGAN feat{s}" for s in (8, 16, 32, 64)]
           + [f"SAGAN Table 1: residual block feat{s}" for s in (8, 16, 32, 64)])
  expected = {}
  for name, f, i in zip(names, fid, inception):
    expected[(name, "FID")] = f
    expected[(name, "IS")] = i
  assert _numbers("SAGAN Table 1") == expected


def test_ylg_table1_rows():
  rows = {"SAGAN, 1 head": (18.65, 52.52), "SAGAN, 8 heads": (20.09, 46.01),
          "YLG-SAGAN": (15.94, 57.22), "YLG - No ESA": (17.47, 51.09),
          "YLG - Strided": (16.64, 55.21)}
  expected = {}
  for row, (fid, inception) in rows.items():
    expected[(f"YLG Table 1: {row}", "FID")] = fid
    expected[(f"YLG Table 1: {row}", "IS")] = inception
  assert _numbers("YLG Table 1") == expected


def test_attngan_and_ladagan_headlines_with_protocols():
  by_source = {(e.name, n.value): (n.spread, n.protocol) for e in EXPERIMENTS for n in e.numbers}
  assert by_source[("AttnGAN CUB (AttnGAN2, lambda=5)", 4.36)][0] == 0.03
  assert by_source[("AttnGAN CUB (AttnGAN2, lambda=5)", 67.82)][0] == 4.43
  assert by_source[("AttnGAN COCO (AttnGAN2, lambda=50)", 25.89)][0] == 0.47
  assert by_source[("AttnGAN COCO (AttnGAN2, lambda=50)", 85.47)][0] == 3.69
  assert by_source[("AttnGAN CUB (AttnGAN2, lambda=5)", 4.36)][1].num_generated == 30_000
  lada = {(name, value): (p.num_generated, p.real_split, p.num_real)
          for (name, value), (_, p) in by_source.items() if name.startswith("LadaGAN")}
  assert lada == {
      ("LadaGAN CIFAR-10 (bCR)", 3.29): (50_000, "train", 50_000),
      ("LadaGAN CIFAR-10 (no bCR)", 4.88): (50_000, "train", 50_000),
      ("LadaGAN CelebA 64", 2.89): (19_962, "test", 19_962),
      ("LadaGAN CelebA 64", 1.81): (50_000, "train", 162_770),
      ("LadaGAN FFHQ 128", 4.48): (50_000, "train", 70_000),
      ("LadaGAN LSUN bedroom 128", 5.08): (30_000, "train", 30_000),
      ("LadaGAN LSUN bedroom 128", 4.60): (50_000, "train", 50_000)}


def test_every_number_cites_a_table_and_metrics_have_directions():
  for e in EXPERIMENTS:
    assert e.numbers, e.name
    for n in e.numbers:
      assert re.search(r"Table [0-9IV]+", n.source), (e.name, n.source)
      assert n.protocol.classifier and n.protocol.reference
  assert paper_results.FID.lower_is_better and not paper_results.IS_SPLITS.lower_is_better
  assert not paper_results.R_PRECISION.lower_is_better and not paper_results.R_PRECISION.inception
  assert len({e.name for e in EXPERIMENTS}) == len(EXPERIMENTS)
