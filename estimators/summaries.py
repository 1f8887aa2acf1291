"""TensorBoard helpers for the estimator's train graph, shared by every model's summaries, and the
one drawing of attention maps over their samples that TensorBoard and --mode=attention_maps share."""
import numpy as np
import tensorflow as tf


def image_grid(images, cols):
  """[N, H, W, C] -> [1, rows*H, cols*W, C], row-major; N must divide by cols."""
  n, h, w, c = images.shape
  rows = n // cols
  x = tf.reshape(images[: rows * cols], [rows, cols, h, w, c])
  x = tf.transpose(x, [0, 2, 1, 3, 4])
  return tf.reshape(x, [1, rows * h, cols * w, c])


def add_image_grid(tag, images, cols):
  """One image summary `tag` of images [N, H, W, 3] in [-1, 1] laid out `cols` wide (as uint8,
  like add_figure: a dark early sample is shown as dark, not stretched to full range)."""
  add_figure(tag, image_grid((images + 1.0) / 2.0, cols)[0])


def add_scalars(values):
  """Scalar summaries {tag: value} under their tags as given."""
  with tf.compat.v1.name_scope(""):
    for tag, value in values.items():
      tf.compat.v1.summary.scalar(tag, value)


# --- attention drawn as the papers do (SAGAN Fig. 5, LadaGAN Fig. 6, AttnGAN Fig. 4) -----------
# One drawing for TensorBoard (in the train graph) and --mode=attention_maps (eagerly, figures.py):
# each map normalised on its own to [0, 1], coloured with jet, blended over the grey sample it
# belongs to, nearest-upsampled to a tile a screen shows; query points marked.

MIN_TILE = 128  # px per tile at least: an 8x8 map of a 32 px sample drawn at 32 px shows nothing
OVERLAY_ALPHA = 0.5  # weight of the heat colour over the grey sample
# SAGAN Figure 1 draws five query points: the centre and the four quarter points.
DEFAULT_QUERY_POINTS = ((0.25, 0.25), (0.25, 0.75), (0.5, 0.5), (0.75, 0.25), (0.75, 0.75))
MARKER_COLOURS = ((1.0, 1.0, 0.0), (0.0, 1.0, 0.0), (0.0, 1.0, 1.0), (1.0, 0.0, 1.0),
                  (1.0, 1.0, 1.0), (1.0, 0.55, 0.0), (0.6, 0.3, 1.0), (0.5, 1.0, 0.5))


def tile_size(image_size):
  """Pixels per tile of an attention figure: the image size, at least MIN_TILE."""
  return max(MIN_TILE, int(image_size))


def grid_side(n):
  """The side of a square grid of n positions (ValueError when n is not a square)."""
  side = int(round(np.sqrt(int(n))))
  if side * side != int(n):
    raise ValueError(f"attention over {n} positions is not a square grid")
  return side


def query_cells(points, side):
  """(row, col) fractions of the image -> (row, col) cells of a side x side grid (1.0 -> last)."""
  return [tuple(min(int(f * side), side - 1) for f in point) for point in points]


def jet(x):
  """The jet colour map: [...] in [0, 1] -> [..., 3] RGB in [0, 1] (0 dark blue, 0.5 green,
  1 dark red): r, g, b = clip(1.5 - |4x - c|) for c = 3, 2, 1."""
  x = tf.cast(x, tf.float32)[..., None]
  return tf.clip_by_value(1.5 - tf.abs(4.0 * x - tf.constant([3.0, 2.0, 1.0])), 0.0, 1.0)


def normalise_maps(maps):
  """[M, n] -> each map scaled by its own min and max to [0, 1] (a constant map -> all 0), so
  the near-uniform maps of early training still show where they peak."""
  maps = tf.cast(maps, tf.float32)
  low = tf.reduce_min(maps, axis=-1, keepdims=True)
  span = tf.reduce_max(maps, axis=-1, keepdims=True) - low
  return tf.math.divide_no_nan(maps - low, span)


def _marker_layer(markers, size):
  """Static paint for the markers of each tile: markers[m] a sequence of ((row, col) cell,
  grid side, RGB colour) -> (paint [M, S, S, 3], coverage [M, S, S, 1]) numpy: a square of the
  colour outlined in black, centred on the cell."""
  paint = np.zeros((len(markers), size, size, 3), np.float32)
  cover = np.zeros((len(markers), size, size, 1), np.float32)
  radius = max(1, size // 32)
  for m, tile in enumerate(markers):
    for cell, side, colour in tile or ():
      centre = [int((c + 0.5) * size / side) for c in cell]
      lo = [max(0, c - radius - 1) for c in centre]
      hi = [min(size, c + radius + 2) for c in centre]
      paint[m, lo[0]:hi[0], lo[1]:hi[1]] = 0.0  # outline
      paint[m, lo[0] + 1:hi[0] - 1, lo[1] + 1:hi[1] - 1] = colour
      cover[m, lo[0]:hi[0], lo[1]:hi[1]] = 1.0
  return paint, cover


def attention_tiles(images, maps, size, markers=None, alpha=OVERLAY_ALPHA):
  """The one drawing of attention, in TF ops (graph or eager).

  images [M, H, W, 3] in [-1, 1]; maps [M, n] over a square token grid (n = side * side; a
  per-token map or one query's row over the keys), or None for the sample itself in colour;
  markers: None or per tile a sequence of ((row, col) cell, grid side, RGB in [0, 1]).
  Returns [M, size, size, 3] in [0, 1]: (1 - alpha) * grey sample + alpha * jet(map normalised
  to [0, 1]), both nearest-resized to size, the markers painted over.
  """
  images = tf.cast(images, tf.float32)
  base = tf.image.resize((images + 1.0) / 2.0, [size, size], method="nearest")  # [M, S, S, 3]
  if maps is not None:
    maps = tf.cast(maps, tf.float32)
    side = grid_side(maps.shape[-1])
    heat = tf.reshape(normalise_maps(maps), [-1, side, side, 1])
    heat = tf.image.resize(heat, [size, size], method="nearest")[..., 0]  # [M, S, S]
    grey = tf.reduce_mean(base, axis=-1, keepdims=True)
    base = (1.0 - alpha) * grey + alpha * jet(heat)
  if markers is not None:
    paint, cover = _marker_layer(markers, size)
    base = base * (1.0 - cover) + paint * cover
  return tf.clip_by_value(base, 0.0, 1.0)


def tile_grid(tiles, cols):
  """[N, S, S, 3] -> [rows * S, cols * S, 3], row-major; N must divide by cols."""
  return image_grid(tiles, cols)[0]


def token_figure(images, maps, size):
  """Per-token maps: images [B, H, W, 3] in [-1, 1], maps [B, K, n] -> [B * S, (1 + K) * S, 3]
  in [0, 1]: a row per sample, the sample, then each of its K maps over it (LadaGAN's heads,
  the saliency of SAGAN's heads, AttnGAN's words)."""
  images = tf.cast(images, tf.float32)
  maps = tf.cast(maps, tf.float32)
  b, k = int(maps.shape[0]), int(maps.shape[1])
  plain = attention_tiles(images, None, size)[:, None]  # [B, 1, S, S, 3]
  under = tf.repeat(images, k, axis=0)  # [B * K, H, W, 3]
  heat = tf.reshape(attention_tiles(under, tf.reshape(maps, [b * k, -1]), size),
                    [b, k, size, size, 3])
  return tile_grid(tf.reshape(tf.concat([plain, heat], axis=1), [-1, size, size, 3]), 1 + k)


def query_figure(image, rows, cells, query_side, size):
  """Query-key maps of one sample: image [H, W, 3] in [-1, 1], rows [heads, Q, Nk] (the
  attention rows of Q query points over the keys), cells the Q query-grid cells (row, col) of a
  query_side x query_side grid -> [heads * S, (1 + Q) * S, 3] in [0, 1]: a row per head, the
  sample with every point marked in its colour, then each point's map with its marker (SAGAN
  Figures 1 and 5, YLG Figure 6)."""
  rows = tf.cast(rows, tf.float32)
  heads, q = int(rows.shape[0]), int(rows.shape[1])
  marks = [(cell, query_side, MARKER_COLOURS[i]) for i, cell in enumerate(cells)]
  image = tf.cast(image, tf.float32)[None]
  marked = attention_tiles(image, None, size, [marks])  # [1, S, S, 3]
  heat = attention_tiles(tf.repeat(image, heads * q, axis=0), tf.reshape(rows, [heads * q, -1]),
                         size, [[m] for m in marks] * heads)  # [heads * Q, S, S, 3]
  heat = tf.reshape(heat, [heads, q, size, size, 3])
  tiles = tf.concat([tf.repeat(marked[None], heads, axis=0), heat], axis=1)
  return tile_grid(tf.reshape(tiles, [-1, size, size, 3]), 1 + q)


def add_figure(tag, figure):
  """One image summary `tag` of a figure [H, W, 3] in [0, 1], as uint8: a float image would be
  rescaled by tf.summary.image (its maximum to 255), changing the drawn colours."""
  pixels = tf.cast(tf.round(tf.clip_by_value(figure, 0.0, 1.0) * 255.0), tf.uint8)[None]
  with tf.compat.v1.name_scope(""):  # the tag as given, without the network's scope prefix
    tf.compat.v1.summary.image(tag, pixels, max_outputs=1)
