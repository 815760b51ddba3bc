"""A labelled multilingual language-ID set built from packages: Debian's translated man pages
and Django's message catalogues. Nothing of it is stored in the repository (see
docs/language_id.md for sources and licences); it is fetched with the ordinary clients into a
cache folder and rebuilt the same way every time.

    python -m benchmarks.language_id_data --cache /tmp/langid-src [--fetch]

Three kinds of text per language, all written by people:
- ``man_long``: consecutive paragraphs of one man page, 400-3,000 characters (technical prose);
- ``man_short``: one man page paragraph of 20-160 characters (option descriptions, NAME lines);
- ``ui_short``: one Django ``msgstr`` of 15-200 characters (user interface messages).

Translations leave some paragraphs in English (po4a keeps a page at 80 % translated). The gold
label must not depend on any language-ID model, so untranslated text is removed by provenance
alone: a Django ``msgstr`` equal to its ``msgid``, and a man page paragraph whose normalised
letters also occur in another language's packages or in the English ``manpages`` package.
The tune/test split hashes the document (the man page name, the Django ``msgid``), so one
page or message never sits on both sides, and a page's translations share a side.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import re
import subprocess
import sys
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

# Debian bookworm packages (manpages-l10n 4.18.1, man-pages 6.03) and the Django wheel.
MANPAGE_PACKAGES = {
    "manpages": "en",
    "manpages-cs": "cs",
    "manpages-da": "da",
    "manpages-de": "de",
    "manpages-es": "es",
    "manpages-fi": "fi",
    "manpages-fr": "fr",
    "manpages-hu": "hu",
    "manpages-id": "id",
    "manpages-it": "it",
    "manpages-mk": "mk",
    "manpages-nb": "no",  # lid.176 labels Bokmål "no"
    "manpages-nl": "nl",
    "manpages-pl": "pl",
    "manpages-pt-br": "pt",
    "manpages-ro": "ro",
    "manpages-ru": "ru",
    "manpages-sr": "sr",
    "manpages-sv": "sv",
    "manpages-uk": "uk",
    "manpages-vi": "vi",
}
DJANGO = "django==5.2.20"
# Django locales -> lid.176 labels; regional variants and sr_Latn (lid.176 has no Latin
# Serbian label of its own) left out.
DJANGO_LOCALES = {
    "be": "be", "bg": "bg", "bs": "bs", "ca": "ca", "cs": "cs", "da": "da", "de": "de",
    "es": "es", "et": "et", "fi": "fi", "fr": "fr", "gl": "gl", "hr": "hr", "hu": "hu",
    "id": "id", "it": "it", "lt": "lt", "lv": "lv", "mk": "mk", "ms": "ms", "nb": "no",
    "nl": "nl", "pl": "pl", "pt": "pt", "ro": "ro", "ru": "ru", "sk": "sk", "sl": "sl",
    "sr": "sr", "sv": "sv", "tr": "tr", "uk": "uk", "vi": "vi",
}  # fmt: skip
CAPS = {"man_long": 80, "man_short": 120, "ui_short": 120}  # per language and kind
TUNE_FRACTION = 0.5


@dataclass(frozen=True)
class Sample:
    lang: str
    kind: str
    source: str  # the document: package/page or django/msgid hash
    text: str

    @property
    def split(self) -> str:
        return "tune" if _unit_hash("split", self.source) < TUNE_FRACTION else "test"


def _unit_hash(*parts: str) -> float:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def fetch(cache: Path) -> None:
    """apt-get download the man page packages and pip download the Django wheel."""
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in MANPAGE_PACKAGES if not list(debs.glob(f"{p}_*.deb"))]
    if missing:
        subprocess.run(["apt-get", "download", *missing], cwd=debs, check=True)
    if not list(cache.glob("django-*.whl")):
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(cache), DJANGO]
        subprocess.run(pip, check=True)


# --- man pages: a small troff reader (enough for man(7) pages as po4a writes them) ---

_FONT = re.compile(r"\\f(\[[^\]]*\]|\(..|.)")
_SPECIAL = {"\\-": "-", "\\(aq": "'", "\\(lq": '"', "\\(rq": '"', "\\(em": "—", "\\(en": "–", "\\e": "\\"}
_ESCAPE = re.compile(r"\\(\(..|\[[^\]]*\]|[&,/|^ ~0:%]|\*\(..|\*.|s[-+]?\d)")
_BREAKS = {
    ".PP",
    ".P",
    ".LP",
    ".TP",
    ".IP",
    ".SH",
    ".SS",
    ".HP",
    ".RS",
    ".RE",
    ".nf",
    ".fi",
    ".EX",
    ".EE",
    ".sp",
}
_TEXT_MACROS = {".B", ".I", ".BR", ".IR", ".RB", ".RI", ".BI", ".IB", ".SM", ".SB"}


def _plain(line: str) -> str:
    line = _FONT.sub("", line)
    for escape, char in _SPECIAL.items():
        line = line.replace(escape, char)
    return _ESCAPE.sub("", line).strip()


def man_paragraphs(source: str) -> list[tuple[str, str]]:
    """(section name, paragraph) in order; code blocks (.nf/.EX) and the SYNOPSIS are skipped."""
    paragraphs, current, section, literal, tag = [], [], "", False, False

    def flush() -> None:
        if current:
            paragraphs.append((section, " ".join(current)))
            current.clear()

    for raw in source.splitlines():
        if raw.startswith(('.\\"', "'\\\"", '.\\"')):
            continue
        macro, _, rest = raw.partition(" ")
        if raw.startswith((".", "'")):
            if macro in _BREAKS:
                flush()
                tag = macro == ".TP"  # its next line is the tag (an option), not prose
                literal = macro in {".nf", ".EX"} or (literal and macro not in {".fi", ".EE"})
                if macro in {".SH", ".SS"}:
                    section = _plain(rest.strip('"'))
                continue
            if macro in _TEXT_MACROS and not literal and not tag:
                current.append(_plain(rest.replace('"', "")))
            tag = tag and macro not in _TEXT_MACROS
            continue
        if tag:
            tag = False
        elif not literal and raw.strip():
            current.append(_plain(raw))
    flush()
    return paragraphs


def _letters(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalpha())


# The most frequent English words (plus two of man pages): a translated paragraph in which
# they make a fifth of the words is English that po4a left untranslated.
_ENGLISH = frozenset(
    "the of and to is a in for with as be by on this that are or not from if it an which can will when "
    "all only use used file".split()
)


def _untranslated(text: str) -> bool:
    words = re.findall(r"[a-z]+", text.lower())
    hits = sum(word in _ENGLISH for word in words)
    return hits >= 2 and hits >= 0.2 * len(text.split())


def _is_prose(text: str) -> bool:
    """Mostly letters and spaces: option lists, paths and code fall out."""
    letters = sum(ch.isalpha() for ch in text)
    return letters >= 12 and letters / max(1, len(text)) >= 0.7 and " " in text


def _man_pages(cache: Path) -> dict[str, dict[str, list[tuple[str, str]]]]:
    """{lang: {page: paragraphs}} straight from the .deb files."""
    pages: dict[str, dict[str, list[tuple[str, str]]]] = defaultdict(dict)
    for package, lang in MANPAGE_PACKAGES.items():
        (deb,) = sorted((cache / "debs").glob(f"{package}_*.deb"))
        root = cache / "root" / package
        if not root.exists():
            root.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        for path in sorted((root / "usr/share/man").rglob("*.gz")):
            page = path.name.removesuffix(".gz")
            text = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
            if not text.lstrip().startswith(".so "):
                pages[lang][page] = man_paragraphs(text)
    return pages


def man_samples(cache: Path) -> list[Sample]:
    pages = _man_pages(cache)
    # Text seen in more than one language is untranslated (English left by po4a, or names).
    seen_in = defaultdict(set)
    for lang, by_page in pages.items():
        for paragraphs in by_page.values():
            for _, paragraph in paragraphs:
                seen_in[_letters(paragraph)].add(lang)
    samples = []
    for lang, by_page in sorted(pages.items()):
        for page, paragraphs in sorted(by_page.items()):
            source = f"man/{page}"
            own = [
                p
                for _, p in paragraphs
                if len(seen_in[_letters(p)]) == 1 and _is_prose(p) and (lang == "en" or not _untranslated(p))
            ]
            for paragraph in own:
                if 20 <= len(paragraph) <= 160:
                    samples.append(Sample(lang, "man_short", source, paragraph))
            chunk: list[str] = []
            for paragraph in own:
                chunk.append(paragraph)
                if sum(map(len, chunk)) >= 400:
                    text = " ".join(chunk)
                    if len(text) <= 3000:
                        samples.append(Sample(lang, "man_long", source, text))
                    chunk = []
    return samples


# --- Django catalogues ---

_PO_STRING = re.compile(r'^(msgid|msgstr|msgid_plural|msgstr\[\d+\]|msgctxt)?\s*"(.*)"\s*$')
_PLACEHOLDER = re.compile(r"%(\([^)]*\))?[-#0 +]*\d*(\.\d+)?[sdifrxX%]|\{[^}]*\}|<[^>]+>")


def po_entries(text: str) -> list[tuple[str, str]]:
    """(msgid, first msgstr) pairs of a .po file; fuzzy and header entries are skipped."""
    entries, fields, key, fuzzy = [], {}, None, False
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if fields.get("msgid") and fields.get("msgstr") and not fuzzy:
                entries.append((fields["msgid"], fields["msgstr"]))
            fields, key, fuzzy = {}, None, False
            continue
        if line.startswith("#,") and "fuzzy" in line:
            fuzzy = True
        match = _PO_STRING.match(line)
        if not match:
            continue
        if match.group(1):
            key = "msgstr" if match.group(1).startswith("msgstr") else match.group(1)
            if key in fields and key == "msgstr":
                key = "ignored"
        if key:
            value = match.group(2).replace('\\"', '"').replace("\\n", " ").replace("\\\\", "\\")
            fields[key] = fields.get(key, "") + value
    return entries


def django_samples(cache: Path) -> list[Sample]:
    (wheel,) = sorted(cache.glob("django-*.whl"))
    samples = []
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            parts = name.split("/")
            if not name.endswith(".po") or "locale" not in parts:
                continue
            locale = parts[parts.index("locale") + 1]
            if locale not in DJANGO_LOCALES:
                continue
            for msgid, msgstr in po_entries(archive.read(name).decode("utf-8")):
                text = " ".join(_PLACEHOLDER.sub(" ", msgstr).split())
                if _letters(msgstr) == _letters(msgid) or not (15 <= len(text) <= 200) or not _is_prose(text):
                    continue
                source = "django/" + hashlib.blake2b(msgid.encode(), digest_size=6).hexdigest()
                samples.append(Sample(DJANGO_LOCALES[locale], "ui_short", source, text))
            if locale == "de" and name.endswith("django/conf/locale/de/LC_MESSAGES/django.po"):
                # English: Django's source strings, once.
                for msgid, _ in po_entries(archive.read(name).decode("utf-8")):
                    text = " ".join(_PLACEHOLDER.sub(" ", msgid).split())
                    if 15 <= len(text) <= 200 and _is_prose(text):
                        source = "django/" + hashlib.blake2b(msgid.encode(), digest_size=6).hexdigest()
                        samples.append(Sample("en", "ui_short", source, text))
    return samples


def build(cache: Path) -> list[Sample]:
    """Every sample, deduplicated per language, capped per language and kind by a hash order."""
    unique = {(s.lang, s.text): s for s in [*man_samples(cache), *django_samples(cache)]}
    groups: dict[tuple[str, str], list[Sample]] = defaultdict(list)
    for sample in unique.values():
        groups[sample.lang, sample.kind].append(sample)
    kept = []
    for (_, kind), group in sorted(groups.items()):
        group.sort(key=lambda s: _unit_hash("order", s.source, s.text))
        kept.extend(group[: CAPS[kind]])
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--fetch", action="store_true", help="download the packages first")
    args = parser.parse_args()
    if args.fetch:
        fetch(args.cache)
    samples = build(args.cache)
    counts = Counter((s.lang, s.kind, s.split) for s in samples)
    for lang in sorted({s.lang for s in samples}):
        row = {k: counts[lang, k, "tune"] + counts[lang, k, "test"] for k in CAPS}
        print(lang, row)
    print(len(samples), "samples;", Counter(s.split for s in samples))


if __name__ == "__main__":
    main()
