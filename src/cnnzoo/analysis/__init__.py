"""Looking inside models: per-layer summaries, FLOPs/MACs, speed, side-by-side comparison."""

from cnnzoo.analysis.compare import compare, format_table
from cnnzoo.analysis.flops import (
    count_flops,
    format_count,
    has_depthwise_conv,
    separable_cost_ratio,
    separable_report,
    separable_vs_standard,
)
from cnnzoo.analysis.speed import measure_speed
from cnnzoo.analysis.summary import LayerRow, Summary, layer_summary

__all__ = [
    "LayerRow",
    "Summary",
    "compare",
    "count_flops",
    "format_count",
    "format_table",
    "has_depthwise_conv",
    "layer_summary",
    "measure_speed",
    "separable_cost_ratio",
    "separable_report",
    "separable_vs_standard",
]
