"""AttnGAN's tokenizer, caption files and vocabulary."""
import pytest

from data import text


def test_tokenize_lowercases_keeps_word_runs_and_drops_non_ascii():
  assert text.tokenize("This bird has a RED crown, and white-ish wings.") == [
      "this", "bird", "has", "a", "red", "crown", "and", "white", "ish", "wings"]
  assert text.tokenize("a caf\u00e9 bird\ufffd\ufffdsmall") == ["a", "caf", "bird", "small"]
  assert text.tokenize("\u00e9\u00e8 ...") == []
  assert text.tokenize("snake_case 42") == ["snake_case", "42"]


def test_caption_lines_skip_empty_count_malformed_and_stop_after_max():
  data = b"a red bird\r\n\n\xff\xfe broken\n...\nsmall bird\nthird one\nfourth\n"
  parsed = text.parse_caption_lines(data, max_captions=3)
  assert parsed.captions == [["a", "red", "bird"], ["small", "bird"], ["third", "one"]]
  assert [lineno for lineno, _ in parsed.malformed] == [3, 4]
  assert "UTF-8" in parsed.malformed[0][1] and "no words" in parsed.malformed[1][1]


def test_vocabulary_is_first_occurrence_order_with_end_at_zero(tmp_path):
  vocab = text.Vocabulary.build([["a", "red", "bird"], ["a", "small", "bird"], ["red"]])
  assert vocab.words == ["<end>", "a", "red", "bird", "small"]
  assert len(vocab) == 5 and vocab.id_of("bird") == 3
  assert vocab.encode(["small", "unknown", "a"]) == [4, 1]
  assert vocab.encode_text("A small, red bird!") == [1, 4, 2, 3]
  assert vocab.decode([1, 4, 3, 0, 2]) == "a small bird"
  path = vocab.save(str(tmp_path / "run" / "vocab.txt"))
  assert open(path).read() == "<end>\na\nred\nbird\nsmall\n"
  assert text.Vocabulary.load(path) == vocab
  assert [p.name for p in (tmp_path / "run").iterdir()] == ["vocab.txt"]  # no temp file left


def test_vocabulary_rejects_a_word_list_without_end_first_or_with_duplicates():
  with pytest.raises(ValueError, match="<end>"):
    text.Vocabulary(["a", "<end>"])
  with pytest.raises(ValueError, match="once"):
    text.Vocabulary(["<end>", "a", "a"])
