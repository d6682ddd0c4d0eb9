"""PT2E quantisation: QAT preparation and fine-tuning, and conversion per backend."""
from se_edge.quantize.convert import convert
from se_edge.quantize.qat import QatConfig, load_prepared, prepare_qat, qat_finetune

__all__ = ["QatConfig", "convert", "load_prepared", "prepare_qat", "qat_finetune"]
