"""R-precision protocols on constructed embeddings whose answer is known."""
import numpy as np
import pytest

from eval import r_precision as rp

PROTOCOLS = ["paper", "dmgan"]


def _world(seed, images=60, captions_per_image=5, dim=32, classes=6):
  """Caption pool: random sentence vectors, several per image; image i is in class i % C."""
  rng = np.random.default_rng(seed)
  pool = rng.normal(size=(images * captions_per_image, dim))
  image_ids = np.repeat(np.arange(images), captions_per_image)
  return pool, image_ids, image_ids % classes


def _queries(pool, image_ids, n, seed):
  """n queries, each generated from a random pool caption: (caption features, image ids)."""
  index = np.random.default_rng(seed).integers(0, len(pool), n)
  return pool[index], image_ids[index]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_perfect_encoder_scores_one(protocol):
  pool, image_ids, class_ids = _world(0)
  captions, ids = _queries(pool, image_ids, 250, 1)
  keys, pool_keys = (ids, image_ids) if protocol == "paper" else (ids % 6, class_ids)
  result = rp.r_precision(3.0 * captions, captions, keys, pool, pool_keys, protocol, batch_size=64)
  assert result.mean == 1.0 and result.std == 0.0
  assert result.protocol["name"] == protocol and result.protocol["num_queries"] == 250
  assert result.protocol["candidates"] == 100 and result.protocol["pool_size"] == 300


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_image_orthogonal_to_every_caption_scores_chance_exactly(protocol):
  pool, image_ids, _ = _world(1)
  pool[:, 0] = 0.0  # no caption uses dimension 0 ...
  captions, ids = _queries(pool, image_ids, 200, 2)
  images = np.zeros_like(captions)
  images[:, 0] = 1.0  # ... which is all the images use: 100 tied cosines of 0
  result = rp.r_precision(images, captions, ids, pool, image_ids, protocol)
  assert result.mean == pytest.approx(0.01, abs=1e-7) and result.std == pytest.approx(0, abs=1e-7)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_random_encoder_is_near_chance(protocol):
  pool, image_ids, _ = _world(2, images=200, dim=64)
  captions, ids = _queries(pool, image_ids, 3000, 3)
  images = np.random.default_rng(4).normal(size=captions.shape)
  result = rp.r_precision(images, captions, ids, pool, image_ids, protocol)
  assert abs(result.mean - 0.01) < 4 * np.sqrt(0.01 * 0.99 / 3000)


def _exactly_right(right, seed=5):
  """Images equal to their caption where `right` holds, opposite to it elsewhere."""
  pool, image_ids, _ = _world(seed)
  captions, ids = _queries(pool, image_ids, len(right), seed + 1)
  images = np.where(right[:, None], captions, -captions)
  return images, captions, ids, pool, image_ids


def test_paper_exactly_k_right_and_its_group_spread():
  right = np.zeros(300, bool)
  right[:100] = True  # groups of 100 queries: 1.0, 0.0, 0.0
  images, captions, ids, pool, image_ids = _exactly_right(right)
  result = rp.r_precision(images, captions, ids, pool, image_ids, "paper", batch_size=7)
  assert result.mean == pytest.approx(1 / 3, abs=1e-12)
  np.testing.assert_array_equal(result.values, [1.0, 0.0, 0.0])
  assert result.std == pytest.approx(np.std([1.0, 0.0, 0.0]), abs=1e-12)


def test_dmgan_every_query_counts_in_ten_folds():
  rng = np.random.default_rng(6)
  right = np.zeros(3000, bool)
  right[rng.choice(3000, 1234, replace=False)] = True
  images, captions, ids, pool, image_ids = _exactly_right(right)
  result = rp.r_precision(images, captions, ids, pool, image_ids, "dmgan", seed=3)
  assert len(result.values) == 10
  # Folds of 300 that together hold all 3000 queries (DM-GAN's slices would drop 10): 1234 hits.
  assert np.sum(result.values * 300) == pytest.approx(1234, abs=1e-9)
  assert result.mean == pytest.approx(1234 / 3000, abs=1e-12)
  assert result.std == pytest.approx(np.std(result.values), abs=1e-15) and result.std > 0


def test_negatives_never_share_the_key():
  """Pool captions of the query's own key are copies of the image: drawing one would tie."""
  pool, image_ids, class_ids = _world(7, images=120)
  captions, ids = _queries(pool, image_ids, 200, 8)
  images = captions.copy()
  for protocol, keys, pool_keys in [("paper", ids, image_ids), ("dmgan", ids % 6, class_ids)]:
    same_pool = pool.copy()
    acc = rp.RPrecisionAccumulator(protocol, same_pool, pool_keys, seed=0)
    for i in range(len(images)):
      same = pool_keys == keys[i]
      acc._pool[same] = images[i] / np.linalg.norm(images[i])  # every same-key caption = image
      acc.update(images[i:i + 1], captions[i:i + 1], keys[i:i + 1])
    assert acc.result().mean == 1.0, protocol


def test_paper_draws_distinct_negatives_and_dmgan_may_repeat():
  pool = np.eye(101)[:, :101]  # 101 distinct captions, one per image
  keys = np.arange(101)
  paper = rp.RPrecisionAccumulator("paper", pool, keys, seed=1)
  drawn = paper._draw(0)
  assert len(drawn) == 99 and len(set(drawn)) == 99 and 0 not in drawn
  dmgan = rp.RPrecisionAccumulator("dmgan", pool, keys, seed=1)
  drawn = np.concatenate([dmgan._draw(0) for _ in range(20)])
  assert 0 not in drawn
  assert any(len(set(dmgan._draw(0))) < 99 for _ in range(20))  # with replacement
  small = rp.RPrecisionAccumulator("paper", pool[:50], keys[:50], seed=1)
  with pytest.raises(ValueError, match="49 captions with another key"):
    small._draw(0)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_seeded_and_independent_of_batching(protocol):
  pool, image_ids, _ = _world(9)
  captions, ids = _queries(pool, image_ids, 500, 10)
  images = captions + 2.0 * np.random.default_rng(11).normal(size=captions.shape)
  a = rp.r_precision(images, captions, ids, pool, image_ids, protocol, seed=4, batch_size=500)
  b = rp.r_precision(images, captions, ids, pool, image_ids, protocol, seed=4, batch_size=13)
  c = rp.r_precision(images, captions, ids, pool, image_ids, protocol, seed=5, batch_size=500)
  assert (a.mean, a.std) == (b.mean, b.std)
  assert 0.05 < a.mean < 0.95 and (a.mean, a.std) != (c.mean, c.std)


def test_caller_supplied_negatives_and_ties():
  acc = rp.RPrecisionAccumulator("paper")
  image = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
  caption = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
  negatives = np.tile(np.array([0.0, 1.0]), (3, 99, 1))
  negatives[1, :3] = [1.0, 1.0]  # query 1: three negatives tie with its true caption
  acc.update(image, caption, negative_features=negatives)
  # Query 0 wins; query 1 shares first place with 3 others; query 2 ties all 99.
  result = acc.result()
  assert result.mean == pytest.approx((1.0 + 1 / 4 + 1 / 100) / 3)
  assert result.protocol["pool_size"] is None


def test_bad_inputs_fail_clearly():
  with pytest.raises(ValueError, match="unknown R-precision protocol"):
    rp.RPrecisionAccumulator("obj-gan")
  acc = rp.RPrecisionAccumulator("paper")
  with pytest.raises(ValueError, match="no candidate pool"):
    acc.update(np.ones((2, 3)), np.ones((2, 3)), [0, 1])
  with pytest.raises(ValueError, match=r"\[B, 99, D\]"):
    acc.update(np.ones((2, 3)), np.ones((2, 3)), negative_features=np.ones((2, 5, 3)))
  with pytest.raises(ValueError, match="no queries"):
    acc.result()


def test_memory_beyond_the_pool_is_four_bytes_per_query():
  pool, image_ids, _ = _world(12)
  acc = rp.RPrecisionAccumulator("dmgan", pool, image_ids)
  base = acc.nbytes
  captions, ids = _queries(pool, image_ids, 1000, 13)
  for start in range(0, 1000, 100):
    acc.update(captions[start:start + 100], captions[start:start + 100], ids[start:start + 100])
  assert acc.nbytes - base == 4 * 1000
