"""bot/mj/failures.py: the API's wording -> typed reasons, and nobody else reads that wording.

The texts are the providers' own, from ../shared/reference/mj-api.md (§4.3, §11.4, P3, P4,
P11) and the simulator's flavours."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bot.i18n import t
from bot.mj.failures import Reason, of_description, of_fail_reason
from bot.mj.models import Outcome, Submission
from bot.results import describe_failure

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("提交失败，队列已满，请稍后重试", Reason.QUEUE_FULL),  # trueai code 9 (P3)
        ("队列已满，请稍后尝试", Reason.QUEUE_FULL),  # Java/Plus code 23
        ("Queue full, please try again later", Reason.QUEUE_FULL),
        ("The queue is full", Reason.QUEUE_FULL),
        ("unknown_action:MJ::Job::PicReader::2", Reason.UNKNOWN_ACTION),  # new-api (P11)
        ("未知的 Action 类型", Reason.UNKNOWN_ACTION),  # trueai (P11)
        ("未知的Action类型", Reason.UNKNOWN_ACTION),
        ("提交失败，系统异常", Reason.OTHER),  # code 9 that is not a full queue
        ("关联任务状态错误", Reason.OTHER),  # an ordinary validation error (code 4)
        ("队列数已达上限", Reason.OTHER),  # trueai's concurrency cap, not a full queue
        ("可能包含敏感词", Reason.OTHER),  # code 24 says it with the code
        ("提交成功", Reason.OTHER),
        ("", Reason.OTHER),
        ("see unknown_action", Reason.OTHER),  # the token starts the text
    ],
)
def test_descriptions(text: str, reason: Reason) -> None:
    assert of_description(text) is reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "[Banned prompt detected] Sorry! Our AI moderator thinks this prompt is probably"
            " against our community standards.",
            Reason.MODERATION,
        ),
        ("Banned prompt detected, Sorry!", Reason.MODERATION),  # trueai: "<title>, <text>"
        ("可能包含敏感词", Reason.MODERATION),  # trueai, after code 1 (P4)
        ("Request cancelled due to output filters", Reason.MODERATION),
        ("可能包含违规信息", Reason.MODERATION),  # Plus's mj.error-desc mapping
        ("图片可能违规", Reason.MODERATION),
        ("[Invalid parameter] Invalid value", Reason.INVALID),
        ("Invalid link, the image could not be read", Reason.INVALID),
        ("任务超时", Reason.TIMEOUT),  # Java OSS
        ("执行超时 5 分钟", Reason.TIMEOUT),  # trueai
        ("超时，未找到消息", Reason.TIMEOUT),
        ("Read timed out", Reason.TIMEOUT),
        ("timeout", Reason.TIMEOUT),  # our own: the tracker's time limit
        ("Queue full", Reason.QUEUE_FULL),
        ("提交失败，队列已满，请稍后重试", Reason.QUEUE_FULL),
        ("Subscription required", Reason.ACCOUNT),
        ("Subscription paused", Reason.ACCOUNT),
        ("Blocked", Reason.ACCOUNT),
        ("实例不可用", Reason.ACCOUNT),
        ("Invalid Form Body", Reason.INVALID),  # Discord's HTTP error via Java OSS
        ("401 Unauthorized: [no body]", Reason.OTHER),
        ("取消任务", Reason.OTHER),
        ("未知错误", Reason.OTHER),
        ("", Reason.OTHER),
    ],
)
def test_fail_reasons(text: str, reason: Reason) -> None:
    assert of_fail_reason(text) is reason


def test_the_first_bucket_wins() -> None:
    # moderation before invalid before timeout before the queue and the account
    assert of_fail_reason("Invalid prompt: banned prompt detected") is Reason.MODERATION
    assert of_fail_reason("invalid request timed out") is Reason.INVALID
    assert of_fail_reason("timeout: queue full") is Reason.TIMEOUT


def test_a_submission_carries_its_reason() -> None:
    full = Submission.from_json({"code": 9, "description": "提交失败，队列已满，请稍后重试"})
    assert full.outcome is Outcome.FAILED and full.reason is Reason.QUEUE_FULL
    plain = Submission.from_json({"code": 1, "description": "提交成功", "result": "1"})
    assert plain.reason is Reason.OTHER
    assert Submission.from_json("队列已满").reason is Reason.QUEUE_FULL  # not even an envelope


def test_failures_are_told_by_kind_with_the_text_as_detail() -> None:
    text = "[Banned prompt detected] Sorry!"
    assert describe_failure(text, "en") == f"{t('failure.moderation', 'en')}\n{text}"
    assert describe_failure("Queue full", "zh").startswith(t("failure.account", "zh"))
    assert describe_failure("Something odd", "en").startswith(t("failure.generic", "en"))
    assert describe_failure("timeout", "en") == t("failure.timeout", "en")  # no detail: ours


TEXT_FIELDS = {"description", "fail_reason", "failReason"}
MATCHERS = {"search", "match", "fullmatch", "findall", "finditer", "startswith", "endswith"}


def _names_text(node: ast.AST) -> bool:
    """Whether an expression reads a description or a failReason (``x.description``,
    ``data["failReason"]``, ``x.description.lower()``)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and sub.attr in TEXT_FIELDS:
            return True
        if isinstance(sub, ast.Constant) and sub.value in TEXT_FIELDS:
            return True
    return False


def _text_matching(path: Path, root: Path = ROOT) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Compare) and any(
            isinstance(op, ast.In | ast.NotIn) for op in node.ops
        ):
            if _names_text(node.comparators[-1]):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr not in MATCHERS:
                continue
            if _names_text(node.func.value) or any(_names_text(a) for a in node.args):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_no_human_text_is_matched_outside_failures() -> None:
    """The core and the adapters branch on Reason, never on a description or failReason."""
    found = [
        line
        for package in ("bot", "adapters")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != ROOT / "bot" / "mj" / "failures.py"
        for line in _text_matching(path)
    ]
    assert found == []


def test_the_guard_sees_what_it_guards_against(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import re\n"
        "a = 'queue full' in sub.description.lower()\n"
        "b = re.search('x', task.fail_reason)\n"
        "c = sub.description.startswith('unknown_action')\n"
        "d = 'x' in data['failReason']\n"
        "e = sub.reason is Reason.QUEUE_FULL\n"
    )
    lines = [line.split(":")[1] for line in _text_matching(sample, tmp_path)]
    assert lines == ["2", "3", "4", "5"]
