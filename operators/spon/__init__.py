"""Structure-preserving operator networks (SPON) on finite-element spaces.

Encode → process → decode on the coefficients of a Lagrange space of
:mod:`pdesuite.discretization`:

- :class:`Encoder`: a function (callable, FEFunction, values at points) → coefficients, by
  interpolation or L² projection.
- :class:`GraphProcessor`: message passing on the DoF graph (the stiffness matrix's pattern).
- :class:`Decoder`: coefficients → values at any points, or on a grid for plots.
- :class:`SPON`: the processor with exact Dirichlet DoFs; :class:`SPONMultigrid`: a V-cycle of
  processors over nested spaces.
- :class:`FEL2Loss`, :class:`FEH1Loss`: relative errors in the FE norms (``M``, ``M + K``).
"""

from pdesuite.operators.spon.decoder import Decoder
from pdesuite.operators.spon.encoder import Encoder, MassSolver, point_cloud_matrix, quadrature_rule
from pdesuite.operators.spon.losses import FEH1Loss, FEL2Loss, FENormLoss
from pdesuite.operators.spon.model import SPON, FESpaceOperator, boundary_lift
from pdesuite.operators.spon.multigrid import SPONMultigrid, nested_spaces
from pdesuite.operators.spon.processor import (
    EDGE_FEATURES,
    DofGraph,
    GraphProcessor,
    MessagePassingLayer,
    dof_graph,
)
from pdesuite.operators.spon.sparse import apply_along_dofs, to_torch_sparse

__all__ = [
    "EDGE_FEATURES", "SPON", "Decoder", "DofGraph", "Encoder", "FEH1Loss", "FEL2Loss",
    "FENormLoss", "FESpaceOperator", "GraphProcessor", "MassSolver", "MessagePassingLayer",
    "SPONMultigrid", "apply_along_dofs", "boundary_lift", "dof_graph", "nested_spaces",
    "point_cloud_matrix", "quadrature_rule", "to_torch_sparse",
]
