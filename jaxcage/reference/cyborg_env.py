"""Build the CybORG CAGE2 reference environment exactly as the official evaluation does.

Mirrors ``CybORG/Evaluation/evaluation.py`` (cage-challenge-2): ``CybORG(Scenario2.yaml, 'sim',
agents={'Red': red_agent})`` wrapped in ``ChallengeWrapper(agent_name='Blue')``, with Green left to
the scenario's ``SleepAgent`` unless ``green="random"`` asks for CybORG's ``GreenAgent``.

Two backends provide the same CybORG 2.1 code:

* ``"csle"``: the ``csle-cyborg`` package (module ``csle_cyborg``), a snake-case repackaging of
  CybORG 2.1 whose Scenario2 trajectories are identical. It takes the expanded scenario dict that
  ``gym-csle-cyborg`` ships (``gym_csle_cyborg.constants.constants.CYBORG.CYBORG_SCENARIO_2_DICT``).
* ``"official"``: the ``CybORG`` package from ``cage-challenge/cage-challenge-2`` (reads
  ``CybORG/Shared/Scenarios/Scenario2.yaml`` next to its own module).
* ``"debugged"``: CybORG++'s ``Debugged_CybORG`` (``alan-turing-institute/CybORG_plus_plus``), a
  ``CybORG`` package too, with six fixes (``jaxcage.rules``, rules ``"debugged"``). It is imported
  from the directory named by ``$JAXCAGE_DEBUGGED_CYBORG`` (the ``Debugged_CybORG/CybORG`` folder
  that holds the ``CybORG`` package), else from ``PYTHONPATH``. Its wrappers are gymnasium's:
  ``ChallengeWrapper.step`` returns ``(obs, reward, terminated, truncated, info)`` and ``reset``
  ``(obs, info)``; ``CyborgEnv`` adapts them.

``"auto"`` takes csle when importable, else the official package. CybORG's only source of randomness
is Python's global ``random`` module (``CybORG.set_seed`` is ``random.seed``), so ``reset(seed=s)``
makes an episode a deterministic function of ``s`` and the blue actions.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import inspect
import os
import random
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from jaxcage.constants import GREEN_AGENT_NAMES, NUM_BLUE_ACTIONS, RED_AGENT_NAMES

BACKENDS: tuple[str, ...] = ("auto", "csle", "official", "debugged")
# Directory holding CybORG++'s ``CybORG`` package (``<CybORG_plus_plus>/Debugged_CybORG/CybORG``).
DEBUGGED_PATH_ENV = "JAXCAGE_DEBUGGED_CYBORG"

INSTALL_HINT = (
    "The CybORG reference is not installed. Install it with\n"
    '    pip install -e ".[test,cyborg]"\n'
    "    pip install --no-deps gym-csle-cyborg==0.10.1\n"
    "(gym-csle-cyborg carries the expanded Scenario2 dict; --no-deps keeps it from pulling in its "
    "heavy, unused dependencies), or install the official CybORG 2.1 package from "
    "github.com/cage-challenge/cage-challenge-2 (backend='official')."
)


DEBUGGED_INSTALL_HINT = (
    "backend='debugged' (rules='debugged') needs CybORG++'s Debugged_CybORG "
    "(github.com/alan-turing-institute/CybORG_plus_plus, commit c343476). For example:\n"
    "    git clone https://github.com/alan-turing-institute/CybORG_plus_plus\n"
    f"    export {DEBUGGED_PATH_ENV}=$PWD/CybORG_plus_plus/Debugged_CybORG/CybORG\n"
    "(or put that directory on PYTHONPATH). Its wrappers need gymnasium (a jaxcage dependency); "
    "its other imports (prettytable, paramiko, PyYAML, numpy) are those of the official CybORG "
    "(pip install --target <dir> prettytable paramiko, then add <dir> to PYTHONPATH, if missing). "
    "A process can hold only one `CybORG` package: don't mix it with backend='official'."
)


class ReferenceNotInstalled(ImportError):  # noqa: N818 - public name used by dependants
    """The CybORG reference (csle-cyborg or the official CybORG package) cannot be imported."""


@dataclass(frozen=True)
class Backend:
    """Handles onto one CybORG distribution: how to build, wrap and drive it."""

    name: str  # "csle" or "official"
    red_agents: dict[str, type]  # RED_AGENT_NAMES -> agent class
    green_agent: type  # CybORG's GreenAgent
    build: Callable[[dict[str, type]], Any]  # agents dict -> CybORG object
    challenge_wrapper: type  # ChallengeWrapper class
    # ChallengeWrapper.step returns gymnasium's (obs, reward, terminated, truncated, info)
    gymnasium_step: bool = False


def _stub_stable_baselines3() -> None:
    # csle_cyborg.agents imports BlueLoadAgent, which imports stable_baselines3.PPO (torch) at
    # module level. No reference path uses it, so a placeholder keeps torch out of the install.
    if "stable_baselines3" in sys.modules or importlib.util.find_spec("stable_baselines3"):
        return
    stub = types.ModuleType("stable_baselines3")

    class PPO:  # noqa: D401 - placeholder only
        """Placeholder: jaxcage never loads SB3 models."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise ReferenceNotInstalled("stable_baselines3 is stubbed out by jaxcage.reference")

    stub.PPO = PPO  # type: ignore[attr-defined]
    sys.modules["stable_baselines3"] = stub


def _backend(
    name: str,
    agents: Any,
    build: Callable[[dict[str, type]], Any],
    wrapper: type,
    gymnasium_step: bool = False,
) -> Backend:
    """A ``Backend`` from a distribution's ``Agents`` module (both name the agents alike)."""
    return Backend(
        name=name,
        red_agents={
            "b_line": agents.B_lineAgent,
            "meander": agents.RedMeanderAgent,
            "sleep": agents.SleepAgent,
        },
        green_agent=agents.GreenAgent,
        build=build,
        challenge_wrapper=wrapper,
        gymnasium_step=gymnasium_step,
    )


def _load_csle() -> Backend:
    _stub_stable_baselines3()
    try:
        main = importlib.import_module("csle_cyborg.main")
        agents = importlib.import_module("csle_cyborg.agents")
        chal = importlib.import_module("csle_cyborg.agents.wrappers.challenge_wrapper")
        constants = importlib.import_module("gym_csle_cyborg.constants.constants")
    except ImportError as err:
        raise ReferenceNotInstalled(f"{INSTALL_HINT}\n(import failed: {err})") from err
    scenario = constants.CYBORG.CYBORG_SCENARIO_2_DICT

    def build(agent_classes: dict[str, type]) -> Any:
        # CybORG mutates the scenario dict it is given, so every env gets its own deep copy.
        return main.Main(copy.deepcopy(scenario), "sim", agents=agent_classes)

    return _backend("csle", agents, build, chal.ChallengeWrapper)


def _import_cyborg_package(hint: str) -> tuple[Any, Any, Any]:
    """``CybORG``, ``CybORG.Agents``, ``CybORG.Agents.Wrappers`` (whichever ``CybORG`` is found)."""
    _stub_stable_baselines3()
    try:
        cyborg_mod = importlib.import_module("CybORG")
        agents = importlib.import_module("CybORG.Agents")
        wrappers = importlib.import_module("CybORG.Agents.Wrappers")
    except ImportError as err:
        raise ReferenceNotInstalled(f"{hint}\n(import failed: {err})") from err
    return cyborg_mod, agents, wrappers


def is_debugged_cyborg(package_dir: str) -> bool:
    """Whether the ``CybORG`` package in ``package_dir`` is CybORG++'s ``Debugged_CybORG``.

    Read from two of its fixes' files (``jaxcage.reference.versions.cyborg_rules`` checks all of
    them by behaviour): DecoyVsftpd's port (``ConcreteActions/DecoyVsftpd.py``) and the privileged
    usernames of ``Shared/RedRewardCalculator.py``.
    """
    try:
        with open(os.path.join(package_dir, "Shared", "RedRewardCalculator.py")) as f:
            reward_src = f.read()
        vsftpd = os.path.join(package_dir, "Shared", "Actions", "ConcreteActions", "DecoyVsftpd.py")
        with open(vsftpd) as f:
            vsftpd_src = f.read()
    except OSError:
        return False
    return "'www-data'" in reward_src and "'local_port':21" in vsftpd_src.replace(" ", "")


def _load_official() -> Backend:
    cyborg_mod, agents, wrappers = _import_cyborg_package(INSTALL_HINT)
    if is_debugged_cyborg(os.path.dirname(inspect.getfile(cyborg_mod))):
        raise ReferenceNotInstalled(
            "the importable `CybORG` is CybORG++'s Debugged_CybORG: use backend='debugged' "
            "(rules='debugged'), or put cage-challenge-2's CybORG first on PYTHONPATH"
        )
    return _official_backend("official", cyborg_mod, agents, wrappers, gymnasium_step=False)


def _load_debugged() -> Backend:
    path = os.environ.get(DEBUGGED_PATH_ENV)
    if path:
        path = os.path.abspath(os.path.expanduser(path))
        if not os.path.isdir(os.path.join(path, "CybORG")):
            raise ReferenceNotInstalled(
                f"{DEBUGGED_INSTALL_HINT}\n(${DEBUGGED_PATH_ENV}={path} has no CybORG package)"
            )
        loaded = sys.modules.get("CybORG")
        if loaded is not None and not os.path.abspath(inspect.getfile(loaded)).startswith(path):
            raise ReferenceNotInstalled(
                f"{DEBUGGED_INSTALL_HINT}\n(another CybORG is already imported: {loaded.__file__})"
            )
        if path not in sys.path:
            sys.path.insert(0, path)
    cyborg_mod, agents, wrappers = _import_cyborg_package(DEBUGGED_INSTALL_HINT)
    package_dir = os.path.dirname(inspect.getfile(cyborg_mod))
    if not is_debugged_cyborg(package_dir):
        raise ReferenceNotInstalled(
            f"{DEBUGGED_INSTALL_HINT}\n(the importable CybORG at {package_dir} is not "
            "Debugged_CybORG)"
        )
    return _official_backend("debugged", cyborg_mod, agents, wrappers, gymnasium_step=True)


def _official_backend(
    name: str, cyborg_mod: Any, agents: Any, wrappers: Any, gymnasium_step: bool
) -> Backend:
    cyborg_cls = cyborg_mod.CybORG
    # evaluation.py: path = str(inspect.getfile(CybORG))[:-10] + '/Shared/Scenarios/Scenario2.yaml'
    scenario_path = os.path.join(
        os.path.dirname(inspect.getfile(cyborg_cls)), "Shared", "Scenarios", "Scenario2.yaml"
    )

    def build(agent_classes: dict[str, type]) -> Any:
        return cyborg_cls(scenario_path, "sim", agents=agent_classes)

    return _backend(name, agents, build, wrappers.ChallengeWrapper, gymnasium_step)


_BACKEND_CACHE: dict[str, Backend] = {}


def load_backend(backend: str = "auto") -> Backend:
    """Import a CybORG distribution (cached).

    Raises:
        ValueError: unknown backend name.
        ReferenceNotInstalled: the requested distribution (for ``"auto"``: neither) is importable.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown CybORG backend {backend!r}; expected one of {list(BACKENDS)}")
    if backend in _BACKEND_CACHE:
        return _BACKEND_CACHE[backend]
    if backend == "csle":
        loaded = _load_csle()
    elif backend == "official":
        loaded = _load_official()
    elif backend == "debugged":
        loaded = _load_debugged()
    else:
        try:
            loaded = _load_csle()
        except ReferenceNotInstalled as csle_err:
            try:
                loaded = _load_official()
            except ReferenceNotInstalled:
                raise csle_err from None
    _BACKEND_CACHE[backend] = loaded
    return loaded


def reference_available(backend: str = "auto") -> bool:
    """Whether ``make_cyborg_env(backend=backend)`` can work (imports the backend once)."""
    try:
        load_backend(backend)
    except ReferenceNotInstalled:
        return False
    return True


def _check_name(name: str, names: tuple[str, ...], what: str) -> str:
    key = str(name).strip().lower().replace("-", "_")
    key = {"bline": "b_line", "green": "random", "greenagent": "random"}.get(key, key)
    if key not in names:
        raise ValueError(f"unknown {what} {name!r}; expected one of {list(names)}")
    return key


class CyborgEnv:
    """CybORG Scenario2 behind ``ChallengeWrapper(agent_name='Blue')``, with a uniform API.

    ``reset`` returns the 52-dim observation; ``step`` returns ``(obs, reward, done, info)`` with
    CybORG's rounded float reward and ``done`` once ``max_steps`` steps were taken (CybORG itself
    never ends an episode). Both CybORG distributions are normalised to this shape (csle's wrapper
    is gymnasium-flavoured, the official one gym-flavoured).
    """

    def __init__(
        self,
        backend: Backend,
        red: str = "b_line",
        green: str = "sleep",
        max_steps: int = 100,
        seed: int | None = None,
    ) -> None:
        if isinstance(max_steps, bool) or int(max_steps) <= 0:
            raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
        self.backend = backend
        self.red = _check_name(red, RED_AGENT_NAMES, "red agent")
        self.green = _check_name(green, GREEN_AGENT_NAMES, "green agent")
        self.max_steps = int(max_steps)
        self._pending_seed = seed
        agent_classes: dict[str, type] = {"Red": backend.red_agents[self.red]}
        if self.green == "random":
            agent_classes["Green"] = backend.green_agent
        self.cyborg = backend.build(agent_classes)
        self.wrapper = backend.challenge_wrapper(
            env=self.cyborg, agent_name="Blue", max_steps=self.max_steps
        )
        # ChallengeWrapper -> OpenAIGymWrapper -> EnumActionWrapper -> BlueTableWrapper. get_attr
        # skips the BlueTableWrapper (it forwards to the env below), so hold it for .blue_info.
        self.table_wrapper = self.wrapper.env.env.env
        self.t = 0

    @property
    def controller(self) -> Any:
        """CybORG's ``EnvironmentController`` (agents, observations, last actions)."""
        return self.cyborg.environment_controller

    @property
    def state(self) -> Any:
        """CybORG's simulator ``State`` (hosts, sessions)."""
        return self.cyborg.environment_controller.state

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start an episode; ``seed`` (else the constructor's, once) seeds Python's ``random``."""
        if seed is None:
            seed, self._pending_seed = self._pending_seed, None
        if seed is not None:
            random.seed(int(seed))
        out = self.wrapper.reset()
        obs = out[0] if isinstance(out, tuple) else out
        self.t = 0
        return np.asarray(obs, dtype=np.int32)

    def step(self, action: int) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        """One CybORG step for Blue action id ``action`` (0..144)."""
        a = int(action)
        if not 0 <= a < NUM_BLUE_ACTIONS:
            raise ValueError(f"blue action id must be in 0..{NUM_BLUE_ACTIONS - 1}, got {action!r}")
        out = self.wrapper.step(a)
        if self.backend.gymnasium_step:
            # debugged (gymnasium): (obs, reward, terminated, truncated, info)
            obs, reward, terminated, truncated, info = out
            done = bool(terminated) or bool(truncated)
        else:
            # csle: (obs, reward, done, info, info); official: (obs, reward, done, info)
            obs, reward, done, info = out[0], out[1], out[2], out[-1]
        self.t += 1
        return np.asarray(obs, dtype=np.int32), float(reward), bool(done), info


def make_cyborg_env(
    red: str = "b_line",
    green: str = "sleep",
    max_steps: int = 100,
    seed: int | None = None,
    backend: str = "auto",
) -> CyborgEnv:
    """Build the reference env.

    Args:
        red: ``"b_line"``, ``"meander"`` or ``"sleep"`` (B_lineAgent, RedMeanderAgent, SleepAgent).
        green: ``"sleep"`` (the evaluation default: the scenario's SleepAgent) or ``"random"``
            (CybORG's ``GreenAgent``).
        max_steps: ``done`` becomes True after this many steps (ChallengeWrapper ``max_steps``).
        seed: seed for the first ``reset()`` that is not given one.
        backend: ``"auto"``, ``"csle"``, ``"official"`` or ``"debugged"`` (CybORG++).

    Raises:
        ReferenceNotInstalled: CybORG is not importable (the message gives the install commands).
    """
    return CyborgEnv(load_backend(backend), red=red, green=green, max_steps=max_steps, seed=seed)
