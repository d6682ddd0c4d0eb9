"""PT2E quantisation: QAT preparation and fine-tuning, the PTQ baseline, conversion per backend."""
from se_edge.quantize.convert import convert
from se_edge.quantize.qat import QatConfig, calibrate, load_prepared, prepare_ptq, prepare_qat, qat_finetune

__all__ = ["QatConfig", "calibrate", "convert", "load_prepared", "prepare_ptq", "prepare_qat", "qat_finetune"]
