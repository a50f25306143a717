import re

from bot.i18n import LANGUAGES, catalog, normalize, t


def test_every_language_has_every_key_and_placeholder():
    base = catalog("en")
    for lang in LANGUAGES:
        other = catalog(lang)
        assert other.keys() == base.keys(), lang
        for key, text in base.items():
            assert set(re.findall(r"{(\w+)}", other[key])) == set(re.findall(r"{(\w+)}", text)), (
                lang,
                key,
            )


def test_language_tags_map_to_catalogs():
    assert normalize("zh-hans") == "zh"
    assert normalize("zh_CN") == "zh"
    assert normalize("en-US") == "en"
    assert normalize(None) == "en"
    assert normalize("de") == "en"


def test_fields_are_filled_and_unknown_keys_fall_back():
    assert "nude" in t("refused.banned", "zh", word="nude")
    assert t("no.such.key", "zh") == "no.such.key"
