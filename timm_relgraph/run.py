"""Run any timm script (train.py, validate.py, inference.py, benchmark.py, ...) with the relgraph models registered.

    python -m timm_relgraph.run path/to/validate.py --model relgraph_mlp5 --checkpoint model_best.pth.tar ...

Imports ``timm_relgraph`` (which registers the ``relgraph_*`` models with timm), then executes the script as
``__main__`` with ``sys.argv`` set to ``[script, args...]`` and the script's folder first on ``sys.path``, as
``python path/to/script.py args...`` would. The exit status is the script's.
"""
from __future__ import annotations

import os
import runpy
import sys
from typing import List, Optional

USAGE = 'usage: python -m timm_relgraph.run SCRIPT.py [script arguments...]'


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(USAGE + '\n\n' + __doc__.strip().split('\n\n')[1], file=sys.stderr if not argv else sys.stdout)
        return 0 if argv else 2
    script = argv[0]
    if not os.path.isfile(script):
        print(f'error: no such script: {script} (timm scripts such as train.py and validate.py live in the '
              f'pytorch-image-models repository, not in the timm wheel)', file=sys.stderr)
        return 2

    import timm_relgraph  # noqa: F401  registers the relgraph_* models

    sys.argv = [script] + argv[1:]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        runpy.run_path(script, run_name='__main__')
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
