"""Every hook specification is documented in docs/plugins.md."""

from __future__ import annotations

import inspect
from pathlib import Path

from serverless_scheduler_common import hookspecs

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def _hookspec_names() -> list[str]:
    return [
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "serverless_scheduler_spec")
    ]


def test_there_are_hookspecs() -> None:
    assert "serverless_scheduler_job_types" in _hookspec_names()
    assert "serverless_scheduler_handle_job" in _hookspec_names()


def test_every_hookspec_has_a_docstring_and_a_section_in_the_plugin_guide() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in _hookspec_names():
        fn = getattr(hookspecs, name)
        assert inspect.getdoc(fn), f"{name} has no docstring"
        assert f"### `{name}(" in text, f"docs/plugins.md has no section for {name}"


def test_the_example_plugin_the_guide_walks_through_exists() -> None:
    from serverless_scheduler_example import plugin

    text = DOC.read_text(encoding="utf-8")
    assert "plugins/example/" in text
    assert plugin.ExampleJob.model_fields["job_type"].default in text
