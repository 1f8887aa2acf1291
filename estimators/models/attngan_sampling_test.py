"""AttnGAN's Figure-4 sheet (--mode=sample): per stage the image, then its top words' attention
drawn with the suite's one attention drawing, in the order of the words' attention mass."""
import numpy as np

from data.text import Vocabulary
from estimators import summaries
from estimators.models import attngan_sampling

TILE = attngan_sampling.TILE


def test_figure_rows_are_the_stage_image_then_its_top_words_by_mass():
  rng = np.random.RandomState(0)
  vocab = Vocabulary(["<end>", "bird", "red", "wings", "small", "beak", "long"])
  ids = np.array(vocab.encode("small red bird long wings beak".split()) + [0, 0], np.int32)
  images = [rng.uniform(-1, 1, (16, 16, 3)).astype(np.float32),
            rng.uniform(-1, 1, (32, 32, 3)).astype(np.float32)]
  betas = [rng.uniform(0, 1, (8, 16 * 16)).astype(np.float32),
           rng.uniform(0, 1, (8, 8 * 8)).astype(np.float32)]  # stage 2 attends a coarser grid
  betas[0][2] += 1.0  # "bird" gets the most attention at stage 1, "wings" next
  betas[0][4] += 0.5
  betas[0][6:] += 5.0  # padding positions never count as words
  figure = attngan_sampling.attention_figure(images, betas, ids, vocab)
  assert figure.dtype == np.uint8
  assert figure.shape == (2 * (TILE + 14), (1 + attngan_sampling.TOP_WORDS) * TILE, 3)

  words = attngan_sampling.top_words(betas[0], ids, vocab)
  assert [w for w, _, _ in words][:2] == ["bird", "wings"]
  assert {t for _, _, t in words} <= set(range(6))
  np.testing.assert_allclose([m for _, m, _ in words][:2],
                             [betas[0][2].mean(), betas[0][4].mean()], rtol=1e-6)
  for row, (image, beta) in enumerate(zip(images, betas)):
    top = row * (TILE + 14) + 14
    sample = figure[top:top + TILE, :TILE]
    expected = summaries.attention_tiles(image[None], None, TILE)[0].numpy()
    np.testing.assert_array_equal(sample, np.round(expected * 255).astype(np.uint8))
    for j, (_, _, t) in enumerate(attngan_sampling.top_words(beta, ids, vocab)):
      tile = figure[top:top + TILE, (j + 1) * TILE:(j + 2) * TILE]
      drawn = summaries.attention_tiles(image[None], beta[t][None], TILE)[0].numpy()
      np.testing.assert_array_equal(tile, np.round(drawn * 255).astype(np.uint8))
