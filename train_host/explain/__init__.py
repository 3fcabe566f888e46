"""Explainability on the host (`mpox-train explain`): captum Grad-CAM (two layers), Integrated
Gradients and LIME on SLIC superpixels, drawn as one panel per image; a deletion-curve
faithfulness score per method against random removal; and the agreement of a bundle's in-graph
CAM (every file, through the device runtime) with captum's Grad-CAM.

Modules: `methods` (the attributions), `deletion` (faithfulness), `agreement` (bundle vs captum),
`panels` (PNG per image), `index` (the sorted index page), `sources` (images and labels),
`run` (the whole job, as the CLI calls it).
"""

from train_host.explain.methods import METHODS, Explainer, default_layers, parse_methods
from train_host.explain.run import ExplainRequest, explain

__all__ = ["METHODS", "ExplainRequest", "Explainer", "default_layers", "explain", "parse_methods"]
