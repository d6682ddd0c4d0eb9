"""Exporters, one module per runtime: `litert` (.tflite) and `executorch` (.pte)."""
from se_edge.export.executorch import export_pte
from se_edge.export.litert import export_tflite

__all__ = ["export_pte", "export_tflite"]
