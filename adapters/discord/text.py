"""The few strings only Discord needs (option descriptions, modal labels), in en and zh.

Everything else comes from the core catalog (``bot.i18n``); :func:`text` looks here first and
falls back to it, so command descriptions reuse ``cmd.<name>``. These belong in the core catalog
eventually (see the adapter's notes); they live here because the adapter must not edit ``bot/``.
"""

from __future__ import annotations

from bot.i18n import normalize, t

_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "cmd.show": "Post a finished task again, with its buttons",
        "opt.prompt": "What to imagine, e.g. a red fox in snow --ar 3:2",
        "opt.image": "A photo to use as an image prompt",
        "opt.describe_image": "The photo to describe",
        "opt.blend_image": "A photo to blend",
        "opt.dimensions": "Shape of the result",
        "opt.face": "The photo with the face",
        "opt.target": "The photo to put the face on",
        "opt.shorten_prompt": "The prompt to shorten",
        "opt.video_prompt": "What should happen in the video",
        "opt.video_image": "The photo to animate",
        "opt.motion": "How much movement",
        "opt.edit_prompt": "The change to make",
        "opt.edit_image": "The photo to edit",
        "opt.suffix": "Default suffix added to every prompt, e.g. --v 7 --ar 3:2",
        "opt.id": "The task id (from /tasks)",
        "choice.portrait": "Portrait (2:3)",
        "choice.square": "Square (1:1)",
        "choice.landscape": "Landscape (3:2)",
        "choice.high": "High motion",
        "choice.low": "Low motion",
        "answer": "✏️ Answer",
        "answer.prompt": "Prompt",
        "answer.files": "Photos",
        "region.cells": "Cells to repaint (see the grid)",
        "region.cell": "Cell {n}",
        "region.mask": "Or a mask image (white = repaint)",
        "too_large": "⚠️ {name} is too large for Discord here ({size} MB).",
    },
    "zh": {
        "cmd.show": "重新发送已完成的任务（带按钮）",
        "opt.prompt": "要画什么，例如 a red fox in snow --ar 3:2",
        "opt.image": "用作图片提示的照片",
        "opt.describe_image": "要描述的照片",
        "opt.blend_image": "要混合的照片",
        "opt.dimensions": "结果的形状",
        "opt.face": "有脸的照片",
        "opt.target": "要换上这张脸的照片",
        "opt.shorten_prompt": "要精简的提示词",
        "opt.video_prompt": "视频里发生什么",
        "opt.video_image": "要动起来的照片",
        "opt.motion": "动作幅度",
        "opt.edit_prompt": "要做的修改",
        "opt.edit_image": "要编辑的照片",
        "opt.suffix": "每个提示词后自动添加的后缀，例如 --v 7 --ar 3:2",
        "opt.id": "任务编号（见 /tasks）",
        "choice.portrait": "竖图 (2:3)",
        "choice.square": "方图 (1:1)",
        "choice.landscape": "横图 (3:2)",
        "choice.high": "大幅运动",
        "choice.low": "小幅运动",
        "answer": "✏️ 回答",
        "answer.prompt": "提示词",
        "answer.files": "照片",
        "region.cells": "要重绘的格子（见网格图）",
        "region.cell": "第 {n} 格",
        "region.mask": "或上传蒙版图片（白色 = 重绘）",
        "too_large": "⚠️ {name} 太大，无法在这里发送（{size} MB）。",
    },
}


def text(key: str, lang: str = "en", **fields: object) -> str:
    """A Discord string in ``lang`` (en/zh); unknown keys come from the core catalog."""
    lang = normalize(lang)
    found = _TEXT[lang].get(key) or _TEXT["en"].get(key)
    if found is None:
        return t(key, lang, **fields)
    return found.format(**fields) if fields else found
