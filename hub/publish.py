"""Publish a relgraph training checkpoint as a Hugging Face Hub model folder (and optionally push it).

    python hub/publish.py publish output/train/<run>/model_best.pth.tar weights/<name> \\
        [--evaluate] [--results-csv results/results-<data>.csv] [--push --repo-id org/name]

Same as ``relgraph publish ...`` and ``python -m timm_relgraph.hub publish ...``; see ``timm_relgraph/hub.py``.
"""
import sys

from timm_relgraph.hub import main

if __name__ == '__main__':
    sys.exit(main())
