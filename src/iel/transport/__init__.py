"""Optimal transport between populations: couplings (exact and Sinkhorn), the differentiable
Sinkhorn divergence, and point-set registration of one gradient step."""
