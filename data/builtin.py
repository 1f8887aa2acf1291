"""Imports every dataset module so each registers itself with `data.registry`."""
from data import digits  # noqa: F401  pylint: disable=unused-import
