"""Shared helpers for the benchmark scripts: machine/version record, timing, memory, output, CybORG.

Every benchmark script prints a table and writes one JSON document built from these pieces:

* ``environment_info()``: versions (Python, jax, jaxlib, numpy, jaxcage), ``jax.devices()``, device
  kind, CPU count, load average and git commit, so a number can always be traced to a machine.
* ``measure_program(prepare, repeats)``: ahead-of-time compile (timed on its own), a memory check
  (``fits_in_memory`` of ``memory_analysis_dict``: XLA's own estimate against the free device
  memory, so oversized batches are skipped before they allocate), one warm-up execution, then
  ``repeats`` timed executions with ``jax.block_until_ready`` around each.
* ``cyborg_steps_per_second(...)``: CybORG's single-process stepping rate (csle-cyborg,
  ``ChallengeWrapper``, random Blue) for a fixed wall-clock budget; ``add_cyborg_arguments``,
  ``measure_cyborg``, ``bracket_cyborg`` (before and after the jaxcage timings),
  ``attach_cyborg_ratios`` and ``cyborg_line`` wrap it for the scripts that report a ratio against
  CybORG measured in the same run.
* ``write_json`` / ``format_table``.

Never forces a device: whatever ``jax.devices()`` returns is used and recorded.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

import jaxcage

REPO_ROOT = Path(__file__).resolve().parent.parent

# Share of the free device memory a benchmark program may plan to use (XLA's estimate is not exact).
MEMORY_HEADROOM = 0.8


# --------------------------------------------------------------------------------------------------
# Machine and versions
# --------------------------------------------------------------------------------------------------


def _git_commit() -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(dirty)}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment_info() -> dict[str, Any]:
    """Versions, devices and machine facts to store next to every measurement."""
    devices = jax.devices()
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "timestamp_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "jax": jax.__version__,
        "jaxlib": importlib.metadata.version("jaxlib"),
        "numpy": np.__version__,
        "jaxcage": jaxcage.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in devices],
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(affinity) if affinity is not None else None,
        "memory_total_bytes": _meminfo("MemTotal"),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "git": _git_commit(),
        "argv": sys.argv,
    }


# --------------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------------


def _meminfo(field_name: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def free_device_memory() -> int | None:
    """Bytes free on the default device (host RAM for CPU), or ``None`` if unknown."""
    device = jax.devices()[0]
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    available = _meminfo("MemAvailable")
    if available is not None:
        return available
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def fits_in_memory(memory: dict[str, int] | None, extra_bytes: int = 0) -> tuple[bool, str]:
    """Whether a program (``memory_analysis_dict`` of it, plus ``extra_bytes`` held outside it)
    fits in free memory.

    Returns ``(fits, note)``. Unknown sizes count as fitting (the run itself then decides).
    """
    need = None if memory is None else memory["total"]
    free = free_device_memory()
    if need is None or free is None:
        return True, "memory not checked (no estimate available)"
    need += extra_bytes
    if need > MEMORY_HEADROOM * free:
        return False, (
            f"needs ~{format_bytes(need)}, more than {MEMORY_HEADROOM:.0%} of the "
            f"{format_bytes(free)} free on {jax.devices()[0].device_kind}"
        )
    return True, f"needs ~{format_bytes(need)} of {format_bytes(free)} free"


def format_bytes(n: float) -> str:
    """``3.5 * 2**20 -> '3.5 MiB'``."""
    for power, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
        if n >= 2**power:
            return f"{n / 2**power:.1f} {unit}"
    return f"{int(n)} B"


def is_out_of_memory(err: BaseException) -> bool:
    """Whether an exception raised by XLA or NumPy is an allocation failure."""
    text = f"{type(err).__name__}: {err}"
    return isinstance(err, MemoryError) or any(
        marker in text for marker in ("RESOURCE_EXHAUSTED", "Out of memory", "out of memory")
    )


# --------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------


@dataclass
class Timing:
    """Wall-clock timings of one jitted program, in seconds."""

    compile_s: float  # jit(fn).lower(*args).compile(): tracing + XLA compilation
    first_run_s: float  # first execution of the compiled program (allocation, warm caches)
    times_s: list[float] = field(default_factory=list)  # steady-state executions

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)

    @property
    def min_s(self) -> float:
        return min(self.times_s)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["median_s"] = self.median_s
        out["min_s"] = self.min_s
        return out


def compile_ahead(jitted: Any, *args: Any) -> tuple[Any, float]:
    """Compile ``jitted`` for ``args`` ahead of time; returns ``(compiled, seconds)``."""
    start = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    return compiled, time.perf_counter() - start


def time_compiled(
    compiled: Any,
    args: tuple[Any, ...],
    repeats: int,
    carry: Callable[[Any, tuple[Any, ...]], tuple[Any, ...]] | None = None,
) -> tuple[float, list[float], Any, tuple[Any, ...]]:
    """One warm-up execution, then ``repeats`` timed ones, each closed by ``block_until_ready``.

    Args:
        compiled: an AOT-compiled program.
        args: its first arguments.
        repeats: number of timed executions (>= 1).
        carry: ``(outputs, args) -> next args``, for programs whose outputs feed the next call
            (e.g. a donated environment state); by default the same ``args`` are reused.

    Returns:
        ``(first_run_s, times_s, last_outputs, next_args)``.
    """
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    first = time.perf_counter() - start
    if carry is not None:
        args = carry(out, args)
    times: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
        if carry is not None:
            args = carry(out, args)
    return first, times, out, args


def measure_program(
    prepare: Callable[[], tuple[Any, tuple[Any, ...], dict[str, Any]]],
    repeats: int,
    carry: Callable[[Any, tuple[Any, ...]], tuple[Any, ...]] | None = None,
) -> tuple[dict[str, Any], Any, tuple[Any, tuple[Any, ...]] | None]:
    """Build, compile, memory-check, warm up and time one program; an oversized one is skipped.

    Args:
        prepare: ``() -> (jitted, call_args, facts)``: builds the inputs (which may itself run out
            of memory) and returns the jitted program, its arguments and facts for the record.
        repeats, carry: as for ``time_compiled``.

    Returns:
        ``(record, last_outputs, (compiled, next_args))``; ``record["status"]`` is ``"ok"`` (with
        the ``Timing`` fields) or ``"skipped"`` (with a ``note``, and no outputs or handle).
    """
    record: dict[str, Any] = {}
    try:
        jitted, call_args, facts = prepare()
        record.update(facts)
        compiled, compile_s = compile_ahead(jitted, *call_args)
        record["memory"] = memory_analysis_dict(compiled)
        fits, note = fits_in_memory(record["memory"])
        record["memory_note"] = note
        if not fits:
            record.update(status="skipped", note=note, compile_s=compile_s)
            return record, None, None
        first_s, times, out, next_args = time_compiled(compiled, call_args, repeats, carry=carry)
    except Exception as err:  # an oversized batch must not end the benchmark; others re-raise
        if not is_out_of_memory(err):
            raise
        record.update(status="skipped", note=f"out of memory: {str(err).splitlines()[0][:200]}")
        return record, None, None
    timing = Timing(compile_s=compile_s, first_run_s=first_s, times_s=times)
    record.update(status="ok", **timing.to_dict())
    return record, out, (compiled, next_args)


# --------------------------------------------------------------------------------------------------
# CybORG reference rate
# --------------------------------------------------------------------------------------------------


def _cyborg_env(red: str, max_steps: int, seed: int) -> tuple[Any, Any, str]:
    """``(reset, step, source)`` for the CybORG reference; ``step(a)`` returns obs, reward, done.

    Raises ``ImportError`` (``ReferenceNotInstalled``) when no CybORG is installed.
    """
    from jaxcage.reference.cyborg_env import make_cyborg_env

    env = make_cyborg_env(red=red, green="sleep", max_steps=max_steps, seed=seed)
    return env.reset, (lambda a: env.step(a)[:3]), f"jaxcage.reference ({env.backend.name})"


def cyborg_steps_per_second(
    seconds: float, red: str = "b_line", max_steps: int = 100, seed: int = 0
) -> dict[str, Any]:
    """CybORG's single-process stepping rate with uniformly random Blue actions.

    Steps for ``seconds`` of wall time (checked every step), resetting at the end of each
    ``max_steps`` episode; reset time is included, as jaxcage's auto-reset is in its rate.

    Returns:
        A JSON-ready dict: ``status`` (``"ok"``, or ``"unavailable"`` with a ``note``), ``steps``,
        ``seconds``, ``steps_per_s``, ``episodes``, ``setup_s``, ``source``.
    """
    start = time.perf_counter()
    try:
        reset, step, source = _cyborg_env(red, max_steps, seed)
    except ImportError as err:
        return {"status": "unavailable", "note": f"CybORG not importable: {err}"}
    rng = np.random.default_rng(seed)
    reset()
    setup_s = time.perf_counter() - start
    steps = episodes = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        _, _, done = step(int(rng.integers(0, jaxcage.CageEnv.num_actions)))
        steps += 1
        if done:
            episodes += 1
            reset()
        if time.perf_counter() >= deadline:
            break
    elapsed = time.perf_counter() - start
    return {
        "status": "ok",
        "source": source,
        "red_agent": red,
        "steps": steps,
        "episodes": episodes,
        "seconds": elapsed,
        "steps_per_s": steps / elapsed,
        "setup_s": setup_s,
    }


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def add_cyborg_arguments(parser: argparse.ArgumentParser) -> None:
    """``--cyborg-seconds``, ``--no-cyborg`` and ``--out``, shared by the CybORG-ratio scripts."""
    parser.add_argument(
        "--cyborg-seconds",
        type=_positive_seconds,
        default=20.0,
        help="wall-clock budget for CybORG's rate (default: 20)",
    )
    parser.add_argument("--no-cyborg", action="store_true", help="skip the CybORG measurement")
    parser.add_argument("--out", help="write the JSON here (default: print it after the table)")


def measure_cyborg(
    args: argparse.Namespace, red: str = "b_line", max_steps: int = 100, share: float = 1.0
) -> dict:
    """CybORG's rate for ``share`` of ``--cyborg-seconds`` (``cyborg_steps_per_second``), or a
    ``skipped`` record with ``--no-cyborg``."""
    if args.no_cyborg:
        return {"status": "skipped", "note": "--no-cyborg"}
    seconds = args.cyborg_seconds * share
    log(f"CybORG ({red}, random Blue) for {seconds:g} s ...")
    cyborg = cyborg_steps_per_second(seconds, red=red, max_steps=max_steps)
    if cyborg["status"] == "ok":
        log(f"  {cyborg['steps_per_s']:.1f} steps/s")
    return cyborg


def bracket_cyborg(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """One CybORG record from measurements taken before and after the jaxcage cases.

    This VM's speed drifts (up to ~30% within an hour), so CybORG is measured on both sides of
    the jaxcage timings and the ratios use the pooled rate (all steps / all seconds); the two
    rates are kept (``steps_per_s_before`` / ``_after``) to show how much the machine drifted.
    """
    ok = [r for r in (before, after) if r["status"] == "ok"]
    if not ok:
        return before
    steps = sum(r["steps"] for r in ok)
    seconds = sum(r["seconds"] for r in ok)
    return {
        **ok[0],
        "steps": steps,
        "episodes": sum(r["episodes"] for r in ok),
        "seconds": seconds,
        "steps_per_s": steps / seconds,
        "steps_per_s_before": before.get("steps_per_s"),
        "steps_per_s_after": after.get("steps_per_s"),
    }


def attach_cyborg_ratios(records: list[dict[str, Any]], cyborg: dict[str, Any]) -> None:
    """Give every measured record its ``ratio_vs_cyborg`` (same-run rates), in place."""
    cyborg_sps = cyborg.get("steps_per_s")
    for record in records:
        if record["status"] == "ok" and cyborg_sps:
            record["ratio_vs_cyborg"] = record["steps_per_s"] / cyborg_sps


def fastest(records: list[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any] | None:
    """``keys`` (plus rate and ratio) of the measured record with the most steps/s, if any."""
    ok = [r for r in records if r["status"] == "ok"]
    if not ok:
        return None
    best = max(ok, key=lambda r: r["steps_per_s"])
    return {
        **{k: best[k] for k in keys},
        "steps_per_s": best["steps_per_s"],
        "ratio_vs_cyborg": best.get("ratio_vs_cyborg"),
    }


def cyborg_line(cyborg: dict[str, Any], what: str = "CybORG") -> str:
    """One summary line for a ``measure_cyborg`` record."""
    if cyborg["status"] != "ok":
        return f"CybORG: {cyborg['status']} ({cyborg.get('note', '')})"
    line = (
        f"{what} ({cyborg['source']}): {cyborg['steps_per_s']:.1f} steps/s "
        f"({cyborg['steps']} steps in {cyborg['seconds']:.1f} s)"
    )
    if cyborg.get("steps_per_s_before") and cyborg.get("steps_per_s_after"):
        line += (
            f"; {cyborg['steps_per_s_before']:.1f} before and "
            f"{cyborg['steps_per_s_after']:.1f} after the jaxcage timings"
        )
    return line


def result_header(benchmark: str, args: argparse.Namespace, environment: dict) -> dict[str, Any]:
    """The first keys of every benchmark's JSON: name, arguments, machine at start and at end."""
    return {
        "benchmark": benchmark,
        "config": dict(vars(args)),
        "environment": environment,
        "load_average_end": environment_info()["load_average"],
    }


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    return value


def log(message: str) -> None:
    """Progress to stderr (stdout carries the table and, without --out, the JSON)."""
    print(message, file=sys.stderr, flush=True)


def format_load(load_average: list[float] | None) -> str:
    """``os.getloadavg()`` as recorded in ``environment_info``, for table headers."""
    return "-" if load_average is None else " ".join(f"{x:.2f}" for x in load_average)


def publish(table: str, result: dict[str, Any], out: str | None) -> None:
    """Print the table; write the JSON to ``out``, or print it when there is no ``out``."""
    print(table)
    text = write_json(out, result)
    if out is None:
        print(text)
    else:
        log(f"wrote {out}")


def write_json(path: str | os.PathLike[str] | None, payload: dict[str, Any]) -> str:
    """Serialise ``payload`` (NumPy scalars and non-finite floats handled); write it if ``path``.

    Returns the JSON text.
    """
    text = json.dumps(_jsonable(payload), indent=2)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")
    return text


def format_si(value: float | None, digits: int = 3) -> str:
    """``1234567 -> '1.23M'``; ``None -> '-'``."""
    if value is None or not math.isfinite(value):
        return "-"
    for threshold, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:.{digits}g}{suffix}"
    return f"{value:.{digits}g}"


def format_table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain right-aligned text table."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Helpers added for the training benchmarks (bench_train, time_to_score, bench_scaling)
# --------------------------------------------------------------------------------------------------


def memory_analysis_dict(compiled: Any) -> dict[str, int] | None:
    """XLA's memory analysis of a compiled program as a dict of byte counts, or ``None``.

    Keys: ``argument``, ``output``, ``temp``, ``alias``, ``generated_code`` and ``total``
    (arguments + outputs + temporaries - aliased buffers: what ``fits_in_memory`` checks).
    """
    try:
        analysis = compiled.memory_analysis()
    except (AttributeError, NotImplementedError, RuntimeError):
        return None
    if analysis is None:
        return None
    out = {
        "argument": int(analysis.argument_size_in_bytes),
        "output": int(analysis.output_size_in_bytes),
        "temp": int(analysis.temp_size_in_bytes),
        "alias": int(getattr(analysis, "alias_size_in_bytes", 0)),
        "generated_code": int(getattr(analysis, "generated_code_size_in_bytes", 0)),
    }
    out["total"] = out["argument"] + out["output"] + out["temp"] - out["alias"]
    return out


def rss_bytes() -> dict[str, int | None]:
    """This process's resident memory now (``current``) and its peak so far (``peak``), bytes."""
    current = peak = None
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return {"current": current, "peak": peak}


def device_memory_stats() -> dict[str, int] | None:
    """The default device's allocator statistics (GPU: bytes in use / peak / limit), if any."""
    device = jax.devices()[0]
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if not stats:
        return None
    keys = ("bytes_in_use", "peak_bytes_in_use", "bytes_limit")
    return {k: int(stats[k]) for k in keys if k in stats}


def cpu_cache_info() -> dict[str, str]:
    """L1d/L2/L3 sizes as ``lscpu`` prints them (empty where unavailable)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("L1d cache", "L2 cache", "L3 cache"):
            out[name.strip()] = value.strip()
    return out


def machine_is_quiet(max_load: float = 0.7) -> bool:
    """Whether the 1-minute load average is below ``max_load`` (True where unknown)."""
    if not hasattr(os, "getloadavg"):
        return True
    return os.getloadavg()[0] < max_load


# Op-name patterns of XLA:CPU thunks (as the profiler names them) -> category, first match wins.
_TRACE_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("wait (client thread)", ("wait for completion",)),
    ("matmul (ynn/xnn/onednn/dot)", ("ynn", "xnn", "onednn", "dot", "convolution")),
    ("sort", ("sort",)),
    ("gather / scatter / dynamic-slice", ("gather", "scatter", "dynamic-slice", "dynamic_slice")),
    ("copy / transpose", ("copy", "transpose")),
    ("reductions", ("reduce",)),
    ("runtime (thunk executor, loops)", ("ThunkExecutor", "while", "conditional", "call")),
    ("elementwise fusions", ("fusion", "wrapped", "broadcast", "concatenate", "select")),
)


def summarize_trace(directory: str | os.PathLike[str], top: int = 15) -> dict[str, Any] | None:
    """A compact reading of a ``jax.profiler.trace`` directory (XLA:CPU or GPU).

    Self time (an event's duration minus that of the events nested in it on the same thread) is
    summed per op name (numeric suffixes dropped) and per category; for the CPU worker threads it
    also gives how long each was busy and how long two or more were busy at once (how much the
    program runs in parallel). Returns ``None`` if no trace file is found.
    """
    files = sorted(Path(directory).glob("**/*.xplane.pb"))
    if not files:
        return None
    data = jax.profiler.ProfileData.from_file(str(files[-1]))
    by_op: dict[str, float] = {}
    calls: dict[str, int] = {}
    busy: dict[str, list[list[int]]] = {}
    for plane in data.planes:
        for line in plane.lines:
            if line.name == "python" or plane.name.endswith("metadata"):
                continue
            events = sorted(
                ((e.start_ns, e.duration_ns, e.name) for e in line.events),
                key=lambda x: (x[0], -x[1]),
            )
            stack: list[tuple[float, int]] = []
            selfs: list[list[Any]] = []
            for start, duration, name in events:
                while stack and stack[-1][0] <= start:
                    stack.pop()
                if stack:
                    selfs[stack[-1][1]][1] -= duration
                selfs.append([name, duration])
                stack.append((start + duration, len(selfs) - 1))
            for name, self_ns in selfs:
                key = name.rsplit(".", 1)[0] if name.rsplit(".", 1)[-1].isdigit() else name
                by_op[key] = by_op.get(key, 0.0) + self_ns
                calls[key] = calls.get(key, 0) + 1
            if "Eigen" in line.name or plane.name.startswith("/device"):
                merged: list[list[int]] = []
                for start, duration, _ in events:
                    if duration <= 0:
                        continue
                    end = int(start + duration)
                    if merged and start <= merged[-1][1]:
                        merged[-1][1] = max(merged[-1][1], end)
                    else:
                        merged.append([int(start), end])
                busy[f"{plane.name}:{line.name}"] = merged
    categories: dict[str, float] = {}
    for op, ns in by_op.items():
        cat = next(
            (c for c, pats in _TRACE_CATEGORIES if any(p.lower() in op.lower() for p in pats)),
            "other",
        )
        categories[cat] = categories.get(cat, 0.0) + ns
    work = sum(ns for c, ns in categories.items() if c != "wait (client thread)")
    # Concurrency of the worker threads: a sweep over their busy intervals.
    edges = sorted(
        [(s, 1) for iv in busy.values() for s, _ in iv]
        + [(e, -1) for iv in busy.values() for _, e in iv]
    )
    level = 0
    last = None
    by_level: dict[int, int] = {}
    for t, d in edges:
        if last is not None and level > 0:
            by_level[level] = by_level.get(level, 0) + t - last
        level += d
        last = t
    span = (edges[-1][0] - edges[0][0]) if edges else 0
    return {
        "trace_file": str(files[-1]),
        "worker_threads": len(busy),
        "span_s": span / 1e9,
        "busy_s_per_thread": sorted(
            (sum(e - s for s, e in iv) / 1e9 for iv in busy.values()), reverse=True
        ),
        "seconds_with_k_threads_busy": {str(k): v / 1e9 for k, v in sorted(by_level.items())},
        "work_s": work / 1e9,
        "categories_s": {k: v / 1e9 for k, v in sorted(categories.items(), key=lambda kv: -kv[1])},
        "top_ops": [
            {
                "op": op,
                "self_s": ns / 1e9,
                "calls": calls[op],
                "share_of_work": ns / work if work else None,
            }
            for op, ns in sorted(by_op.items(), key=lambda kv: -kv[1])
            if "wait for completion" not in op
        ][:top],
    }
