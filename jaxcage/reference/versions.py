"""Which rule set (``jaxcage.rules``) an importable CybORG implements, read from its behaviour.

The two post-leaderboard fixes of ``cage-challenge/cage-challenge-2`` are recognised by what the
code does, not by a version string (both commits left ``version.txt`` at 2.1):

* ``3ead7fd``: ``Shared/Enums.py::ProcessVersion.parse_string`` returns an enum member it is given
  unchanged (before: ``UNKNOWN``);
* ``9421c8e``: ``Simulator/Session.py::RedAbstractSession`` has ``clearports`` (used by
  ``DiscoverNetworkServices``).

Both present: ``"current"``; both absent: ``"leaderboard"`` (commit ``606813b``); one of them:
``None`` (a CybORG in between, which no jaxcage rule set reproduces).

CybORG++'s ``Debugged_CybORG`` (``"debugged"``) derives from ``9421c8e`` (both fixes) and adds six
more; the five that change Blue's game are recognised by behaviour too (``debugged_fixes``), the
first (``Remove``'s success) from the code of ``Remove.sim_execute``. All six: ``"debugged"``;
some of them: ``None``.
"""

from __future__ import annotations

import importlib
import inspect
import os
from typing import Any

from jaxcage.reference.cyborg_env import (
    DEBUGGED_INSTALL_HINT,
    ReferenceNotInstalled,
    load_backend,
)
from jaxcage.rules import DEBUGGED_FIXES, get_rule_set, rules_name

# Modules holding ProcessVersion and RedAbstractSession in each distribution.
_MODULES: dict[str, tuple[str, str]] = {
    "csle": ("csle_cyborg.shared.enums", "csle_cyborg.simulator.session"),
    "official": ("CybORG.Shared.Enums", "CybORG.Simulator.Session"),
    "debugged": ("CybORG.Shared.Enums", "CybORG.Simulator.Session"),
}
# Package prefix of each distribution's modules.
_PREFIX: dict[str, str] = {"csle": "csle_cyborg", "official": "CybORG", "debugged": "CybORG"}

LEADERBOARD_INSTALL_HINT = (
    "rules='leaderboard' inside CybORG needs the official CybORG package at the 2022 leaderboard "
    "commit 606813b of github.com/cage-challenge/cage-challenge-2 (csle-cyborg and every later "
    "install carry the fixes 3ead7fd and 9421c8e, i.e. the 'current' rules). For example:\n"
    "    git clone https://github.com/cage-challenge/cage-challenge-2 && cd cage-challenge-2 && "
    "git checkout 606813b\n"
    "    pip install gym==0.26.2 cloudpickle  # CybORG's own dependencies\n"
    "    export PYTHONPATH=$PWD/CybORG:$PYTHONPATH  # so that `import CybORG` finds 606813b"
)


def _yaml_process(path: str, name: str) -> dict[str, Any]:
    """The first process called ``name`` in a host image YAML."""
    yaml = importlib.import_module("yaml")
    with open(path) as f:
        image = yaml.safe_load(f)
    host = next(iter(image.values()))
    return next(p for p in host["Processes"] if p.get("Process Name") == name)


def debugged_fixes(backend: str) -> dict[str, bool]:
    """Which of CybORG++ ``Debugged_CybORG``'s six fixes the distribution ``backend`` has.

    Keys are those of ``jaxcage.rules.DEBUGGED_FIXES``. Each is read from what the code does
    where that is cheap: DecoyVsftpd's decoy port, the images' smss.exe process type and User3's
    mysql port, the reward of a ``www-data`` session, and the activity of a scan-like burst
    holding a 4444 connection; Remove's success from its source (it needs a whole game to show).
    """
    loaded = load_backend(backend)
    pkg = _PREFIX[loaded.name]
    if loaded.name == "csle":
        return dict.fromkeys(DEBUGGED_FIXES, False)
    root = os.path.dirname(inspect.getfile(importlib.import_module(pkg)))
    images = os.path.join(root, "Shared", "Scenarios", "images")
    remove = importlib.import_module(f"{pkg}.Shared.Actions.AbstractActions.Remove")
    vsftpd = importlib.import_module(f"{pkg}.Shared.Actions.ConcreteActions.DecoyVsftpd")
    reward = importlib.import_module(f"{pkg}.Shared.RedRewardCalculator")
    table = importlib.import_module(f"{pkg}.Agents.Wrappers.BlueTableWrapper")
    enums = importlib.import_module(f"{pkg}.Shared.Enums")

    decoy = vsftpd.vsftpd_decoy_factory.make_decoy(None)
    smss = _yaml_process(os.path.join(images, "Internal_image.yaml"), "smss.exe")
    mysql = _yaml_process(os.path.join(images, "linux_user_host_image1.yaml"), "mysql")

    class _Scenario:  # PwnRewardCalculator reads only the host's ConfidentialityValue
        def get_host(self, host: str) -> dict[str, str]:
            return {"ConfidentialityValue": "High"}

    pwn = reward.PwnRewardCalculator("Red", _Scenario())
    linux = enums.OperatingSystemType.LINUX
    www_data = {
        "h": {
            "Sessions": [{"Agent": "Red", "Username": "www-data"}],
            "System info": {"OSType": linux},
        }
    }
    burst = [{"Connections": [{"local_port": p}]} for p in (22, 80)]
    burst.append({"Connections": [{"local_port": 49200, "remote_port": 4444}]})
    return {
        "remove_success": "obs = action.sim_execute" in inspect.getsource(remove.Remove),
        "vsftpd_port_21": decoy.open_ports[0]["local_port"] == 21,
        "smss_smb": str(smss.get("Process Type", "")).lower() == "smb",
        "user3_mysql_3390": [c["local_port"] for c in mysql["Connections"]] == [3390],
        "reward_service_users": pwn.calculate_reward(www_data, {}, {}, False) > 0,
        "exploit_before_scan": table.BlueTableWrapper._interpret_connections(None, burst)
        == "Exploit",
    }


def cyborg_rules(backend: str) -> str | None:
    """The rule set implemented by the CybORG distribution ``backend`` ("csle" / "official" /
    "debugged").

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
    fixes = debugged_fixes(backend)
    if all(fixes.values()):
        return "debugged" if fixed_version and fixed_ports else None
    if any(fixes.values()):
        return None
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
    candidates = {"current": ("csle", "official"), "debugged": ("debugged",)}.get(
        name, ("official",)
    )
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
    if name == "debugged":
        raise ReferenceNotInstalled(DEBUGGED_INSTALL_HINT + seen)
    cyborg = get_rule_set(name).cyborg
    raise ReferenceNotInstalled(
        f"no importable CybORG implements rules={name!r} ({cyborg}){seen}. Install csle-cyborg "
        '(pip install -e ".[test,cyborg]" and pip install --no-deps gym-csle-cyborg==0.10.1) or '
        "the official CybORG at cage-challenge-2 HEAD."
    )
