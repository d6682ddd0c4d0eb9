"""Benchmarks: they import the pipeline's stages and exporters and are never imported by them.
Each is a `se-edge bench` subcommand and writes JSON + Markdown (+ plots) under runs/.

- forms.py: candidate forms of the hard-sigmoid gate and hard-swish, and what each runtime does with them (`forms`)
- runtimes.py: fp32 vs int8, with and without SE, on LiteRT and ExecuTorch at 224 px (`runtimes`)
- gates.py: each SE gate and squeeze in int8: CPU latency, delegation, Ethos-U NPU time (`gates`)
- zoo.py: purity and delegation of every zoo model's files on LiteRT, ExecuTorch and Ethos-U (`zoo`)
- qat.py: float vs PTQ vs QAT accuracy of exported files, and QAT's training-step cost (`qat`)
- readme.py: renders the README's benchmark tables from the JSON the benchmarks wrote
"""
