"""Which rule set (``jaxcage.rules``) an importable CybORG implements, read from its behaviour.

The two post-leaderboard fixes of ``cage-challenge/cage-challenge-2`` are recognised by what the
code does, not by a version string (both commits left ``version.txt`` at 2.1):

* ``3ead7fd``: ``Shared/Enums.py::ProcessVersion.parse_string`` returns an enum member it is given
  unchanged (before: ``UNKNOWN``);
* ``9421c8e``: ``Simulator/Session.py::RedAbstractSession`` has ``clearports`` (used by
  ``DiscoverNetworkServices``).

Both present: ``"current"``; both absent: ``"leaderboard"`` (commit ``606813b``); one of them:
``None`` (a CybORG in between, which no jaxcage rule set reproduces).
"""

from __future__ import annotations

import importlib

from jaxcage.reference.cyborg_env import ReferenceNotInstalled, load_backend
from jaxcage.rules import get_rule_set, rules_name

# Modules holding ProcessVersion and RedAbstractSession in each distribution.
_MODULES: dict[str, tuple[str, str]] = {
    "csle": ("csle_cyborg.shared.enums", "csle_cyborg.simulator.session"),
    "official": ("CybORG.Shared.Enums", "CybORG.Simulator.Session"),
}

LEADERBOARD_INSTALL_HINT = (
    "rules='leaderboard' inside CybORG needs the official CybORG package at the 2022 leaderboard "
    "commit 606813b of github.com/cage-challenge/cage-challenge-2 (csle-cyborg and every later "
    "install carry the fixes 3ead7fd and 9421c8e, i.e. the 'current' rules). For example:\n"
    "    git clone https://github.com/cage-challenge/cage-challenge-2 && cd cage-challenge-2 && "
    "git checkout 606813b\n"
    "    pip install gym==0.26.2 cloudpickle  # CybORG's own dependencies\n"
    "    export PYTHONPATH=$PWD/CybORG:$PYTHONPATH  # so that `import CybORG` finds 606813b"
)


def cyborg_rules(backend: str) -> str | None:
    """The rule set implemented by the CybORG distribution ``backend`` ("csle" / "official").

    Raises:
        ReferenceNotInstalled: the distribution cannot be imported.
    """
    loaded = load_backend(backend)
    enums_name, session_name = _MODULES[loaded.name]
    enums = importlib.import_module(enums_name)
    session = importlib.import_module(session_name)
    version = enums.ProcessVersion
    fixed_version = version.parse_string(version.HARAKA_2_7_0) is version.HARAKA_2_7_0
    fixed_ports = hasattr(session.RedAbstractSession, "clearports")
    if fixed_version and fixed_ports:
        return "current"
    if not fixed_version and not fixed_ports:
        return "leaderboard"
    return None


def cyborg_backend_for_rules(rules: str) -> str:
    """The CybORG backend to use for ``rules``: the first importable one implementing them.

    ``"current"``: csle-cyborg, else an official CybORG at HEAD. ``"leaderboard"``: only the
    official package, and only at 606813b (csle-cyborg has the fixes).

    Raises:
        ReferenceNotInstalled: no importable CybORG implements ``rules`` (says what to install).
    """
    name = rules_name(rules)
    candidates = ("csle", "official") if name == "current" else ("official",)
    found: list[str] = []
    for backend in candidates:
        try:
            got = cyborg_rules(backend)
        except ReferenceNotInstalled:
            continue
        if got == name:
            return backend
        found.append(f"{backend} implements rules={got!r}")
    seen = f" (found: {'; '.join(found)})" if found else ""
    if name == "leaderboard":
        raise ReferenceNotInstalled(LEADERBOARD_INSTALL_HINT + seen)
    cyborg = get_rule_set(name).cyborg
    raise ReferenceNotInstalled(
        f"no importable CybORG implements rules={name!r} ({cyborg}){seen}. Install csle-cyborg "
        '(pip install -e ".[test,cyborg]" and pip install --no-deps gym-csle-cyborg==0.10.1) or '
        "the official CybORG at cage-challenge-2 HEAD."
    )
