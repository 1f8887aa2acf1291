"""Imports every dataset module so each registers itself with `data.registry`."""
# pylint: disable=unused-import
from data import digits  # noqa: F401
from data import digits_captions  # noqa: F401
from data import cifar10  # noqa: F401
from data import coco  # noqa: F401
from data import cub  # noqa: F401
from data import image_folder  # noqa: F401
from data import imagenet  # noqa: F401
