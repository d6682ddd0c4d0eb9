"""What a device sends back, checked as any input file is before anything reads it.

A device (and whatever Python or runner binary it has) is untrusted: the outputs .npy, the stats JSON and the
`runner.py --runtimes` answer it returns may be anything. Each is checked here against what se_edge asked for:
the outputs a float .npy of exactly the shape of the inputs pushed (N images by the model's classes), its header
read and its size checked before any data is, every value finite; the stats a small JSON object holding every
latency key the reports use as a number >= 0. Every problem is one SeEdgeError line: what came back against
what was expected. benchmark_model's parsed statistics go through the same latency check, where p50/p90/p99 may be
None (older builds compute no median, none computes p90 or p99).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from se_edge.errors import SeEdgeError

LATENCY_KEYS = ("p50", "p90", "p99", "mean", "min", "std", "count")
OPTIONAL_MS = ("load_ms", "first_ms", "peak_rss_mb")  # absent or null where a runner does not measure them
MAX_STATS_BYTES = 1 << 20  # runner.py writes ~0.5 KB, the native runners ~1 KB with the device's facts
MAX_HEADER_BYTES = 1 << 16  # a .npy header of a 2-D array is 128 bytes; numpy itself refuses over 10000
MAX_TEXT = 200  # a version or a CPU name, as it reaches a report


def brief(text: object, limit: int = 120) -> str:
    """`text` on one line, at most `limit` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit - 3] + "..."


def read_outputs(path: str | Path, shape: tuple[int, ...], what: str) -> np.ndarray:
    """The float array in the .npy at `path`, which must have exactly `shape`; SeEdgeError `what: ...` otherwise.

    Read in order, so that nothing larger than that array is ever read: the file's size, its magic and header
    (dtype, shape), the size the header declares, then the data, then whether every value is finite."""
    shape = tuple(int(d) for d in shape)
    expected = f"expected a .npy of finite floats (float32) of shape {shape}"

    def bad(found: str) -> SeEdgeError:
        return SeEdgeError(f"{what}: its outputs {found}; {expected}")

    path = Path(path)
    size = path.stat().st_size
    most = MAX_HEADER_BYTES + math.prod(shape) * 8
    if size > most:
        raise bad(f"are {size} bytes, more than any float .npy of that shape ({most} at most)")
    with open(path, "rb") as f:
        start = f.read(6)
        f.seek(0)
        try:
            version = np.lib.format.read_magic(f)
        except ValueError:
            raise bad(f"are not a .npy file (they begin {start!r})") from None
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            raise bad(f"are a .npy of version {version[0]}.{version[1]}, which se_edge does not read (1.0 or 2.0)")
        try:
            found_shape, fortran, dtype = readers[version](f, max_header_size=MAX_HEADER_BYTES)
        except Exception as e:  # numpy's parser of the header's text fails in more ways than ValueError
            detail = e.args[0] if e.args and isinstance(e.args[0], str) else type(e).__name__
            raise bad(f"have an unreadable .npy header ({brief(detail)})") from None
        if dtype.hasobject or dtype.kind != "f" or dtype.itemsize not in (2, 4, 8):
            raise bad(f"have dtype {brief(dtype, 60)}, not a float dtype")
        if tuple(found_shape) != shape:
            raise bad(f"have shape {brief(tuple(found_shape), 60)}")
        declared = f.tell() + math.prod(shape) * dtype.itemsize
        if size != declared:
            raise bad(f"are {size} bytes where their header declares {declared} ({dtype} of shape {shape})")
        f.seek(0)
        try:
            array = np.load(f, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise bad(f"cannot be read ({brief(e)})") from None
    if array.shape != shape or array.dtype != dtype:  # what the header said, so never; but never trusted either
        raise bad(f"read as {array.dtype} of shape {array.shape}")
    if not (finite := np.isfinite(array)).all():
        raise bad(f"hold {int(array.size - finite.sum())} non-finite value(s) (NaN or inf)")
    return array


def read_stats(path: str | Path, what: str) -> dict:
    """The stats JSON a runner wrote (runner.py's keys), checked: `check_stats`."""
    return check_stats(read_json(path, what, "stats JSON", MAX_STATS_BYTES, STATS_EXPECTED), what)


def read_json(path: str | Path, what: str, kind: str, max_bytes: int, expected: str) -> object:
    """The JSON value in the file at `path`, read only when the file is at most `max_bytes`; SeEdgeError
    `what: its KIND ...; EXPECTED` where it is larger or not JSON."""
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise SeEdgeError(f"{what}: its {kind} is {size} bytes, more than the {max_bytes} a runner writes; {expected}")
    with open(path, "rb") as f:
        raw = f.read(max_bytes + 1)
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise SeEdgeError(f"{what}: its {kind} is not valid JSON ({brief(e)}); {expected}") from None


STATS_EXPECTED = (f"expected a JSON object with {', '.join(k for k in LATENCY_KEYS if k != 'count')} (ms: numbers >= 0, "
                  "p90 and p99 may be null), count and threads (whole numbers >= 1), as runner.py writes")


def check_stats(stats: object, what: str) -> dict:
    """A runner's stats object: every latency key a number >= 0 (p90/p99 may be null), count and threads whole
    numbers >= 1, load_ms/first_ms/peak_rss_mb absent, null or numbers >= 0, runtime_version absent, null or a
    short string, device (the native runners' facts) checked where it is an object."""
    if not isinstance(stats, dict):
        raise SeEdgeError(f"{what}: its stats JSON is {_kind(stats)}, not an object; {STATS_EXPECTED}")
    problem = (latency_problem(stats, optional=("p90", "p99")) or _count_problem(stats, "threads")
               or next((p for k in OPTIONAL_MS if (p := _number_problem(stats, k, optional=True))), None)
               or _text_problem(stats, "runtime_version"))
    if problem:
        raise SeEdgeError(f"{what}: its stats JSON {problem}; {STATS_EXPECTED}")
    if isinstance(stats.get("device"), dict):
        stats["device"] = check_device_facts(stats["device"], f"{what}: its stats JSON's device")
    return stats


def latency_problem(stats: dict, optional: tuple[str, ...] = ()) -> str | None:
    """What is wrong with the latency keys of `stats` ('has no p90', 'has p90 = -1.0'); None where nothing is.
    Keys in `optional` may be None (not measured)."""
    for key in LATENCY_KEYS:
        problem = (_count_problem(stats, key) if key == "count" else
                   _number_problem(stats, key, optional=key in optional, required=True))
        if problem:
            return problem
    return None


def check_latency(stats: dict, what: str, optional: tuple[str, ...] = ()) -> dict:
    if problem := latency_problem(stats, optional):
        raise SeEdgeError(f"{what} {problem}; expected {', '.join(LATENCY_KEYS)} as numbers >= 0")
    return stats


FACTS = ("machine", "system", "cpu_model", "cores", "int8_features", "fp16_features", "load_average")


def check_device_facts(facts: dict, what: str) -> dict:
    """The facts a runner reports about the machine (runner.device_info's keys), checked as the reports read them;
    returns those keys alone (anything else a device adds goes nowhere)."""
    for key in ("machine", "system", "cpu_model"):
        if (problem := _text_problem(facts, key)) is not None:
            raise SeEdgeError(f"{what} {problem}")
    cores = facts.get("cores")
    if cores is not None and (not _is_int(cores) or cores < 1):
        raise SeEdgeError(f"{what} has cores = {_shown(cores)}; expected a whole number >= 1 or null")
    for key in ("int8_features", "fp16_features"):
        features = facts.get(key)
        if features is not None and (not isinstance(features, list) or len(features) > 64
                                     or not all(isinstance(f, str) and len(f) <= 32 for f in features)):
            raise SeEdgeError(f"{what} has {key} = {_shown(features)}; expected a list of feature names or null")
    load = facts.get("load_average")
    if load is not None and (not isinstance(load, list) or len(load) > 3
                             or not all(v is None or (_is_number(v) and _finite(v)) for v in load)):
        raise SeEdgeError(f"{what} has load_average = {_shown(load)}; expected a list of up to 3 numbers or null")
    return {k: facts[k] for k in FACTS if k in facts}


def check_runtimes(info: object) -> str | None:
    """What is wrong with a `runner.py --runtimes` answer (None where nothing is): an object whose litert and
    executorch are null or {"module": name, "version": text or null}, device_info an object where present (cut
    down to the facts the reports read)."""
    if not isinstance(info, dict):
        return f"is {_kind(info)}, not an object"
    for key in ("litert", "executorch"):
        entry = info.get(key)
        if entry is None:
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("module"), str) or not entry["module"] \
                or len(entry["module"]) > MAX_TEXT or _text_problem(entry, "version"):
            return f"has {key} = {_shown(entry)}, not null or {{\"module\": NAME, \"version\": VERSION}}"
    facts = info.get("device_info")
    if facts is not None:
        if not isinstance(facts, dict):
            return f"has device_info = {_shown(facts)}, not an object"
        try:
            info["device_info"] = check_device_facts(facts, "has device_info, which")
        except SeEdgeError as e:
            return str(e)
    return None


def _number_problem(d: dict, key: str, optional: bool = False, required: bool = False) -> str | None:
    if key not in d:
        return f"has no {key}" if required else None
    v = d[key]
    if v is None and optional:
        return None
    if not _is_number(v):
        return f"has {key} = {_shown(v)} ({_kind(v)}), not a number"
    if not _finite(v) or v < 0:
        return f"has {key} = {_shown(v)}"
    return None


def _count_problem(d: dict, key: str) -> str | None:
    if key not in d:
        return f"has no {key}"
    v = d[key]
    if not _is_int(v) or v < 1:
        return f"has {key} = {_shown(v)}, not a whole number >= 1"
    return None


def _text_problem(d: dict, key: str) -> str | None:
    v = d.get(key)
    if v is None or (isinstance(v, str) and len(v) <= MAX_TEXT and v.isprintable()):
        return None
    return f"has {key} = {_shown(v)}, not a line of text (at most {MAX_TEXT} characters) or null"


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite(v: int | float) -> bool:
    """A finite number a report can format as a float (an integer past float's range is not)."""
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _kind(v: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(v), type(v).__name__)


def _shown(v: object) -> str:
    """A value from a device, as a message shows it: JSON, on one line, short."""
    try:
        text = json.dumps(v, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        text = repr(v)
    return brief(text, 60)
