from transforms.filters.url_filter import UrlFilter, UrlFilterConfig, parent_domains


def _filter(tmp_path, domains=(), words=()):
    blocklist = tmp_path / "domains.txt"
    blocklist.write_text("# comment\n" + "\n".join(domains) + "\n")
    banned = tmp_path / "words.txt"
    banned.write_text("\n".join(words) + "\n")
    stage = UrlFilter(UrlFilterConfig(blocklist_path=str(blocklist), banned_words_path=str(banned)))
    stage.setup()
    return stage


def test_blocked_registered_domain_covers_subdomains(tmp_path):
    stage = _filter(tmp_path, domains=["spam.example.co.uk"])
    records = [{"url": "https://news.spam.example.co.uk/a"}, {"url": "https://example.co.uk/b"},
               {"url": "https://notspam.example.co.uk/c"}]
    drops = stage.process_batch(records)
    assert drops[0].reason == "blocked_domain"
    assert records[0]["url_blocked_domain"] is True
    assert drops[1] is None and drops[2] is None


def test_banned_word_is_a_whole_url_token(tmp_path):
    stage = _filter(tmp_path, words=["casino"])
    records = [{"url": "http://x.org/best-casino-online"}, {"url": "http://x.org/casinos-history"}]
    drops = stage.process_batch(records)
    assert drops[0].reason == "banned_word" and drops[0].detail == "casino"
    assert drops[1] is None and records[1]["url_banned_word"] is None


def test_packaged_lists_load():
    stage = UrlFilter()
    stage.setup()
    assert stage.process_batch([{"url": "https://www.python.org/doc/"}]) == [None]


def test_parent_domains_of_names_and_addresses():
    assert parent_domains("a.b.example.com") == ["a.b.example.com", "b.example.com", "example.com", "com"]
    assert parent_domains("10.0.0.1") == ["10.0.0.1"]
