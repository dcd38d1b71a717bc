"""Every chapter of the study reads in one shape, and every figure says what it rests on (issue 24, item 4)."""

import re
from pathlib import Path

import pytest

CHAPTERS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("0[1-9]_*.py"))
PARTS = ("The question", "Set-up", "Result", "Verdict", "What next")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_the_chapter_has_the_five_parts_in_order(path):
    """Every section heading names its part, and the parts come in order: a result after the verdict, or a
    section that names no part, is an outlier."""
    headings = re.findall(r"^# ## (.+)$", path.read_text(), re.M)
    parts = [next((i for i, part in enumerate(PARTS) if h.startswith(part)), None) for h in headings]
    assert None not in parts, f"{path.name}: a section names no part: {dict(zip(headings, parts))}"
    assert sorted(set(parts)) == list(range(len(PARTS))), f"{path.name} lacks a part: {headings}"
    assert parts == sorted(parts), f"{path.name}: parts out of order: {headings}"
    assert headings[0] == "The question" and headings[-1].startswith("What next"), headings


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_figure_caption_states_glued_numbers(path):
    """A caption says how many models, seeds, prompts (or statements, texts) a figure rests on, glued from
    the executed code, never typed."""
    captions = re.findall(r"# ```\{glue:figure\} (\S+)\n(.*?)# ```", path.read_text(), re.S)
    for name, caption in captions:
        assert "{glue:text}" in caption, f"{path.name}: the caption of {name} states no glued number"
