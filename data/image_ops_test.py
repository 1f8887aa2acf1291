"""Crop windows, crop-decoding and resizing against independent computations."""
import numpy as np
import pytest
import tensorflow as tf

from data import format_writers
from data import image_ops


def _window(fn, h, w):
  return fn(tf.constant(h), tf.constant(w)).numpy().tolist()


def test_central_square_puts_the_odd_pixel_before_the_crop_like_tfgan_ceil():
  assert _window(image_ops.central_square, 20, 31) == [0, 6, 20, 20]   # ceil(11 / 2) = 6
  assert _window(image_ops.central_square, 33, 30) == [2, 0, 30, 30]   # ceil(3 / 2) = 2
  assert _window(image_ops.central_square, 8, 8) == [0, 0, 8, 8]
  assert _window(image_ops.centre_crop_of(10), 31, 20) == [11, 5, 10, 10]
  assert _window(image_ops.centre_crop_of(50), 31, 20) == [6, 0, 20, 20]  # capped at the image


def test_crop_decoding_equals_full_decode_then_slice_for_jpeg_and_exact_for_png():
  image = format_writers.smooth_image(37, 52, seed=3)
  jpeg = format_writers.jpeg_bytes(image)
  got = image_ops.decode_window(tf.constant(jpeg), image_ops.central_square).numpy()
  full = tf.io.decode_jpeg(jpeg, channels=3).numpy()
  np.testing.assert_array_equal(got, full[:, 8:45])                    # (52 - 37 + 1) // 2 = 8
  png = format_writers.png_bytes(image)
  got = image_ops.decode_window(tf.constant(png), image_ops.central_square).numpy()
  np.testing.assert_array_equal(got, image[:, 8:45])
  gray = format_writers.png_bytes(image[..., 0])
  got = image_ops.decode_window(tf.constant(gray), image_ops.whole_image).numpy()
  np.testing.assert_array_equal(got, np.repeat(image[..., :1], 3, axis=-1))


def test_dct_downscaled_decoding_picks_the_largest_ratio_that_keeps_min_side():
  image = format_writers.smooth_image(300, 230, seed=6)
  jpeg = tf.constant(format_writers.jpeg_bytes(image))
  for min_side, ratio in ((120, 1), (115, 2), (57, 4), (28, 8)):
    got = image_ops.decode_window(jpeg, image_ops.central_square, min_side=min_side).numpy()
    scaled = tf.io.decode_jpeg(jpeg, channels=3, ratio=ratio).numpy()
    # window [35, 0, 230, 230] at 1/ratio: side rounded, centre (150, 115) kept
    side = int(230 / ratio + 0.5)
    y = int(150 / ratio - side / 2 + 0.5)
    np.testing.assert_array_equal(got, scaled[y:y + side, :side], err_msg=str(ratio))
    assert min(got.shape[:2]) >= min_side
  assert [(ratio, int(230 / ratio + 0.5), int(150 / ratio - int(230 / ratio + 0.5) / 2 + 0.5))
          for ratio in (2, 4, 8)] == [(2, 115, 18), (4, 58, 9), (8, 29, 4)]   # vs 17, 8, 4 floored


def test_scaled_window_rounds_sizes_keeps_centres_and_stays_inside():
  def scaled(window, r, h, w):
    return image_ops.scaled_window(tf.constant(window), r, tf.constant(h), tf.constant(w)).numpy()
  # 500 x 375 photo, central square [0, 63, 375, 375]: centre (187.5, 250.5)
  assert scaled([0, 63, 375, 375], 2, 375, 500).tolist() == [0, 31, 188, 188]  # centre 94, 125
  assert scaled([0, 63, 375, 375], 1, 375, 500).tolist() == [0, 63, 375, 375]
  assert scaled([7, 5, 9, 9], 8, 16, 14).tolist() == [1, 1, 1, 1]   # never empty; centre (11.5,
  # 9.5) lies in decoded pixel (1, 1), which covers source pixels 8..15
  assert scaled([0, 0, 16, 14], 8, 16, 14).tolist() == [0, 0, 2, 2]           # ceil(14 / 8) = 2


_tfgan_reference = format_writers.tfgan_reference_crop


def test_tfgan_resize_of_the_cropped_decode_matches_tfgans_full_image_pipeline():
  image = format_writers.smooth_image(45, 60, seed=4)
  square = image_ops.decode_window(tf.constant(format_writers.png_bytes(image)),
                                   image_ops.central_square)
  got = image_ops.to_signed_unit(image_ops.resize_square(square, 16, "tfgan")).numpy()
  np.testing.assert_allclose(got, _tfgan_reference(image, 16), atol=2e-5)
  assert got.shape == (16, 16, 3) and got.min() >= -1 and got.max() <= 1


def test_resize_to_the_same_size_is_the_identity_for_every_method():
  image = format_writers.smooth_image(12, 12, seed=5)
  for method in image_ops.RESIZE_METHODS:
    np.testing.assert_allclose(image_ops.resize_square(image, 12, method).numpy(), image,
                               atol=1e-3, err_msg=method)
  with pytest.raises(ValueError, match="resize_method"):
    image_ops.resize_square(image, 12, "nearest")


def test_resize_shorter_side_follows_torchvision_int_rule():
  for (h, w), size, want in [((30, 50), 76, (76, 126)),   # int(76 * 50 / 30) = 126
                             ((50, 30), 76, (126, 76)),
                             ((33, 33), 19, (19, 19)),
                             ((40, 61), 152, (152, 231))]:  # int(152 * 61 / 40) = 231.8 -> 231
    out = image_ops.resize_shorter_side(tf.zeros([h, w, 3], tf.uint8), size)
    assert tuple(out.shape[:2]) == want


def test_to_signed_unit_maps_0_and_255_to_minus_one_and_one():
  np.testing.assert_allclose(image_ops.to_signed_unit(tf.constant([0, 255, 51], tf.uint8)).numpy(),
                             [-1.0, 1.0, 51 * 2 / 255 - 1], atol=1e-7)


def test_resizing_a_float_copy_gives_exactly_the_uint8_kernels_values():
  image = tf.constant(format_writers.smooth_image(75, 61, seed=5))   # uint8, odd sizes
  kernels = {
      "tfgan": lambda x: tf.raw_ops.ResizeBilinear(images=x[None], size=[32, 32],
                                                   align_corners=True)[0],
      "bilinear": lambda x: tf.image.resize(x, [32, 32], method="bilinear", antialias=True),
      "area": lambda x: tf.image.resize(x, [32, 32], method="area"),
  }
  for method, kernel in kernels.items():
    np.testing.assert_array_equal(image_ops.resize_square(image, 32, method).numpy(),
                                  kernel(image).numpy(), err_msg=method)
  want = tf.image.resize(image, [39, 32], method="bilinear", antialias=True)   # 75 x 61 -> 39 x 32
  np.testing.assert_array_equal(image_ops.resize_shorter_side(image, 32).numpy(), want.numpy())
