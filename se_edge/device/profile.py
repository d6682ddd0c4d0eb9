"""Per-op profiles: where a file's time goes in its runtime, op by op, and the SE blocks' share of it.

    ExecuTorch  ETDump, the runtime's event tracer, over N executions: XNNPACK's delegate reports each of its
                operators ("Convolution (NHWC, QC8) IGEMM #3", timed by XNNPACK), beside DELEGATE_CALL and
                Method::execute. In this process through ExecuTorch's Python runtime, or on a device from the
                native pte_runner's --etdump file.
    LiteRT      LiteRT's profiler through the native tflite_runner's --profile (its Python interpreter has no
                profiler): the interpreter's ops, and each of the XNNPACK delegate's operators (XNNPACK times
                them in whole microseconds, truncated; the delegate's node has no event of its own, the
                interpreter's Invoke spans it).

Neither runtime says which layer of the model an XNNPACK operator came from: the operators come in the order they
run. The SE blocks are found in that order by their shape, squeeze (a mean or an average pool) -> excitation (fully
connected layers or convolutions) -> gate (element-wise ops) -> scale (the multiply that ends that element-wise
run), and named by the model's SE modules in the order they run (`se_module_names`). Where the count found differs
from the model's, the summary says so (`se.found` beside `se.expected`) rather than naming them by guess.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

# op kinds, from XNNPACK's operator names (both runtimes' delegates) and TFLite's builtin op names
_KINDS = (
    ("conv", ("Convolution", "Deconvolution", "CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV")),
    ("fc", ("Fully Connected", "FULLY_CONNECTED", "Batch Matrix Multiply", "BATCH_MATMUL")),
    ("squeeze", ("Mean", "MEAN", "Global Average Pooling", "Global Sum Pooling", "Average Pooling", "AVERAGE_POOL_2D",
                 "SUM")),
    ("multiply", ("Multiply", "MUL")),
    ("elementwise", ("Add", "ADD", "Subtract", "SUB", "Clamp", "RELU", "RELU6", "RELU_0_TO_1", "RELU_N1_TO_1",
                     "Sigmoid", "LOGISTIC", "HardSwish", "HARD_SWISH", "Minimum", "MINIMUM", "Maximum", "MAXIMUM",
                     "Divide", "DIV", "Leaky ReLU", "LEAKY_RELU", "Hardswish", "Square", "Copy",
                     # XNNPACK's name for a unary operator it has no name for: here the clamp of a written-out
                     # hard-swish (one per hard-swish of SE-MobileNetV3, in both runtimes' profiles)
                     "Invalid Unary Op")),
    ("layout", ("Transpose", "TRANSPOSE", "Convert", "QUANTIZE", "DEQUANTIZE", "Static Reshape", "RESHAPE",
                "Reshape", "Copy", "Constant Pad", "PAD", "Expand Dims", "SQUEEZE", "Concatenate", "CONCATENATION",
                "Slice", "SLICE", "STRIDED_SLICE",
                # ExecuTorch's own kernels (ops left outside the delegate), as _etdump_profile names them
                "_to_dim_order_copy", "_clone_dim_order", "quantize_per_tensor", "dequantize_per_tensor",
                "quantize_per_channel", "dequantize_per_channel", "permute_copy", "view_copy", "expand_copy")),
    ("pool", ("Max Pooling", "MAX_POOL_2D", "Argmax Pooling")),
    ("softmax", ("Softmax", "SOFTMAX")),
)
ROLES = ("squeeze", "excitation", "gate", "scale")
MAX_ETDUMP_BYTES = 256 << 20
MAX_EVENTS = 1_000_000


def op_kind(name: str) -> str:
    """The kind of op `name` names: conv, fc, squeeze, multiply, elementwise, layout, pool, softmax or other."""
    base = re.sub(r"\s*#\d+$", "", name).strip()
    for kind, prefixes in _KINDS:
        for prefix in prefixes:
            if base == prefix or base.startswith(prefix + " ") or base.startswith(prefix + "("):
                return kind
    return "other"


def se_spans(ops: list[dict]) -> list[dict[str, list[int]]]:
    """The SE blocks in `ops` (dicts with "name", in execution order): one `{role: [op indices]}` per block found.

    A block is a squeeze op, then (after layout ops only) the excitation's two layers, fully connected or
    convolutions, with only element-wise and layout ops between them (the inner activation), then an element-wise
    run whose last multiply is the scale; the ops between the second layer and the scale are the gate. A residual
    add after the scale is not the block's; a head's pooling followed by one layer and its activation (a
    MobileNetV3 head's written-out hard-swish ends in a multiply too) is not a block: it has one layer, not two."""
    kinds = [op_kind(op["name"]) for op in ops]
    linear, between = ("fc", "conv"), ("elementwise", "multiply", "layout")
    spans, i = [], 0
    while i < len(ops):
        if kinds[i] != "squeeze":
            i += 1
            continue
        a = i + 1
        while a < len(ops) and kinds[a] == "layout":
            a += 1
        b = a + 1
        while b < len(ops) and kinds[b] in between:
            b += 1
        end = b + 1
        while end < len(ops) and kinds[end] in between:
            end += 1
        scales = [j for j in range(b + 1, min(end, len(ops))) if kinds[j] == "multiply"]
        if a >= len(ops) or kinds[a] not in linear or b >= len(ops) or kinds[b] not in linear or not scales:
            i += 1
            continue
        spans.append({"squeeze": [i], "excitation": list(range(i + 1, b + 1)), "gate": list(range(b + 1, scales[-1])),
                      "scale": [scales[-1]]})
        i = scales[-1] + 1
    return spans


def se_module_names(model) -> list[str]:
    """The names of `model`'s SE modules (se_edge's SqueezeExcite and the classic SE forms the rewrite knows), in
    the order a forward pass runs them."""
    import torch

    from se_edge.blocks.se import SqueezeExcite

    order: list[str] = []
    named = {m: n for n, m in model.named_modules() if isinstance(m, SqueezeExcite)}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: order.append(n)) for m, n in named.items()]
    try:
        first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        with torch.no_grad():
            model.eval()(torch.zeros(1, first.in_channels, 64, 64))
    finally:
        for h in hooks:
            h.remove()
    return order


def summarize_profile(profile: dict, se_names: list[str] | None = None) -> dict:
    """`profile` ({"runtime", "runs", "ops": [{"name", "ms"}], "total_ms", ...}) with each op's kind and SE role,
    the time per op kind, the sum of the ops against the whole run's time, and the SE blocks' share: per block
    (squeeze, excitation, gate, scale) and in total."""
    ops = [{**op, "kind": op_kind(op["name"]), "se": None, "role": None} for op in profile["ops"]]
    spans = se_spans(ops)
    named = se_names is not None and len(se_names) == len(spans)
    blocks = []
    for k, span in enumerate(spans):
        name = se_names[k] if named else f"SE #{k + 1}"
        row = {"name": name}
        for role in ROLES:
            for j in span[role]:
                ops[j]["se"], ops[j]["role"] = name, role
            row[f"{role}_ms"] = sum(ops[j]["ms"] for j in span[role])
        row["ms"] = sum(row[f"{r}_ms"] for r in ROLES)
        row["ops"] = sum(len(span[r]) for r in ROLES)
        blocks.append(row)
    op_sum = sum(op["ms"] for op in ops)
    total = profile.get("total_ms") or op_sum
    by_kind: dict[str, dict] = {}
    for op in ops:
        entry = by_kind.setdefault(op["kind"], {"ops": 0, "ms": 0.0})
        entry["ops"] += 1
        entry["ms"] += op["ms"]
    se_ms = sum(b["ms"] for b in blocks)
    se_roles = {f"{r}_ms": sum(b[f"{r}_ms"] for b in blocks) for r in ROLES}
    return {**{k: v for k, v in profile.items() if k != "ops"}, "ops": ops, "ops_ms": op_sum, "total_ms": total,
            "coverage": op_sum / total if total else None,
            "by_kind": dict(sorted(by_kind.items(), key=lambda kv: -kv[1]["ms"])),
            "se": {"found": len(spans), "expected": len(se_names) if se_names is not None else None,
                   "named": named, "blocks": blocks, "ms": se_ms, **se_roles,
                   "share": se_ms / op_sum if op_sum else None}}


# ---- ExecuTorch: ETDump

def read_etdump(path: str | os.PathLike, skip: int = 0) -> dict:
    """The per-op profile in an ETDump file: each op's mean time over the executions after the first `skip` (the
    warm-up), with DELEGATE_CALL's and Method::execute's. The file is untrusted (it may come from a device): its
    size is checked before it is read, and every event's fields before they are used."""
    from se_edge.errors import SeEdgeError

    path = Path(path)
    size = path.stat().st_size
    if size > MAX_ETDUMP_BYTES:
        raise SeEdgeError(f"{path} is {size} bytes, more than an ETDump of a profile holds (at most "
                          f"{MAX_ETDUMP_BYTES >> 20} MiB)")
    from se_edge.quiet import captured_output

    try:
        with captured_output():
            from executorch.devtools.etdump.serialize import deserialize_from_etdump_flatcc

            dump = deserialize_from_etdump_flatcc(path.read_bytes())
    except Exception as e:  # flatc's or the schema's refusal of a file that is not an ETDump
        raise SeEdgeError(f"{path} is not an ETDump file ExecuTorch can read: "
                          f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    runs = [block for block in dump.run_data if block.name == "Execute"][skip:]
    if not runs:
        raise SeEdgeError(f"{path} records no execution after the first {skip} (warm-up); expected one 'Execute' "
                          f"block per run")
    return _etdump_profile([[_event(e, path) for e in block.events if e.profile_event is not None] for block in runs],
                           path)


def _event(event, path) -> tuple[str, int, int]:
    from se_edge.errors import SeEdgeError

    p = event.profile_event
    name = p.delegate_debug_id_str if p.delegate_debug_id_str else p.name
    start, end = p.start_time, p.end_time
    if not (isinstance(name, str) and 0 < len(name) <= 256 and name.isprintable()
            and isinstance(start, int) and isinstance(end, int) and 0 <= start <= end):
        raise SeEdgeError(f"{path}: a profile event with name {str(name)[:60]!r}, start {start!r} and end {end!r}; "
                          f"expected a printable name and times with 0 <= start <= end")
    return name, start, end


def _etdump_profile(runs: list[list[tuple[str, int, int]]], path) -> dict:
    """{"runtime", "runs", "ops": [{"name", "ms", "mean_ms", "count"}], "delegate_ms", "total_ms", "outside"} from
    each run's events (name, start ns, end ns), the ops in their order: the delegate's operators, and the kernels
    ExecuTorch runs itself (ETDump's "native_call_<op>" events, ops left outside the delegate: named
    "<op> (ExecuTorch kernel, outside the delegate) #k"). `ms` is an op's median over the runs (as a p50 is: one slow
    run, another process taking the core, moves a mean but not the median), `total_ms` Method::execute's median.
    `outside` is the time ETDump measured inside Method::execute that no op accounts for, as two medians:
    `delegate_call_ms`, DELEGATE_CALL minus the delegate's operators (XNNPACK's delegate reshapes and sets up its
    whole runtime on every call, xnn_reshape_runtime and xnn_setup_runtime_v2, before it runs an operator), and
    `method_ms`, Method::execute minus its delegate and kernel calls (the method's own instruction loop)."""
    from statistics import median

    from se_edge.errors import SeEdgeError

    if sum(len(r) for r in runs) > MAX_EVENTS:
        raise SeEdgeError(f"{path} holds more than {MAX_EVENTS} profile events")
    framework = {"DELEGATE_CALL", "Method::execute", "OPERATOR_CALL", "Program::load_method", "Method::init"}
    order: list[str] = []
    times: dict[str, list[float]] = {}
    delegate, execute, delegate_out, method_out = [], [], [], []
    for events in runs:
        spans = {n: sum(e - s for name, s, e in events if name == n) / 1e6 for n in framework}
        delegate.append(spans["DELEGATE_CALL"])
        execute.append(spans["Method::execute"])
        per_run: dict[str, float] = {}
        operators = 0.0  # the delegate's
        kernels: dict[str, int] = {}
        for name, start, end in events:
            if name in framework:
                continue
            if name.startswith("native_call_"):  # inside an OPERATOR_CALL: a kernel ExecuTorch runs itself, numbered
                kernel = name[len("native_call_"):].split(".")[0]  # in its order, as XNNPACK numbers its operators
                kernels[kernel] = kernels.get(kernel, 0) + 1
                name = f"{kernel} (ExecuTorch kernel, outside the delegate) #{kernels[kernel]}"
            else:
                operators += (end - start) / 1e6
            if name not in times:
                order.append(name)
                times[name] = []
            per_run[name] = per_run.get(name, 0.0) + (end - start) / 1e6
        for name, ms in per_run.items():
            times[name].append(ms)
        delegate_out.append(max(0.0, spans["DELEGATE_CALL"] - operators))
        method_out.append(max(0.0, spans["Method::execute"] - spans["DELEGATE_CALL"] - spans["OPERATOR_CALL"]))
    n = len(runs)
    ops = [{"name": name, "ms": median(times[name] + [0.0] * (n - len(times[name]))),
            "mean_ms": sum(times[name]) / n, "count": len(times[name]) / n} for name in order]
    return {"runtime": "executorch", "runs": n, "ops": ops, "delegate_ms": median(delegate),
            "total_ms": median(execute) or None,
            "outside": {"delegate_call_ms": median(delegate_out), "method_ms": median(method_out)}}


def profile_pte(path: str | os.PathLike, x1, runs: int = 20, warmup: int = 5, threads: int = 1) -> dict:
    """Profile a .pte in ExecuTorch's Python runtime: `warmup` then `runs` executions of input `x1` traced to an
    ETDump, read back with read_etdump."""
    import tempfile

    import numpy as np

    from se_edge.quiet import captured_output
    from se_edge.runner import RunnerError, _to_layout

    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    import torch
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime, Verification

    try:
        with captured_output():  # the runtime's own log lines too ("Resetting threadpool to 1 threads")
            if hasattr(portable_lib, "_unsafe_reset_threadpool"):
                portable_lib._unsafe_reset_threadpool(threads)
            program = Runtime.get().load_program(str(path), verification=Verification.Minimal, enable_etdump=True,
                                                 debug_buffer_size=0)
            method = program.load_method("forward")
    except (RuntimeError, ValueError) as e:
        raise RunnerError(f"cannot load {path} as an ExecuTorch program: {str(e).splitlines()[0]}") from None
    meta = method.metadata.input_tensor_meta(0)
    shape = tuple(int(d) for d in meta.sizes())
    dtype = np.uint8 if int(meta.dtype()) == 0 else np.float32
    x = [torch.from_numpy(np.ascontiguousarray(_to_layout(np.asarray(x1), shape), dtype=dtype))]
    with captured_output():
        plain = Runtime.get().load_program(str(path), verification=Verification.Minimal).load_method("forward")
    beside = _unprofiled_p50(plain.execute, x, runs, warmup, between=method.execute)
    with tempfile.TemporaryDirectory(prefix="se_edge_etdump_") as tmp:
        etdump = os.path.join(tmp, "profile.etdp")
        program.write_etdump_result_to_file(etdump, os.path.join(tmp, "debug.bin"))
        return {**read_etdump(etdump, skip=warmup), "beside_p50_ms": beside}


def _unprofiled_p50(execute, x, runs: int, warmup: int, between=None) -> float:
    """p50 ms of `execute(x)` (a method loaded without ETDump) over `runs` calls after `warmup`, each followed by
    one untimed `between(x)` (the profiled method): the unprofiled time of the same file, timed in the same process
    interleaved with the profiled runs. On a shared machine whose speed moves by a third from one tenth of a second
    to the next (measured here: 1.25 vs 1.66 ms for the same file, one block of runs after the other), only runs
    taken turn about see the same machine."""
    import time
    from statistics import median

    times = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        execute(x)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
        if between is not None:
            between(x)
    return median(times)


# ---- LiteRT: the native tflite_runner's --profile JSON

def read_litert_profile(path: str | os.PathLike) -> dict:
    """The per-op profile the native tflite_runner wrote with --profile (untrusted: checked field by field)."""
    from se_edge.device.received import read_json
    from se_edge.errors import SeEdgeError

    expected = "expected a JSON object with runs and events, as tflite_runner --profile writes"
    data = read_json(path, f"tflite_runner's profile {path}", "profile JSON", 64 << 20, expected)
    if not isinstance(data, dict):
        raise SeEdgeError(f"{path}: its profile JSON is not an object; {expected}")
    events, runs = data.get("events"), data.get("runs")
    if not isinstance(runs, int) or isinstance(runs, bool) or not 1 <= runs <= 10**6 or not isinstance(events, list) \
            or len(events) > MAX_EVENTS:
        raise SeEdgeError(f"{path}: expected a JSON object with 'runs' (a whole number >= 1) and 'events' (a list of "
                          f"at most {MAX_EVENTS}); found runs={str(runs)[:40]!r} and events of type "
                          f"{type(events).__name__}")
    ops, invoke = [], None
    for e in events:
        if not (isinstance(e, dict) and isinstance(e.get("name"), str) and 0 < len(e["name"]) <= 256
                and e["name"].isprintable() and isinstance(e.get("type"), str)
                and isinstance(e.get("ms"), (int, float)) and not isinstance(e["ms"], bool) and 0 <= e["ms"] < 1e7):
            raise SeEdgeError(f"{path}: an event {str(e)[:80]}; expected {{\"name\": printable text, \"type\": "
                              f"text, \"ms\": a number >= 0, ...}}")
        if e["type"] in ("operator", "delegate_profiled_operator"):  # the interpreter's ops, XNNPACK's operators
            ops.append({"name": e["name"], "ms": float(e["ms"]), "count": e.get("count")})
        elif e["type"] == "default" and e["name"] == "Invoke":  # the whole subgraph, the delegate's node within it
            invoke = float(e["ms"])
    # Invoke minus the ops: the interpreter, the delegate's node around its operators, and the profiler's own cost
    outside = {"invoke_ms": max(0.0, invoke - sum(op["ms"] for op in ops))} if invoke is not None else {}
    return {"runtime": "litert", "runs": runs, "ops": ops, "total_ms": invoke, "outside": outside}


# ---- a run's files

def profile_run(run, names: list[str] | None = None, runs: int = 20, warmup: int = 5, threads: int = 1,
                progress: bool = True) -> dict[str, dict]:
    """`{artifact: summary}` (summarize_profile) for each exported file of `run` (default: all present), profiled
    in its runtime here: .pte files through ExecuTorch's Python runtime, .tflite files through the native
    tflite_runner (`make native-runner`); a file that cannot be profiled here gets `{"skipped": reason}`."""
    from tqdm.auto import tqdm

    from se_edge.run import ARTIFACTS

    names = [n for n in (names or run.present()) if ARTIFACTS[n].runtime in ("executorch", "litert")]
    se_names = se_module_names(run.load_float())
    out = {}
    for name in tqdm(names, desc="profile", unit="file", disable=not progress):
        path, x1 = run.require(name), run.example_input(name)
        if ARTIFACTS[name].runtime == "executorch":
            profile = profile_pte(path, x1, runs, warmup, threads)
        else:
            profile = profile_tflite_native(path, x1, runs, warmup, threads)
            if "skipped" in profile:
                out[name] = profile
                continue
        out[name] = summarize_profile(profile, se_names)
    return out


def profile_tflite_native(path, x1, runs: int = 20, warmup: int = 5, threads: int = 1,
                          binary: str | os.PathLike | None = None, timeout: float = 600) -> dict:
    """Profile a .tflite with the native tflite_runner's --profile (LiteRT's profiler); `{"skipped": reason}` where
    no runner is built."""
    import tempfile

    import numpy as np

    from se_edge.device.native import default_binary
    from se_edge.device.received import read_stats
    from se_edge.device.transport import run_host_command
    from se_edge.errors import SeEdgeError

    binary = Path(binary) if binary else default_binary("tflite_runner")
    if not binary.is_file():
        return {"skipped": f"LiteRT's Python interpreter has no profiler and the native tflite_runner is not built "
                           f"({binary}); run `make native-runner`"}
    with tempfile.TemporaryDirectory(prefix="se_edge_profile_") as tmp:
        inputs, out, stats = Path(tmp) / "x.npy", Path(tmp) / "profile.json", Path(tmp) / "stats.json"
        x = np.asarray(x1)
        x = x if x.dtype == np.uint8 else x.astype(np.float32)  # an app file's pixels stay uint8, as the runner takes them
        np.save(inputs, x[None] if x.ndim == 3 else x)
        # --runs: the runner times the file unprofiled first, then profiles it in the same process
        argv = [str(binary), str(path), "--inputs", str(inputs), "--runs", str(runs), "--warmup", str(warmup),
                "--threads", str(threads), "--json", str(stats), "--profile", str(out), "--profile-runs", str(runs)]
        proc = run_host_command(argv, timeout, "tflite_runner --profile")
        if proc.returncode != 0 or not out.is_file() or not stats.is_file():
            lines = [line for line in (proc.stderr or "").splitlines() if line.strip()]
            raise SeEdgeError(f"tflite_runner --profile on {path} failed (exit {proc.returncode}): "
                              f"{lines[-1] if lines else 'no message'}")
        return {**read_litert_profile(out), "beside_p50_ms": read_stats(stats, f"tflite_runner on {path}")["p50"]}


# ---- report

def with_latency(profiles: dict[str, dict], latency: dict[str, dict]) -> dict[str, dict]:
    """Each profile with the file's unprofiled p50 (`latency`: measure_latency's, timed before any file was profiled)
    and its ops' sum against it; and against the unprofiled p50 timed beside the profile (same runtime, same process,
    right before the profiled runs: `beside_p50_ms`), where the profiler measured one. On a shared or throttling
    machine minutes apart can move a p50 by more than a profiler's overhead: the p50 timed beside is the one the
    ops' sum accounts for."""
    for name, p in profiles.items():
        if "skipped" in p:
            continue
        p50 = (latency.get(name) or {}).get("p50")
        if p50:
            p["p50_ms"], p["ops_vs_p50"] = p50, p["ops_ms"] / p50
        if p.get("beside_p50_ms"):
            p["ops_vs_beside"] = p["ops_ms"] / p["beside_p50_ms"]
            if p.get("outside"):
                p["call_vs_beside"] = p["total_ms"] / p["beside_p50_ms"]
    return profiles


def markdown(profiles: dict[str, dict], top: int = 12) -> str:
    """One section per file: time per op kind, the SE blocks (squeeze, excitation, gate, scale), the slowest ops."""
    from se_edge.report.table import fmt, markdown_table

    lines = []
    for name, p in profiles.items():
        se = p["se"]
        p50 = (f"; unprofiled p50 timed beside it {fmt(p['beside_p50_ms'], '.3f')} ms, ops sum = "
               f"{fmt(100 * p['ops_vs_beside'], '.0f')} % of it" + (
                   f", the profiled call = {fmt(100 * p['call_vs_beside'], '.0f')} % of it"
                   if p.get("call_vs_beside") else "") if p.get("ops_vs_beside") else "")
        p50 += (f"; latency table's p50 {fmt(p['p50_ms'], '.3f')} ms, ops sum = {fmt(100 * p['ops_vs_p50'], '.0f')} % "
                "of it" if p.get("p50_ms") else "")
        lines += [f"### {name} ({p['runtime']}, {p['runs']} runs)", "",
                  f"ops sum {fmt(p['ops_ms'], '.3f')} ms of {fmt(p['total_ms'], '.3f')} ms per profiled run "
                  f"({fmt(100 * p['coverage'] if p['coverage'] else None, '.0f')} %){p50}; SE blocks found "
                  f"{se['found']}" + (f" of {se['expected']}" if se["expected"] is not None else "") +
                  f", {fmt(se['ms'], '.3f')} ms = {fmt(100 * se['share'] if se['share'] is not None else None, '.1f')} "
                  "% of the ops' time", ""]
        lines.append(markdown_table(["op kind", "ops", "ms", "%"],
                                    [[k, v["ops"], fmt(v["ms"], ".3f"), fmt(100 * v["ms"] / p["ops_ms"], ".1f")
                                      if p["ops_ms"] else "—"] for k, v in p["by_kind"].items()]))
        if p.get("outside"):
            lines += ["", markdown_table(["the profiled call", "ms"], _call_rows(p))]
        if se["blocks"]:
            lines += ["", markdown_table(["SE block", "ops", "squeeze ms", "excitation ms", "gate ms", "scale ms",
                                          "ms"],
                                         [[b["name"], b["ops"], *(fmt(b[f"{r}_ms"], ".4f") for r in ROLES),
                                           fmt(b["ms"], ".4f")] for b in se["blocks"]]
                                         + [["all", sum(b["ops"] for b in se["blocks"]),
                                             *(fmt(se[f"{r}_ms"], ".4f") for r in ROLES), fmt(se["ms"], ".4f")]])]
        slow = sorted(p["ops"], key=lambda op: -op["ms"])[:top]
        lines += ["", markdown_table(["slowest ops", "kind", "SE", "ms"],
                                     [[op["name"], op["kind"], f"{op['se']} {op['role']}" if op["se"] else "",
                                       fmt(op["ms"], ".4f")] for op in slow]), ""]
    return "\n".join(lines)


OUTSIDE = {"delegate_call_ms": "XNNPACK delegate call, outside its operators (its reshape and setup per call)",
           "method_ms": "ExecuTorch method, outside its delegate and kernel calls",
           "invoke_ms": "LiteRT Invoke, outside its operators (interpreter, delegate node, profiler)"}


def _call_rows(p: dict) -> list[list]:
    """Where a profiled call's time goes: the ops, then what the runtime's own events measured outside them, then
    the call's whole time (ExecuTorch's Method::execute, LiteRT's Invoke) and the unprofiled p50 timed beside it."""
    from se_edge.report.table import fmt

    rows = [["operators and kernels (the tables here)", fmt(p["ops_ms"], ".3f")]]
    rows += [[OUTSIDE.get(k, k), fmt(v, ".3f")] for k, v in p["outside"].items()]
    whole = "Method::execute" if p["runtime"] == "executorch" else "Invoke"
    rows.append([f"{whole}, profiled (median)", fmt(p["total_ms"], ".3f")])
    if p.get("call_vs_beside"):
        rows.append([f"unprofiled p50 timed beside it ({whole} = {fmt(100 * p['call_vs_beside'], '.0f')} % of it)",
                     fmt(p["beside_p50_ms"], ".3f")])
    return rows
