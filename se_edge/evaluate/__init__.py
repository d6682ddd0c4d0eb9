"""Everything that reads a run's files and measures them, each in its real runtime:

    models.py     the one model interface (TorchModel, the runner's models) and open_artifact
    parity.py     accuracy and agreement against float, the int8 reference and the other runtime
    latency.py    single-image latency, artifacts interleaved
    structure.py  what each file holds: delegate partitions, float islands, ops outside the delegate
    vela.py       what Vela does with a .tflite for an Ethos-U NPU
    footprint.py  size, parameters, MACs, peak memory
    tradeoff.py   what keep-float layers and the app form buy and cost
    debug/        per-layer SQNR (points, capture, compare, sensitivity), each runtime's own arithmetic

Rendering is report/'s; a run's files and record are run/'s.
"""
