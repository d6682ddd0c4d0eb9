"""Benchmarks: they import the pipeline's stages and exporters and are never imported by them.

- forms.py: candidate forms of the hard-sigmoid gate and hard-swish, and what each runtime does with them
- runtimes.py: fp32 vs int8, with and without SE, on LiteRT and ExecuTorch at 224 px
"""
