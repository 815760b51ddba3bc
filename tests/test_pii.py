import json
import pickle
from pathlib import Path

import pytest

from transforms.pii import PiiRedactor, RedactPii, RedactPiiConfig, card_issuer_valid, luhn_valid

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

SIGNALS = ("pii_emails", "pii_phones", "pii_ips", "pii_credit_cards", "pii_api_keys", "pii_redactions")


@pytest.fixture(scope="module")
def redactor():
    return PiiRedactor()


def _counts(**nonzero):
    return {"email": 0, "phone": 0, "ip": 0, "credit_card": 0, "api_key": 0, **nonzero}


def test_emails(redactor):
    text = "Write to john.doe+news@example.co.uk, JANE_1@Mail.Example.COM. or (me@host.org)."
    assert redactor.redact(text) == ("Write to <EMAIL>, <EMAIL>. or (<EMAIL>).", _counts(email=3))
    for kept in ("user@localhost", "@handle on X", "a @ b.com", "name [at] example [dot] com"):
        assert redactor.redact(kept) == (kept, _counts())


def test_phones(redactor):
    text = (
        "Call (415) 555-2671, 415.555.2671, 1-800-555-0199 or +1 415 555 2671; "
        "London +44 20 7946 0958 or +442079460958; Berlin +49 (0)30 1234567; Moscow +7 (926) 081-55-07."
    )
    redacted, counts = redactor.redact(text)
    assert redacted == (
        "Call <PHONE>, <PHONE>, <PHONE> or <PHONE>; London <PHONE> or <PHONE>; Berlin <PHONE>; Moscow <PHONE>."
    )
    assert counts == _counts(phone=8)


def test_ip_addresses(redactor):
    text = "From 81.2.69.160 via [2001:4860:4860::8888]:443 and 2a03:2880:f003:c07:face:b00c::2."
    assert redactor.redact(text) == (
        "From <IP_ADDRESS> via [<IP_ADDRESS>]:443 and <IP_ADDRESS>.",
        _counts(ip=3),
    )


def test_non_public_and_version_shaped_ips_are_kept(redactor):
    text = (
        "Bind 127.0.0.1:8080, 10.0.0.1, 192.168.1.20, 203.0.113.7 (docs), ::1, fe80::1ff:fe23:4567:890a, "
        "Python 3.11.4.1, dpkg 1.4.0.33, DNS 8.8.8.8, C++ std::vector and D::f, at 12:30:45, "
        "MAC 00:1a:2b:3c:4d:5e, OID 1.3.6.1.4.1, 256.1.1.1."
    )
    assert redactor.redact(text) == (text, _counts())
    every = PiiRedactor(RedactPiiConfig(only_public_ips=False))
    redacted, counts = every.redact("Bind 127.0.0.1:8080 and 10.0.0.1 and fe80::1ff:fe23:4567:890a.")
    assert redacted == "Bind <IP_ADDRESS>:8080 and <IP_ADDRESS> and <IP_ADDRESS>."
    assert counts == _counts(ip=3)


def test_credit_cards_need_luhn_and_an_issuer(redactor):
    valid = [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "5555555555554444",
        "3782 822463 10005",
        "6011111111111117",
        "3530111333300000",
        "30569309025904",
    ]
    text = "Cards: " + "; ".join(valid) + "."
    assert redactor.redact(text) == (
        "Cards: " + "; ".join(["<CREDIT_CARD>"] * len(valid)) + ".",
        _counts(credit_card=7),
    )
    assert redactor.redact("Visa 4111 1111 1111 1111 12/26 cvc 123")[0] == "Visa <CREDIT_CARD> 12/26 cvc 123"
    invalid = (
        "Luhn fails: 4111 1111 1111 1112 and 5555555555554445; no issuer: 1234567812345670 "
        "and 9999 9999 9999 9995; mixed separators 4111 1111-1111 1111; in a URL /detail/5072358514753536; "
        "a table 4522 4553 4584 4615 4646 4677 4708"
    )
    assert luhn_valid("1234567812345670") and luhn_valid("9999999999999995")
    assert not card_issuer_valid("1234567812345670")
    assert redactor.redact(invalid) == (invalid, _counts())


def test_api_keys(redactor):
    keys = [
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_aBcD1234567890aBcD1234567890aBcD1234",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUV",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "xoxp-123456789012-1234567890123-1234567890123-0123456789abcdef0123456789abcdef",
        "AIzaSyA1234567890abcdefghijklmnopqrstuv",
        "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z_Ab3dEf6hIj9k",
        "sk-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb3dEf6hIj9kLm2n",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ]
    text = "\n".join(f"key{i} = '{key}'" for i, key in enumerate(keys))
    redacted, counts = redactor.redact(text)
    assert redacted == "\n".join(f"key{i} = '<API_KEY>'" for i in range(len(keys)))
    assert counts == _counts(api_key=len(keys))


def test_bearer_token_keeps_the_scheme_word(redactor):
    text = "curl -H 'Authorization: Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0.x-y_z~+/=' https://api.example"
    assert redactor.redact(text) == (
        "curl -H 'Authorization: Bearer <API_KEY>' https://api.example",
        _counts(api_key=1),
    )
    prose = "The bearer of bad news; Bearer tokens are described in RFC 6750."
    assert redactor.redact(prose) == (prose, _counts())


def test_pem_private_key_blocks(redactor):
    body = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\nVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    text = f"config:\n-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----\nend"
    assert redactor.redact(text) == ("config:\n<API_KEY>\nend", _counts(api_key=1))
    truncated = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}That was all of it."
    assert redactor.redact(truncated)[0] == "<API_KEY>\nThat was all of it."
    public = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----"
    assert redactor.redact(public) == (public, _counts())


def test_dates_isbns_and_plain_numbers_are_left_alone(redactor):
    text = (
        "On 2019-03-18, 18.03.2019, 03/18/2019 and 2019/03/18T10:30:00Z; years 1999-2004, 2019 2020 2021; "
        "ISBN 978-3-16-148410-0 and 0-306-40615-2; 1,234,567.89 dollars; order 1234567890; "
        "4155552671; 123-456-7890; sk-learn-compatible-estimators; +3 points; 10 000 000 people; "
        "FAR 52.227-14; version 2.0.50727.42."
    )
    assert redactor.redact(text) == (text, _counts())


def test_mixed_text_is_otherwise_unchanged(redactor):
    text = "Écrivez à marie@example.fr ou appelez +33 1 23 45 67 89 — merci ! 你好 81.2.69.160"
    assert redactor.redact(text) == (
        "Écrivez à <EMAIL> ou appelez <PHONE> — merci ! 你好 <IP_ADDRESS>",
        _counts(email=1, phone=1, ip=1),
    )


def test_toggles_and_tokens():
    config = RedactPiiConfig(
        redact_emails=False, redact_phones=False, ip_token="[IP]", api_key_token="[SECRET]"
    )
    redacted, counts = PiiRedactor(config).redact(
        "a@b.org 415-555-2671 81.2.69.160 AKIAIOSFODNN7EXAMPLE 4111111111111111"
    )
    assert redacted == "a@b.org 415-555-2671 [IP] [SECRET] <CREDIT_CARD>"
    assert counts == _counts(ip=1, api_key=1, credit_card=1)
    none = RedactPiiConfig(
        redact_emails=False,
        redact_phones=False,
        redact_ips=False,
        redact_credit_cards=False,
        redact_api_keys=False,
    )
    assert PiiRedactor(none).redact("a@b.org 81.2.69.160") == ("a@b.org 81.2.69.160", _counts())


def test_stage_never_drops_and_writes_signals():
    stage = pickle.loads(pickle.dumps(RedactPii()))
    stage.setup()
    records = [
        {"text": "Mail a@b.org or c@d.net, call 415-555-2671, card 4111 1111 1111 1111."},
        {"text": "Nothing to see."},
        {"text": None},
        {},
    ]
    assert stage.process_batch(records) == [None] * 4
    assert records[0]["text"] == "Mail <EMAIL> or <EMAIL>, call <PHONE>, card <CREDIT_CARD>."
    assert [records[0][s] for s in SIGNALS] == [2, 1, 0, 1, 0, 4]
    assert records[1]["text"] == "Nothing to see." and records[1]["pii_redactions"] == 0
    assert all(records[i][s] == 0 for i in (2, 3) for s in SIGNALS)
    assert [f.name for f in RedactPii.signal_fields] == list(SIGNALS)


def test_real_articles_change_only_at_redactions(redactor):
    bodies = json.loads((DATA / "scrapinghub-aeb" / "ground-truth.json").read_text(encoding="utf-8"))
    totals = _counts()
    for body in (v["articleBody"] for v in bodies.values()):
        spans = redactor.spans(body)
        redacted, counts = redactor.redact(body)
        rebuilt, done = [], 0
        for start, end, kind in spans:
            rebuilt += (body[done:start], f"<{'IP_ADDRESS' if kind == 'ip' else kind.upper()}>")
            done = end
        assert redacted == "".join(rebuilt) + body[done:]
        for kind, n in counts.items():
            totals[kind] += n
    found = {
        body[s:e] for v in bodies.values() for body in [v["articleBody"]] for s, e, _ in redactor.spans(body)
    }
    assert found == {
        "thekian1@entermedia.co.kr",
        "pillgoo9@gmail.com",
        "info@givewell.org",
        "louise_matsakis@wired.com",
        "347-966-3806",
        "+49 (0)40 890 85-433",
    }
    assert totals == _counts(email=4, phone=2)
