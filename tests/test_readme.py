"""The README's two set-up commands exist and CI runs exactly the README's test command."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)


def test_readme_has_exactly_two_setup_commands():
    commands = _setup_commands()
    assert len(commands) == 2, commands
    assert all("\n" not in c for c in commands), "each set-up command is one line"
    assert "uirbench generate" in commands[0] and "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert _setup_commands()[1] in ci.splitlines()


def test_readme_states_the_fingerprint_recipe_and_the_current_pins():
    import json

    from uirbench.manifest import RECIPE_TEXT
    from uirbench.suites import DEFAULT_SUITE

    text = (ROOT / "README.md").read_text()
    assert RECIPE_TEXT in text
    pins = json.loads((ROOT / "tests" / "golden" / f"{DEFAULT_SUITE}.json").read_text())
    assert f"| {DEFAULT_SUITE} (current) | `{pins['generate_default']}` | `{pins['generate_limit_2']}` |" in text


def test_readme_names_the_weight_files_where_the_code_looks_for_them():
    from uirbench.metrics.weights import ALEXNET, FID_INCEPTION, LPIPS_ALEX_LINEAR

    text = " ".join((ROOT / "README.md").read_text().split())
    for weight in (ALEXNET, LPIPS_ALEX_LINEAR, FID_INCEPTION):
        assert f"DIR/hub/{weight.store}/{weight.name}" in text, weight.name
    assert "never downloads" in text and "downloaded on first use" not in text
