import random
from collections import Counter

from transforms.text_stats import (
    duplicates,
    has_alpha,
    is_blank,
    is_word,
    ngram_levels,
    nonblank_lines,
    paragraphs,
    ratio,
    tokenize,
)


def test_tokenize_peels_punctuation_runs_off_words():
    assert tokenize("(Hello), world! It's 9:30 — “quoted” e.g. U.S.") == [
        "(", "Hello", "),", "world", "!", "It's", "9:30", "—", "“", "quoted", "”", "e.g", ".", "U.S", ".",
    ]  # fmt: skip
    assert tokenize("") == [] and tokenize(" \n\t ") == []


def test_words_are_tokens_with_something_besides_punctuation():
    assert [t for t in tokenize("A #1 ... 42% -- ok.") if is_word(t)] == ["A", "1", "42", "ok"]
    assert has_alpha("b2b") and has_alpha("Ünïcode") and not has_alpha("2019")


def test_blank_lines_are_layout_not_lines():
    assert is_blank(" \t\u3000") and is_blank("\u200b ") and not is_blank(" x ")
    text = "one\r\ntwo\n\n   \n\u200b\nthree\u2028four\n"
    assert nonblank_lines(text) == ["one", "two", "three", "four"]
    assert paragraphs(text) == ["one\ntwo", "three\nfour"]
    assert paragraphs("  \n\n") == [] and nonblank_lines("") == []


def test_duplicates_count_repeats_and_their_characters():
    assert duplicates(["ab", "c", "ab", "ab", "c"]) == (3, 5)
    assert duplicates([]) == (0, 0)


def test_ratio_is_zero_on_empty_and_capped_when_asked():
    assert ratio(1, 4) == 0.25 and ratio(0, 0) == 0.0 and ratio(3, 0) == 0.0
    assert ratio(5, 2, cap=1.0) == 1.0 and ratio(3, 0, cap=1.0) == 1.0


def _top_chars(tokens, n):
    grams = Counter(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    if not grams:
        return 0
    gram, count = grams.most_common(1)[0]
    return len(gram) * count if count > 1 else 0


def _duplicate_chars(tokens, n):
    seen, total, i = set(), 0, 0
    while i < len(tokens) - n + 1:
        gram = tuple(tokens[i : i + n])
        if gram in seen:
            total += sum(map(len, gram))
            i += n
        else:
            seen.add(gram)
            i += 1
    return total


def _levels(tokens):
    return {grams.n: grams for grams in ngram_levels(tokens, 10)}


def test_ngram_measures_match_the_plain_definitions():
    rng = random.Random(7)
    vocab = ["a", "bb", "the", "of", "ccc", ".", ","]
    for _ in range(500):
        size = rng.randint(0, 40)
        tokens = [rng.choice(vocab[: rng.randint(1, len(vocab))]) for _ in range(size)]
        levels = _levels(tokens)
        for n in (2, 3, 4):
            assert levels[n].top_chars() == _top_chars(tokens, n), (tokens, n)
        for n in range(5, 11):
            assert levels[n].duplicate_chars() == _duplicate_chars(tokens, n), (tokens, n)


def test_top_ngram_needs_a_repeat_and_ties_go_to_the_first_seen():
    assert _levels(["alpha", "beta", "gamma"])[2].top_chars() == 0
    # "x y", "y long" and "long words" all occur twice; "x y" comes first.
    tokens = ["x", "y", "long", "words", "x", "y", "long", "words"]
    assert _levels(tokens)[2].top_chars() == len("x y") * 2


def test_duplicate_ngrams_jump_past_each_repeat():
    # The second "a b c d e" repeats the first; the scan then resumes after it.
    assert _levels([*"abcde", *"abcde", "a"])[5].duplicate_chars() == 5
