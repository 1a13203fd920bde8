"""Minimum description length: two-part and prequential codes, and the sparse search over a
library's terms with constants snapped to simple rationals."""

from .codes import CodeLength as CodeLength
from .codes import Stats as Stats
from .codes import default_epsilon as default_epsilon
