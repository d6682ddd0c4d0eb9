"""torchao's rewrite patterns, traced once per process instead of on every prepare and convert.

`prepare_qat_pt2e` and `convert_pt2e` find conv + batch-norm (and other) subgraphs by matching them against
pattern graphs, and torchao makes each pattern graph with a full `torch.export` of a small Python function
(`pt2e.utils._get_aten_graph_module_for_pattern`) every time it is asked: `convert_pt2e` alone exports about a
hundred of them (every combination of per-channel, bias, quantised bias and batch-norm mode, for each conv
type), 20 s or so of a 27 s int8 .tflite export of a small SE CNN on one core. The patterns are constants: the
same function (code, defaults and closure) traced with inputs of the same shapes and types is the same graph.

`traced_once()` keeps each pattern graph, keyed by exactly that, and hands out a deep copy of it (the matcher
may edit what it is given). A pattern whose function or inputs cannot be keyed (an unhashable closure value) is
traced as torchao traces it.
"""
from __future__ import annotations

import contextlib
import copy
import threading
from typing import Any

import torch

# the torchao modules that call the tracer by a name of their own
_MODULES = ("torchao.quantization.pt2e.utils", "torchao.quantization.pt2e.qat_utils",
            "torchao.quantization.pt2e.reference_representation_rewrite")
_NAME = "_get_aten_graph_module_for_pattern"
_GRAPHS: dict = {}
_LOCK = threading.RLock()
_depth = 0
stats = {"traced": 0, "reused": 0}


def _spec(value: Any, constant: bool = False):
    """An example input by its shape and type (its values are not traced into the graph); a `constant` (a value
    the function closes over) by its values too."""
    if isinstance(value, torch.Tensor):
        data = value.detach().cpu().numpy().tobytes() if constant else None
        return ("tensor", tuple(value.shape), value.dtype, value.device.type, value.requires_grad, data)
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, *(_spec(v, constant) for v in value))
    return value


def _key(pattern, example_inputs, is_cuda: bool, kwargs: dict):
    wrapped = type(pattern).__name__ == "WrapperModule" and not list(pattern.parameters()) and not list(pattern.buffers())
    pattern = pattern.fn if wrapped else pattern  # torchao's WrapperModule(fn): a module holding only the function
    code = getattr(pattern, "__code__", None)
    if code is None:
        return None
    closure = tuple(_spec(cell.cell_contents, constant=True) for cell in (pattern.__closure__ or ()))
    key = (code, closure, _spec(getattr(pattern, "__defaults__", None), True), _spec(tuple(example_inputs)), bool(is_cuda),
           tuple(sorted((k, _spec(v)) for k, v in kwargs.items())))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _cached(trace):
    def traced(pattern, example_inputs, is_cuda=False, **kwargs):
        key = _key(pattern, example_inputs, is_cuda, kwargs)
        if key is None:
            return trace(pattern, example_inputs, is_cuda, **kwargs)
        with _LOCK:
            if key not in _GRAPHS:
                _GRAPHS[key] = trace(pattern, example_inputs, is_cuda, **kwargs)
                stats["traced"] += 1
            else:
                stats["reused"] += 1
            return copy.deepcopy(_GRAPHS[key])

    traced._se_edge_original = trace
    return traced


@contextlib.contextmanager
def traced_once():
    """Within the block, torchao's pattern graphs come from the process's cache (made on first use)."""
    global _depth
    import importlib

    with _LOCK:
        _depth += 1
        if _depth == 1:
            for name in _MODULES:
                module = importlib.import_module(name)
                original = getattr(module, _NAME)
                setattr(module, _NAME, _cached(getattr(original, "_se_edge_original", original)))
    try:
        yield
    finally:
        with _LOCK:
            _depth -= 1
            if _depth == 0:
                for name in _MODULES:
                    module = importlib.import_module(name)
                    current = getattr(module, _NAME)
                    setattr(module, _NAME, getattr(current, "_se_edge_original", current))
