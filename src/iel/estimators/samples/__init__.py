"""Estimators for equilibrium samples: score matching, denoising score matching, contrastive
divergence, and Hopfield patterns."""

from .equilibrium import ContrastiveDivergence as ContrastiveDivergence
from .equilibrium import DenoisingScoreMatching as DenoisingScoreMatching
from .equilibrium import ScoreMatching as ScoreMatching
