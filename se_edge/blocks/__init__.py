"""Attention blocks: SE (hardware-aware by default), ECA and CBAM for comparison, one factory,
and the rewrite of existing SE modules to the integer-only form."""
from se_edge.blocks.activations import HardSigmoid, HardSwish
from se_edge.blocks.cbam import CbamModule
from se_edge.blocks.eca import EcaModule
from se_edge.blocks.factory import ATTN_LAYERS, create_attn, get_attn
from se_edge.blocks.gates import GATES, apply_gate, fold_hw
from se_edge.blocks.helpers import ConvBnAct, make_divisible
from se_edge.blocks.rewrite import RewriteReport, to_hardware_aware
from se_edge.blocks.se import SqueezeExcite
from se_edge.blocks.squeeze import SQUEEZES

__all__ = ["ATTN_LAYERS", "GATES", "SQUEEZES", "CbamModule", "ConvBnAct", "EcaModule", "HardSigmoid", "HardSwish", "RewriteReport",
           "SqueezeExcite", "apply_gate", "create_attn", "fold_hw", "get_attn", "make_divisible", "to_hardware_aware"]
