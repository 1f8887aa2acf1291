"""Caption text as AttnGAN reads it: tokenizer, caption files, and the word vocabulary.

Tokens (AttnGAN `TextDataset.load_captions`): replace U+FFFD U+FFFD by a space, lowercase, take
`\\w+` runs, drop non-ASCII characters from each token, drop tokens left empty.
Vocabulary (AttnGAN `build_dictionary`): every word of the train and test captions, in order of
first occurrence (train first), ids from 1; id 0 is '<end>', used for padding and end. Words not in
the vocabulary are dropped when encoding (as AttnGAN does).
The vocabulary file has one word per line; line i (from 0) is id i. Save it with the run.
"""
import dataclasses
import re
from typing import Iterable, List, Sequence, Tuple

from data import atomic_io

END_TOKEN = "<end>"
_WORD = re.compile(r"\w+")


def tokenize(caption: str) -> List[str]:
  caption = caption.replace("\ufffd\ufffd", " ")
  tokens = (t.encode("ascii", "ignore").decode("ascii") for t in _WORD.findall(caption.lower()))
  return [t for t in tokens if t]


@dataclasses.dataclass
class CaptionFile:
  """The first `max_captions` good captions of a caption file and the lines that were rejected."""
  captions: List[List[str]]
  malformed: List[Tuple[int, str]]  # (1-based line number, why)


def parse_caption_lines(data: bytes, max_captions: int) -> CaptionFile:
  """Splits a caption file (one caption per line) into token lists.

  Empty lines are ignored (AttnGAN does the same). A line that is not UTF-8 or has no ASCII word
  is malformed: it is reported and skipped. Reading stops after `max_captions` good captions.
  """
  captions, malformed = [], []
  for lineno, raw in enumerate(data.split(b"\n"), start=1):
    raw = raw.rstrip(b"\r")
    if not raw.strip():
      continue
    try:
      line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
      malformed.append((lineno, f"not UTF-8 ({e.reason} at byte {e.start})"))
      continue
    tokens = tokenize(line)
    if not tokens:
      malformed.append((lineno, f"no words in {line[:40]!r}"))
      continue
    captions.append(tokens)
    if len(captions) == max_captions:
      break
  return CaptionFile(captions, malformed)


class Vocabulary:
  """Word <-> id map with id 0 = '<end>'."""

  def __init__(self, words: Sequence[str]):
    words = list(words)
    if not words or words[0] != END_TOKEN:
      raise ValueError(f"a vocabulary starts with {END_TOKEN!r} (id 0)")
    self._words = words
    self._ids = {w: i for i, w in enumerate(words)}
    if len(self._ids) != len(words):
      raise ValueError("a vocabulary lists each word once")

  @classmethod
  def build(cls, captions: Iterable[Sequence[str]]) -> "Vocabulary":
    """All words of the tokenized captions, in order of first occurrence."""
    seen = {END_TOKEN: 0}
    for tokens in captions:
      for t in tokens:
        if t not in seen:
          seen[t] = len(seen)
    return cls(list(seen))

  def __len__(self) -> int:
    return len(self._words)

  def __eq__(self, other) -> bool:
    return isinstance(other, Vocabulary) and self._words == other._words

  @property
  def words(self) -> List[str]:
    return list(self._words)

  def id_of(self, word: str) -> int:
    return self._ids[word]

  def encode(self, tokens: Sequence[str]) -> List[int]:
    return [self._ids[t] for t in tokens if t in self._ids]

  def encode_text(self, caption: str) -> List[int]:
    return self.encode(tokenize(caption))

  def decode(self, ids: Iterable[int]) -> str:
    """Words of the ids, stopping at the first 0 ('<end>'/padding)."""
    words = []
    for i in ids:
      if int(i) == 0:
        break
      words.append(self._words[int(i)])
    return " ".join(words)

  def save(self, path: str) -> str:
    """Writes the vocabulary file atomically (tmp file in the same directory, then rename)."""
    atomic_io.atomic_write_bytes(path, ("\n".join(self._words) + "\n").encode("utf-8"))
    return path

  @classmethod
  def load(cls, path: str) -> "Vocabulary":
    with open(path, "r", encoding="utf-8") as f:
      return cls([line.rstrip("\n") for line in f if line.rstrip("\n")])
