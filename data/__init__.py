"""tf.data pipelines: one entry point, `load`, for every dataset the suite trains on.

Every dataset yields dict elements with
  images: float32 [H, W, 3] in [-1, 1]
  labels: int32 []           (class-conditional sets)
  captions: int32 [T], caption_length, caption_index, all_captions [K, T], all_caption_lengths [K]
                             (text-to-image sets: CUB, COCO)
and is registered in `DATASETS` with a `DatasetSpec` saying what it needs, so `run.py` can validate
flags before any graph is built.
"""
from data.registry import DATASETS, DatasetSpec, get_spec, load, register
from data.pipeline import batch_pipeline
# The dataset modules register themselves when imported; importing them here (and not from the
# registry) keeps the imports one way: data -> builtin -> each dataset module -> registry.
from data import builtin  # noqa: F401,E402  pylint: disable=wrong-import-position

__all__ = ["DATASETS", "DatasetSpec", "get_spec", "load", "register", "batch_pipeline"]
