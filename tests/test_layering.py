"""The package's layers, pinned: imports (at the top of a module or inside a function) flow one way, from the
layers above to those below, never up. A new import that goes up the stack fails here with the file and line.

    errors < io < quiet < runner                      infrastructure; runner.py is the device payload
    blocks < models < data < config < distributed < train < quantize < export    the leaves: no run, no report
    run < evaluate < report < device                  a run's files and record; what reads them; how it is shown
    pipeline < api < benchmarks < cli                 the stages, and the surfaces over them
"""
import ast
from pathlib import Path

import se_edge

ORDER = ["errors", "io", "quiet", "runner", "blocks", "models", "data", "config", "distributed", "train", "quantize",
         "export", "run", "evaluate", "report", "device", "pipeline", "api", "benchmarks", "cli"]
ROOT = Path(se_edge.__file__).parent


def _layer(parts: tuple[str, ...]) -> str | None:
    """The layer a module (its dotted parts under se_edge) belongs to; None for the package's own __init__ and
    the names it defines (`from se_edge import __version__`)."""
    if not parts or not ((ROOT / parts[0]).is_dir() or (ROOT / f"{parts[0]}.py").is_file()):
        return None
    return parts[0]


def _imports(path: Path):
    """(line, imported module's parts under se_edge) for every se_edge import in `path`, resolved."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]  # the module's package, for relative imports
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                module = ".".join(("se_edge", *base, *([node.module] if node.module else [])))
            else:
                module = node.module or ""
            # `from se_edge import runner` and `from . import parity` import modules of a package
            targets = [f"{module}.{a.name}" if module == "se_edge" or not node.module else module for a in node.names]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            if parts[0] == "se_edge":
                yield node.lineno, tuple(parts[1:])


def test_every_module_is_in_a_layer():
    layers = {p.relative_to(ROOT).parts[0].removesuffix(".py") for p in ROOT.rglob("*.py")} - {"__init__"}
    assert layers <= set(ORDER), f"modules or packages in no layer: {sorted(layers - set(ORDER))}"
    assert len(layers) == len(ORDER)


def test_the_package_root_holds_at_most_ten_modules():
    modules = sorted(p.name for p in ROOT.glob("*.py"))
    assert len(modules) <= 10, modules
    assert {"run", "evaluate", "report"} <= {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}


def test_imports_flow_one_way():
    rank = {name: i for i, name in enumerate(ORDER)}
    upward, checked = [], 0
    for path in sorted(ROOT.rglob("*.py")):
        own = _layer(path.relative_to(ROOT).with_suffix("").parts)
        if own in (None, "__init__"):
            continue
        for line, target in _imports(path):
            other = _layer(target)
            if other is None or other == own:
                continue
            checked += 1
            if rank[other] > rank[own]:
                upward.append(f"{path.relative_to(ROOT.parent)}:{line}: {own} imports {'.'.join(target)} ({other})")
    assert checked > 100, f"only {checked} cross-layer imports found: the scan is not seeing the package"
    assert not upward, "imports that go up the layers:\n" + "\n".join(upward)


def test_the_scan_resolves_every_import_form(tmp_path):
    """The resolver itself: absolute, `from se_edge import x` and relative imports land on the right layer."""
    global ROOT
    root, saved = tmp_path / "se_edge", ROOT
    (root / "evaluate").mkdir(parents=True)
    (root / "evaluate" / "m.py").write_text("import se_edge.run.layout\nfrom se_edge import report\n"
                                            "def f():\n    from ..cli import main\n    from . import parity\n")
    ROOT = root
    try:
        found = [t for _, t in _imports(root / "evaluate" / "m.py")]
    finally:
        ROOT = saved
    assert found == [("run", "layout"), ("report",), ("cli",), ("evaluate", "parity")], found
