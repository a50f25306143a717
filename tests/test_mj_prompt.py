"""The prompt check (bot/mj/prompt.py): the linter's table of cases, fixes, and composing."""

from __future__ import annotations

import pytest

from bot.i18n import catalog
from bot.mj.prompt import (
    Bot,
    Fix,
    Issue,
    Model,
    Options,
    Reference,
    RefKind,
    Severity,
    Support,
    Target,
    UrlKind,
    Version,
    blocking,
    check,
    compose,
    fix_all,
    is_draft,
    parse,
    supports,
    url_kind,
    without_draft,
)

V7 = Target(default=Model.V7.version)
V81 = Target(default=Model.V8_1.version)
NIJI = Target(bot=Bot.NIJI, default=Model.NIJI7.version)
NO_BOTTYPE = Target(bot=None)
VIDEO = Target(video=True)
IMG = "https://cdn.discordapp.com/attachments/1/2/photo.png"

E, W = Severity.ERROR, Severity.WARNING

# prompt, target, [(issue, severity)], the fix of the first problem (None: no fix)
CASES: list[tuple[str, Target, list[tuple[Issue, Severity]], str | None]] = [
    # clean prompts
    ("a red fox in snow", V81, [], None),
    ("a red fox in snow --ar 3:2 --s 250 --c 10 --w 100 --seed 42", V81, [], None),
    (f"{IMG} a fox --iw 2", V81, [], None),
    ("a fox --v 7 --draft --oref https://s.mj.run/abc --ow 300", V81, [], None),
    ("a fox --hd --q 4", V81, [], None),
    ("a fox --q 2 --v 7", V81, [], None),
    ("a fox --q .5 --v 6.1", V81, [], None),
    ("a fox --sref 1234 random --sw 500 --sv 4", V81, [], None),
    ("a fox --p", V81, [], None),
    ("a fox --p abc123 m7xyz", V81, [], None),
    ("a fox --raw", V81, [], None),
    ("a fox --style raw --no trees, rocks --no snow", V81, [], None),
    ("a fox --motion high --loop --bs 2", VIDEO, [], None),
    ("a fox --motion low --hd", VIDEO, [], None),  # a video's --hd: 720p
    ("a fox --video 1 --motion low", V81, [], None),
    ("a fox --end https://cdn.discordapp.com/x.png", VIDEO, [], None),
    ("a fox --niji 7", NIJI, [], None),
    ("a fox --niji 7", NO_BOTTYPE, [], None),
    ("a fox --relax --tile --stealth", V81, [], None),
    ("cat::2 dog::-0.5", V81, [], None),
    ("cat:: dog", V81, [], None),
    ("a fox --cref https://cdn.discordapp.com/a.png --cw 50 --v 6.1", V81, [], None),
    # --cref on V7+: offer --oref (one image; --cw has no --oref meaning)
    (
        f"a fox --cref {IMG} --cw 50 --v 7",
        V81,
        [(Issue.CREF_V7, E)],
        f"a fox --oref {IMG} --v 7",
    ),
    (f"a fox --cref {IMG}", V81, [(Issue.CREF_V7, E)], f"a fox --oref {IMG}"),
    (f"a fox --cref {IMG} --v 5.2", V81, [(Issue.CREF_OLD, E)], "a fox --v 5.2"),
    # --oref where the version does not take it; V8.1 and niji 7: warn only
    (f"a fox --oref {IMG} --ow 100", V81, [(Issue.OREF_UNSURE, W)], None),
    (f"a fox --oref {IMG}", NIJI, [(Issue.OREF_UNSURE, W)], None),
    (
        f"a fox --oref {IMG} --ow 100 --v 6.1",
        V81,
        [(Issue.OREF_UNSUPPORTED, E)],
        f"a fox --cref {IMG} --v 6.1",
    ),
    (f"a fox --oref {IMG} --v 5.2", V81, [(Issue.OREF_UNSUPPORTED, E)], None),
    # --draft with a pinned version that lacks it
    ("a fox --draft --v 6.1", V81, [(Issue.DRAFT_UNSUPPORTED, E)], "a fox --v 6.1"),
    ("a fox --draft", NIJI, [(Issue.DRAFT_UNSUPPORTED, E)], "a fox"),
    ("a fox --draft", V81, [(Issue.DRAFT_UNSURE, W)], None),
    ("a fox --draft", V7, [], None),
    # video-only flags without video
    ("a fox --motion high", V81, [(Issue.VIDEO_ONLY, E)], "a fox"),
    ("a fox --loop --v 7", V81, [(Issue.VIDEO_ONLY, E)], "a fox --v 7"),
    (f"a fox --end {IMG}", V81, [(Issue.VIDEO_ONLY, E)], "a fox"),
    ("a fox --bs 2", V81, [(Issue.VIDEO_ONLY, E)], "a fox"),
    # --hd / --q 4 outside V8
    ("a fox --hd --v 7", V81, [(Issue.HD_NOT_V8, E)], "a fox --v 7"),
    ("a fox --hd", V7, [(Issue.HD_NOT_V8, E)], "a fox"),
    ("a fox --q 4 --v 7", V81, [(Issue.HD_NOT_V8, E)], "a fox --v 7"),
    ("a fox --q 4", NIJI, [(Issue.HD_NOT_V8, E)], "a fox"),
    ("a fox --q .25 --v 7", V81, [(Issue.QUALITY, E)], "a fox --v 7"),
    ("a fox --q 3", V81, [(Issue.QUALITY, E)], "a fox"),
    # out-of-range weights and values: clamped
    ("a fox --s 5000", V81, [(Issue.OUT_OF_RANGE, E)], "a fox --s 1000"),
    ("a fox --stylize -5", V81, [(Issue.OUT_OF_RANGE, E)], "a fox --stylize 0"),
    (f"{IMG} a fox --iw 4", V81, [(Issue.OUT_OF_RANGE, E)], f"{IMG} a fox --iw 3"),
    ("a fox --sref 1234 --sw 2000", V81, [(Issue.OUT_OF_RANGE, E)], "a fox --sref 1234 --sw 1000"),
    (
        f"a fox --oref {IMG} --ow 1500 --v 7",
        V81,
        [(Issue.OUT_OF_RANGE, E)],
        f"a fox --oref {IMG} --ow 1000 --v 7",
    ),
    ("a fox --c 101", V81, [(Issue.OUT_OF_RANGE, E)], "a fox --c 100"),
    ("a fox --w 3001", V81, [(Issue.OUT_OF_RANGE, E)], "a fox --w 3000"),
    ("a fox --stop 5", V81, [(Issue.OUT_OF_RANGE, E)], "a fox --stop 10"),
    ("a fox --seed 4294967296", V81, [(Issue.OUT_OF_RANGE, E)], "a fox --seed 4294967295"),
    ("a fox --exp 200", V81, [(Issue.OUT_OF_RANGE, E)], "a fox --exp 100"),
    ("a fox --s 2.5", V81, [(Issue.BAD_VALUE, E)], None),
    ("a fox --s lots", V81, [(Issue.BAD_VALUE, E)], None),
    ("a fox --motion fast", VIDEO, [(Issue.BAD_VALUE, E)], None),
    ("a fox --bs 3", VIDEO, [(Issue.BAD_VALUE, E)], None),
    ("a fox --v 9", V81, [(Issue.BAD_VALUE, E)], None),
    ("a fox --niji 3", NIJI, [(Issue.BAD_VALUE, E)], None),
    ("a fox --ar 16/9", V81, [(Issue.BAD_VALUE, E)], "a fox --ar 16:9"),
    ("a fox --ar 16x9", V81, [(Issue.BAD_VALUE, E)], "a fox --ar 16:9"),
    ("a fox --ar wide", V81, [(Issue.BAD_VALUE, E)], None),
    ("a fox --ar 0:1", V81, [(Issue.BAD_VALUE, E)], None),
    ("a fox --sref blue", V81, [(Issue.BAD_VALUE, E)], None),
    ("a fox --cref 1234 --v 6", V81, [(Issue.BAD_VALUE, E)], None),
    ("a fox --style glossy", V81, [(Issue.BAD_VALUE, W)], None),
    ("a fox --p bad/code", V81, [(Issue.BAD_VALUE, E)], None),
    ("a fox --ar", V81, [(Issue.MISSING_VALUE, E)], "a fox"),
    ("a fox --no", V81, [(Issue.MISSING_VALUE, E)], "a fox"),
    # text after a parameter goes back into the prompt
    ("a fox --ar 16:9 in the snow", V81, [(Issue.EXTRA_TEXT, E)], "a fox in the snow --ar 16:9"),
    ("a fox --raw in the snow", V81, [(Issue.EXTRA_TEXT, E)], "a fox in the snow --raw"),
    # unknown flags: warned (the table may lag Midjourney), fix drops them
    ("a fox --sharp", V81, [(Issue.UNKNOWN_PARAM, W)], "a fox"),
    ("a fox --ar 3:2 --zz 1", V81, [(Issue.UNKNOWN_PARAM, W)], "a fox --ar 3:2"),
    # duplicates
    ("a fox --ar 3:2 --ar 16:9", V81, [(Issue.DUPLICATE, E)], "a fox --ar 3:2"),
    ("a fox --s 100 --stylize 200", V81, [(Issue.DUPLICATE, E)], "a fox --s 100"),
    # --niji sent to the Midjourney bot (the provider takes botType): send it to niji
    ("a fox --niji 7", V81, [(Issue.NIJI_ON_MJ, E)], "a fox --niji 7"),
    ("a fox --v 7", NIJI, [(Issue.V_ON_NIJI, E)], "a fox --v 7"),
    ("a fox --v 7 --niji 7", V81, [(Issue.BOTH_VERSIONS, E)], "a fox --v 7"),
    ("a fox --v 7 --niji 7", NIJI, [(Issue.BOTH_VERSIONS, E)], "a fox --niji 7"),
    # unbalanced :: weights
    (":: cat", V81, [(Issue.WEIGHTS, E)], "cat"),
    ("cat:: ::2 dog", V81, [(Issue.WEIGHTS, E)], "cat:: dog"),
    ("cat::: dog", V81, [(Issue.WEIGHTS, E)], "cat:: dog"),
    ("cat::-2 dog::-1", V81, [(Issue.WEIGHTS_SUM, E)], None),
    ("cat::-1", V81, [(Issue.WEIGHTS_SUM, E)], None),
    # URLs that are not images
    ("https://example.com/page.html a fox", V81, [(Issue.NOT_IMAGE, E)], "a fox"),
    ("https://example.com/ a fox", V81, [(Issue.NOT_IMAGE, E)], "a fox"),
    ("https://example.com/photo a fox", V81, [(Issue.MAYBE_NOT_IMAGE, W)], None),
    ("https://example.com/a.jpg?x=1 a fox", V81, [], None),
    ("a fox --sref https://example.com/doc.pdf", V81, [(Issue.NOT_IMAGE, E)], None),
    ("a fox --oref https://example.com/x --v 7", V81, [(Issue.MAYBE_NOT_IMAGE, W)], None),
    # not supported on old versions
    ("a fox --p --v 5.2", V81, [(Issue.NOT_SUPPORTED, E)], "a fox --v 5.2"),
    ("a fox --exp 10", NIJI, [(Issue.NOT_SUPPORTED, W)], "a fox"),
]


@pytest.mark.parametrize(("prompt", "target", "expected", "fixed"), CASES)
def test_table(
    prompt: str, target: Target, expected: list[tuple[Issue, Severity]], fixed: str | None
) -> None:
    problems = check(prompt, target)
    assert [(p.issue, p.severity) for p in problems] == expected
    if expected:
        fix = problems[0].fix
        assert (fix.prompt if fix else None) == fixed
        assert blocking(problems) == any(s is E for _, s in expected)
        if fix is not None and fix.bot is None:
            # applying the fix removes the problem it was offered for
            assert problems[0] not in check(fix.prompt, target)


def test_fixes_that_change_the_bot() -> None:
    [problem] = check("a fox --niji 7", V81)
    assert problem.fix == Fix("a fox --niji 7", Bot.NIJI)
    assert check("a fox --niji 7", Target(bot=Bot.NIJI)) == []
    [problem] = check("a fox --v 7", NIJI)
    assert problem.fix == Fix("a fox --v 7", Bot.MIDJOURNEY)


def test_fix_all_applies_every_fix_in_turn() -> None:
    prompt = f"a fox --cref {IMG} --cw 80 --hd --v 7 --motion high --s 9000 --zz"
    fix = fix_all(prompt, V81)
    assert fix == Fix(f"a fox --oref {IMG} --v 7 --s 1000")
    assert check(fix.prompt, V81) == []
    assert fix_all("a fox", V81) is None
    assert fix_all("a fox --niji 7", V81) == Fix("a fox --niji 7", Bot.NIJI)
    # what cannot be fixed stays for the user to see
    assert fix_all("cat::-1 --s 5000", V81) == Fix("cat::-1 --s 1000")


def test_each_problem_has_one_message_line_in_both_languages() -> None:
    for issue in Issue:
        for lang in ("en", "zh"):
            text = catalog(lang)[issue.value]
            assert "\n" not in text
            text.format(param="--x", value="v", version="V7", low="0", high="1")


def test_problems_carry_their_fields() -> None:
    [problem] = check("a fox --s 5000", V81)
    assert problem.fields == {
        "param": "--s",
        "value": "5000",
        "version": "",
        "low": "0",
        "high": "1000",
    }
    [problem] = check("a fox --hd --v 7", V81)
    assert (problem.param, problem.version) == ("--hd", "V7")


def test_parse_reads_images_text_and_params() -> None:
    parsed = parse(f"{IMG} <https://s.mj.run/x>  a  red fox, snow --ar 3:2 --no a, b --raw")
    assert parsed.images == (IMG, "<https://s.mj.run/x>")
    assert parsed.text == "a  red fox, snow"  # the text's own spacing is kept
    assert [(p.name, p.value) for p in parsed.params] == [
        ("aspect", "3:2"),
        ("no", "a, b"),
        ("raw", ""),
    ]
    assert parse("a fox \u2014ar 3:2").get("ar") is not None  # iOS turns -- into —
    assert parse("").render() == ""
    assert parse("--v 7").text == ""


def test_pinned_version() -> None:
    assert parse("a --v 7").pinned == Version(False, 7)
    assert parse("a --version 8.1").pinned == Version(False, 8.1)
    assert parse("a --niji").pinned == Version(True, 7)
    assert parse("a --niji 6").pinned == Version(True, 6)
    assert parse("a --v 99").pinned is None
    assert parse("a").pinned is None


def test_support_table() -> None:
    assert supports(Model.V7.version, "oref") is Support.YES
    assert supports(Model.V8_1.version, "oref") is Support.UNSURE
    assert supports(Version(False, 6.1), "cref") is Support.YES
    assert supports(Model.V7.version, "cref") is Support.NO
    assert supports(Model.V8_1.version, "hd") is Support.YES
    assert supports(Model.NIJI7.version, "hd") is Support.NO


def test_url_kinds() -> None:
    assert url_kind("https://cdn.discordapp.com/attachments/1/2/x") is UrlKind.IMAGE
    assert url_kind("https://a.example/x.WEBP") is UrlKind.IMAGE
    assert url_kind("https://a.example/x.mp4") is UrlKind.NOT_IMAGE
    assert url_kind("https://a.example/img/123") is UrlKind.UNKNOWN
    assert url_kind("ftp://a.example/x.png") is UrlKind.NOT_IMAGE


def test_compose_adds_settings_the_prompt_lacks() -> None:
    options = Options(
        model=Model.V7,
        raw=True,
        stylize=250,
        personalize=True,
        profile_codes=("m7abc",),
        draft=True,
        references=(
            Reference(RefKind.OMNI, "https://s.mj.run/o.png", 200),
            Reference(RefKind.IMAGE, IMG, 2),
            Reference(RefKind.STYLE, "1234"),
        ),
        suffix="--ar 3:2",
    )
    composed = compose("a fox", options)
    assert composed.bot is Bot.MIDJOURNEY
    assert composed.prompt == (
        f"{IMG} a fox --ar 3:2 --v 7 --style raw --s 250 --p m7abc --draft "
        "--oref https://s.mj.run/o.png --ow 200 --iw 2 --sref 1234"
    )
    assert check(composed.prompt, Target(bot=composed.bot)) == []


def test_compose_keeps_what_the_user_typed() -> None:
    options = Options(model=Model.V7, stylize=250, raw=True, draft=True)
    composed = compose("a fox --s 50 --v 6.1 --style raw", options)
    assert composed.prompt == "a fox --s 50 --v 6.1 --style raw"  # no --draft: V6.1 lacks it
    composed = compose(
        f"a fox --oref {IMG} --ow 5",
        Options(references=(Reference(RefKind.OMNI, "https://s.mj.run/o.png", 200),)),
    )
    assert composed.prompt == f"a fox --oref {IMG} --ow 5"


def test_compose_routes_niji() -> None:
    assert compose("a fox", Options(model=Model.NIJI7)).prompt == "a fox"
    assert compose("a fox", Options(model=Model.NIJI7)).bot is Bot.NIJI
    # a provider without botType: --niji 7 in the prompt
    no_bot = compose("a fox", Options(model=Model.NIJI7), bot_types=False)
    assert (no_bot.prompt, no_bot.bot) == ("a fox --niji 7", None)
    # the prompt's own pin decides the bot
    assert compose("a fox --v 7", Options(model=Model.NIJI7)).bot is Bot.MIDJOURNEY
    assert compose("a fox --niji 6", Options(model=Model.V8_1)).bot is Bot.NIJI
    # V8.1's --hd and --q 4 only where the model has them
    hd = Options(model=Model.V7, hd=True, quality="4")
    assert compose("a fox", hd).prompt == "a fox --v 7"
    assert compose("a fox", Options(model=Model.V8_1, hd=True, quality="4")).prompt == (
        "a fox --v 8.1 --hd --q 4"
    )


def test_full_quality_from_a_draft() -> None:
    assert is_draft("a fox --draft --v 7")
    assert without_draft("a fox --draft --v 7", "1234") == "a fox --v 7 --seed 1234"
    assert without_draft("a fox --draft --seed 9", "1234") == "a fox --seed 9"
    assert not is_draft(without_draft("a fox --draft"))


def test_the_suffix_adds_only_what_the_prompt_lacks() -> None:
    suffix = Options(suffix="ultra detailed --ar 3:2 --v 7 --s 50")
    assert compose("a fox --ar 16:9 --niji 6", suffix, bot_types=False).prompt == (
        "a fox ultra detailed --ar 16:9 --niji 6 --s 50"
    )
    assert compose("a fox ultra detailed", suffix, bot_types=False).prompt == (
        "a fox ultra detailed --ar 3:2 --v 7 --s 50"
    )
    composed = compose("a fox --ar 16:9", suffix)
    assert check(composed.prompt, Target(bot=composed.bot)) == []
