"""Repository contracts: the README's two set-up commands and CI running the same test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_readme_gives_train_and_test_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = _bash_blocks(quick_start)
    assert len(blocks) == 2, "Quick start must give exactly two set-up commands"
    train, test = blocks
    assert "pip install" in train and train.rstrip().endswith("jaxcage train")
    assert "pip install" in test and "pytest" in test
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci, ".ci/run must run the README's test command verbatim"


def test_configs_named_by_the_issue_exist():
    for name in ("default", "b_line", "meander", "mixed", "guide"):
        assert (ROOT / "configs" / f"{name}.yaml").is_file(), name
