"""Chapter 7's plan is stated once: `codesign.Plan` has one field per parameter of notebooks/07_codesign.py, its
defaults are that parameters cell's values (which papermill needs as literals) and those chapters 5 and 6 share
with it, the chapter passes each parameter to its own field, and at every level (notebooks/params/<level>.yaml)
the values chapter 7 runs with agree with those of the chapters whose results it reads from the cache."""

import ast
from dataclasses import fields

import pytest

from toxlab.analysis import codesign
from toxlab.book.builder import LEVELS, NOTEBOOKS, chapter_params, declared_parameters

CODESIGN = NOTEBOOKS / "07_codesign.py"
#: The chapters whose cached results chapter 7 reads, by the name each gives a value chapter 7 also holds
#: (chapter 7's name -> theirs): chapters 5 and 6 run the frontier on their `seeds`, chapter 2 the toy.
READS = {"05_intervention": {"frontier_seeds": "seeds"}, "06_benchmarks": {"frontier_seeds": "seeds"},
         "02_toy": {"toy_seeds": "toy_seeds", "toy_shares": "shares", "toy_steps": "steps"}}
PLAN_FIELDS = [f.name for f in fields(codesign.Plan)]


def chapter_values(level: str | None, chapter: str) -> dict:
    """What a chapter runs with: its parameters cell, then the level's values over it (as papermill does)."""
    source = NOTEBOOKS / f"{chapter}.py"
    return {**declared_parameters(source.read_text()), **(chapter_params(level, source) if level else {})}


def plan_for(level: str | None) -> codesign.Plan:
    """The plan chapter 7 runs at `level` (None: its parameters cell as written), before `Plan.within`."""
    values = chapter_values(level, CODESIGN.stem)
    return codesign.Plan(**{name: values[name] for name in PLAN_FIELDS})


def shared(chapter: str) -> dict[str, str]:
    """Chapter 7's name -> the other chapter's, for every value the two hold (each chapter's `seeds` are its own
    models: chapter 7's every model's, chapter 5's the frontier's)."""
    names = set(declared_parameters((NOTEBOOKS / f"{chapter}.py").read_text())) - {"seeds"}
    return {**{name: name for name in PLAN_FIELDS if name in names}, **READS.get(chapter, {})}


def test_the_plan_s_defaults_are_the_chapter_s_parameters_cell():
    assert set(PLAN_FIELDS) <= set(declared_parameters(CODESIGN.read_text()))
    assert plan_for(None) == codesign.Plan()


@pytest.mark.parametrize("chapter", ["05_intervention", "06_benchmarks"])
def test_chapters_5_and_6_default_to_the_plan_s_values(chapter):
    """At the default level chapter 7 finds chapters 5's and 6's results only if their cells agree with it."""
    values, plan, names = chapter_values(None, chapter), codesign.Plan(), shared(chapter)
    assert len(names) >= 5 and {ours: getattr(plan, ours) for ours in names} == {
        ours: values[theirs] for ours, theirs in names.items()}


def test_the_chapter_passes_each_parameter_to_its_own_field():
    """The plan the chapter runs is its parameters: `codesign.Plan(name=name, ...)` for every field."""
    calls = [node for node in ast.walk(ast.parse(CODESIGN.read_text())) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and node.func.attr == "Plan"]
    assert len(calls) == 1 and not calls[0].args
    passed = {kw.arg: kw.value.id for kw in calls[0].keywords if isinstance(kw.value, ast.Name)}
    assert passed == {name: name for name in PLAN_FIELDS}


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("chapter", sorted(READS))
def test_at_every_level_chapter_7_runs_with_the_values_of_the_chapters_it_reads(level, chapter):
    plan, values = plan_for(level), chapter_values(level, chapter)  # the plan validates at every level
    assert {ours: getattr(plan, ours) for ours in shared(chapter)} == {
        ours: values[theirs] for ours, theirs in shared(chapter).items()}


def test_within_cuts_the_per_fraction_lists_to_the_level_s_fractions():
    plan = codesign.Plan(baseline_fractions=[0.0, 0.1], leace_fractions=[0.1], snapshot_fractions=[0.0, 0.25],
                         variant_fractions=[0.0, 0.1, 0.25], seeds=[0, 1])
    cut = plan.within([0.0, 0.25])
    assert (cut.baseline_fractions, cut.leace_fractions, cut.snapshot_fractions, cut.variant_fractions) == (
        [0.0], [], [0.0, 0.25], [0.0, 0.25])
    assert cut.seeds == [0, 1] and cut.sweep_fraction == plan.sweep_fraction and plan.within([0.0, 0.1, 0.25]) == plan


def test_the_tagging_baselines_pretrain_only_on_their_mixtures():
    """MEDA and INST pretrain their own models, on `tagging_fractions`; the other baselines treat the level's
    models of `baseline_fractions`; both lists are cut to the level's fractions."""
    plan = codesign.Plan(baseline_fractions=[0.0, 0.1], tagging_fractions=[0.1, 0.25])
    assert plan.fractions_for("meda") == plan.fractions_for("inst") == [0.1, 0.25]
    assert plan.fractions_for("sft") == plan.fractions_for("prompt") == [0.0, 0.1]
    assert plan.within([0.0, 0.25]).fractions_for("inst") == [0.25]
