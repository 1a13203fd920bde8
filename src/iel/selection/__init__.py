"""The simplest explanation: description lengths, sparse formulas, model selection."""

from .codes import CodeLength as CodeLength
from .codes import Stats as Stats
from .select import AUTO_FAMILIES as AUTO_FAMILIES
from .select import SELECT_FAMILIES as SELECT_FAMILIES
from .select import Selection as Selection
from .select import select as select
