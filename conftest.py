"""Pytest setup shared by every test module: quiet TensorFlow logs, deterministic seeds, and the
`offline` fixture."""
import os
import socket
import sys
import types

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


class _UntouchableTfds(types.ModuleType):
  """Stands in for tensorflow_datasets: any use of it is recorded and fails."""

  def __init__(self, attempts):
    super().__init__("tensorflow_datasets")
    self._attempts = attempts

  def __getattr__(self, name):
    if name.startswith("__"):
      raise AttributeError(name)
    self._attempts.append(f"tensorflow_datasets.{name}")
    raise AssertionError(f"tensorflow_datasets.{name} used by a test that must stay offline")


@pytest.fixture
def offline(monkeypatch):
  """A machine without network or TFDS: every DNS lookup, TCP connect and use of
  tensorflow_datasets is recorded in the returned list and fails (OSError / AssertionError).
  A test asserts the list is empty to show a code path never tried to reach the network."""
  attempts = []

  def refuse(what):
    def call(*args, **kwargs):
      attempts.append(f"{what}{args[1:] if what == 'socket.connect' else args}")
      raise OSError(f"{what}: the network is off in this test")
    return call
  monkeypatch.setattr(socket, "getaddrinfo", refuse("socket.getaddrinfo"))
  monkeypatch.setattr(socket, "create_connection", refuse("socket.create_connection"))
  monkeypatch.setattr(socket.socket, "connect", refuse("socket.connect"))
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", _UntouchableTfds(attempts))
  return attempts
