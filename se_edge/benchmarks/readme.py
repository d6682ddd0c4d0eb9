"""Render the README's benchmark tables from the benchmarks' own JSON (`make readme-tables`).

Each table sits between `<!-- NAME:begin -->` and `<!-- NAME:end -->` and is what the benchmark's
`markdown()` prints for the JSON it wrote, so the README carries only numbers the code measured.
A block whose JSON is missing is left as it is, and said so.

    python -m se_edge.benchmarks.readme README.md runs
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def _renderers() -> dict:
    from se_edge.benchmarks import forms, gates, qat, runtimes, zoo

    # block name -> (JSON under the runs directory, renderer, what produced it)
    return {
        "forms": ("bench-forms/forms.json", forms.markdown, "se-edge bench forms"),
        "runtimes": ("bench-runtimes/runtimes.json", runtimes.markdown, "se-edge bench runtimes"),
        "zoo-purity": ("zoo-purity/zoo_purity.json", zoo.zoo_markdown, "se-edge bench zoo"),
        "compare-gates": ("compare-gates/compare_gates.json", gates.markdown, "se-edge bench gates"),
        "bench-qat": ("bench-qat/bench_qat.json", qat.markdown, "se-edge bench qat"),
    }


def replace_block(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {re.escape(name)}:begin -->\n).*?(<!-- {re.escape(name)}:end -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"no <!-- {name}:begin --> ... <!-- {name}:end --> block in the README")
    return pattern.sub(lambda m: m.group(1) + body.rstrip("\n") + "\n" + m.group(2), text, count=1)


def update(readme: str | Path, runs: str | Path = "runs") -> list[str]:
    """Rewrite every block whose JSON exists; returns the names of the blocks rewritten."""
    from se_edge.io import write_text

    readme, runs = Path(readme), Path(runs)
    text, done = readme.read_text(), []
    for name, (relative, render, command) in _renderers().items():
        source = runs / relative
        if not source.is_file():
            print(f"{name}: {source} not found (run `{command}`); block left as it is", file=sys.stderr)
            continue
        result = json.loads(source.read_text())
        rendered = render(result)
        if name == "runtimes" and result.get("se_cost"):  # the op profiles are in its JSON: made with --profile
            command += " --profile"
        rendered = re.sub(r"^# (.+)$", r"**\1**", rendered, flags=re.M)  # a table's title, not a README section
        body = f"Output of `{command}` ({source.name}):\n\n" + rendered
        text = replace_block(text, name, body)
        done.append(name)
    write_text(readme, text)
    return done


if __name__ == "__main__":
    args = sys.argv[1:] or ["README.md", "runs"]
    print("rewritten: " + (", ".join(update(*args)) or "nothing"))
