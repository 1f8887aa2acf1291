"""Opening a released TensorFlow checkpoint for an importer: read by name, never run, and a
file of another kind refused with what it is not, a few of its keys and what was expected."""
from typing import Callable, Dict, Tuple

import tensorflow as tf

from estimators.model_registry import WeightsImportError


def open_checkpoint(prefix: str, expected: str, holds: Callable[[Dict[str, list]], bool],
                    kind: str) -> Tuple[object, Dict[str, list]]:
  """(reader, {key: shape}) of the checkpoint at `prefix` when `holds(keys)`.

  Raises:
    WeightsImportError: not a TensorFlow checkpoint, or not `kind` (e.g. "a LadaGAN
      tf.train.Checkpoint (no ema_generator/ object paths"), each naming `expected`.
  """
  try:
    reader = tf.train.load_checkpoint(prefix)
  except (tf.errors.OpError, ValueError) as e:
    raise WeightsImportError(f"{prefix}: not a TensorFlow checkpoint ({type(e).__name__}); "
                             f"expected {expected}") from None
  keys = reader.get_variable_to_shape_map()
  if not holds(keys):
    sample = sorted(k for k in keys if k != "_CHECKPOINTABLE_OBJECT_GRAPH")[:3]
    raise WeightsImportError(f"{prefix}: not {kind}; it holds e.g. {sample}); "
                             f"expected {expected}")
  return reader, keys
