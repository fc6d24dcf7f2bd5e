"""Analysis of models: complexity (:mod:`.complexity`: FLOPs and parameters
as the paper counts them) and the benchmark harness (:mod:`.timing`:
interleaved timing, the machine's matrix-multiply rate, thread control;
:mod:`.memory`: peak resident memory; :mod:`.numerics`: weights and output
comparison for timed models). Only :mod:`.complexity` is imported here;
the harness modules need nothing but torch and the standard library, so that
tools can load them beside an older ``evit_mm``."""
from .complexity import PAPER_COMPLEXITY, count_complexity, flop_analyzer

__all__ = ['PAPER_COMPLEXITY', 'count_complexity', 'flop_analyzer']
