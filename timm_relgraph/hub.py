"""Publish relational-graph models to the Hugging Face Hub, in timm's own format.

``python -m timm_relgraph.hub publish CHECKPOINT OUT_DIR [--push --repo-id org/name]`` turns a training
checkpoint (the project's trainer or timm's train.py) into a Hub model folder:

- ``model.safetensors``: the state dict, with every relational layer's ``graph`` buffer;
- ``config.json``: timm's config (architecture, num_classes, pretrained_cfg, model_args), whose model_args
  carry the graph (generator, n, k, p, seed) and whose pretrained_cfg carries the graph's measured C, L and the
  sha256 of its edge list;
- ``README.md``: the family card (``MODEL_CARD.md``) followed by this model's graph, results and recipe.

Such a folder loads with timm's own code: ``timm.create_model('hf-hub:org/name', pretrained=True)`` or
``timm.create_model('local-dir:/path', pretrained=True)``; a config whose graph disagrees with the weights'
graph buffers is refused.
"""
import argparse
import hashlib
import json
import os
import pickle
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from .names import family_prefix

# Families whose architecture depends on the input size (the MLP's first layer reads every pixel).
INPUT_SIZE_FAMILIES = ('mlp5',)

__all__ = ['load_training_checkpoint', 'export_model', 'export_checkpoint', 'push_folder', 'verify_folder',
           'HubError', 'main']

WEIGHTS = 'model.safetensors'
CONFIG = 'config.json'
CARD = 'README.md'
FAMILY_CARD = Path(__file__).resolve().parent.parent / 'MODEL_CARD.md'


CITATION = '''@inproceedings{you2020graph,
  title={Graph Structure of Neural Networks},
  author={You, Jiaxuan and Leskovec, Jure and He, Kaiming and Xie, Saining},
  booktitle={ICML},
  year={2020}
}'''


class HubError(RuntimeError):
    """A publishing step that cannot go on (missing token, existing repo, unknown model, bad checkpoint)."""


def load_training_checkpoint(path) -> Dict[str, Any]:
    """Read a checkpoint without unpickling arbitrary objects (``torch.load(weights_only=True)``).

    timm's train.py stores its ``argparse.Namespace`` in checkpoints; that one class is allowed, nothing else.
    """
    path = Path(path)
    if not path.is_file():
        raise HubError(f'checkpoint {path} does not exist')
    if path.suffix == '.safetensors':
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return {'state_dict': load_file(str(path))}
        except (SafetensorError, OSError, ValueError) as err:
            raise HubError(f'{path} is not a readable safetensors file: {str(err)[:200]}') from None
    try:
        with torch.serialization.safe_globals([argparse.Namespace]), warnings.catch_warnings():
            warnings.simplefilter('ignore', UserWarning)  # torch's note on the pickle protocol
            ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        reason = next((line for line in lines if line.startswith('Unsupported')), lines[-1] if lines else '')
        raise HubError(f'{path} was refused: only tensors, containers and argparse.Namespace may be unpickled '
                       f'(weights_only=True); {reason[:200] or type(err).__name__}') from None
    if not isinstance(ckpt, dict):
        raise HubError(f'{path} is not a checkpoint dict')
    if 'state_dict' not in ckpt:
        ckpt = {'state_dict': ckpt}
    args = ckpt.get('args')
    if isinstance(args, argparse.Namespace):
        ckpt['args'] = vars(args)
    return ckpt


def _model_kwargs_from_args(args: Dict[str, Any], name: str) -> Dict[str, Any]:
    kwargs = dict(args.get('model_kwargs') or {})
    for key in ('num_classes', 'in_chans'):
        if args.get(key) is not None:
            kwargs.setdefault(key, args[key])
    size = args.get('img_size') or (args.get('input_size') or [None, None, None])[-1]
    if size is not None and family_prefix(name) in INPUT_SIZE_FAMILIES:
        kwargs.setdefault('img_size', size)
    return kwargs


def file_sha256(path: Path) -> str:
    """sha256 hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def _render_card(model, config: Dict[str, Any], results: Dict[str, Any], repo_id: Optional[str]) -> str:
    graph = model.pretrained_cfg['graph']
    family_card = FAMILY_CARD.read_text() if FAMILY_CARD.is_file() else ''
    name = model.pretrained_cfg.get('architecture', '')
    tag = model.pretrained_cfg.get('tag')
    full = f'{name}.{tag}' if tag else name
    lines = [
        '---', 'tags:', '- image-classification', '- timm', '- timm-relgraph', 'library_name: timm',
        'license: apache-2.0', '---', '',
        f'# {repo_id or full}', '',
        f'A relational-graph network from "Graph Structure of Neural Networks" (You et al., ICML 2020): '
        f'`{full}`, built by `timm-relgraph`.', '',
        '## This model', '',
        '| field | value |', '|---|---|',
        f'| architecture | `{full}` |',
        f"| graph | {graph['generator']} n={graph['n']}" + (
            f", k={graph.get('k')}, p={graph.get('p')}, seed={graph.get('seed')}" if graph['generator'] == 'ws_flex'
            else f", {graph.get('name')}") + ' |',
        f"| clustering C | {graph['C']:.4f} |",
        f"| path length L | {graph['L']:.4f} |",
        f"| edges (sha256) | {graph['num_edges']} (`{graph['edges_sha256'][:16]}...`) |",
        f'| parameters (the weights its graph keeps, as the paper counts) | {sum(p.numel() for p in model.parameters()):,} |',
        f"| MACs | {getattr(model, 'macs', 'n/a'):,} (complete graph: {getattr(model, 'baseline_macs', 'n/a'):,}) |"
        if hasattr(model, 'macs') else '| MACs | n/a |',
        f"| input | {tuple(config['pretrained_cfg']['input_size'])} |",
        f'| classes | {model.num_classes} |',
    ]
    for key, value in results.items():
        lines.append(f'| {key} | {value} |')
    load_id = f'hf-hub:{repo_id}' if repo_id else 'local-dir:/path/to/this/folder'
    lines += ['', '## Load', '', '```python', 'import timm, timm_relgraph',
              f"model = timm.create_model('{load_id}', pretrained=True).eval()", '```', '']
    if family_card:
        lines += ['---', '', family_card]
    else:  # installed without the repository's MODEL_CARD.md: keep the card self-contained
        lines += ['## Citation', '', '```bibtex', CITATION, '```']
    return '\n'.join(lines) + '\n'


def export_model(model, out_dir, results: Optional[Dict[str, Any]] = None, repo_id: Optional[str] = None,
                 data_config: Optional[Dict[str, Any]] = None) -> Path:
    """Write ``model`` as a Hub folder (safetensors, config.json, README.md) atomically; returns the folder."""
    from timm.models import save_for_hf

    if 'graph' not in getattr(model, 'pretrained_cfg', {}):
        raise HubError('only relgraph models can be published here: the model has no graph in its pretrained_cfg')
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise HubError(f'{out_dir} exists and is not empty; choose a new folder')
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.parent.glob(f'.{out_dir.name}.*'):  # left by an earlier publish that was killed
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f'.{out_dir.name}.'))
    try:
        graph = dict(model.pretrained_cfg['graph'])
        spec_keys = ('generator', 'n', 'k', 'p', 'seed', 'name')
        model_args = {'graph': {k: graph[k] for k in spec_keys if k in graph}}
        save_for_hf(model, tmp, model_args=model_args, safe_serialization=True, data_config=data_config)
        config = json.loads((tmp / CONFIG).read_text())
        config['pretrained_cfg']['graph'] = graph
        weights_sha256 = file_sha256(tmp / WEIGHTS)
        config['pretrained_cfg']['weights_sha256'] = weights_sha256  # checked by create_model(pretrained=True)
        config['relgraph'] = {'results': results or {}, 'weights_sha256': weights_sha256}
        (tmp / CONFIG).write_text(json.dumps(config, indent=2) + '\n')
        (tmp / CARD).write_text(_render_card(model, config, results or {}, repo_id))
        for f in tmp.iterdir():
            f.chmod(0o644)
        tmp.chmod(0o755)
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def export_checkpoint(checkpoint, out_dir, model_name: Optional[str] = None, results=None, repo_id=None,
                      model_kwargs: Optional[Dict[str, Any]] = None) -> Path:
    """Training checkpoint -> Hub folder. The architecture comes from the checkpoint (``arch``) unless given."""
    import timm
    import timm_relgraph  # noqa: F401  (registers the models)

    ckpt = load_training_checkpoint(checkpoint)
    args = ckpt.get('args') or {}
    args_yaml = Path(checkpoint).parent / 'args.yaml'
    if not args and args_yaml.is_file():  # the training run's options (train.py and the project's trainer)
        import yaml
        args = yaml.safe_load(args_yaml.read_text()) or {}
    name = model_name or args.get('model') or ckpt.get('arch')
    if not name:
        raise HubError(f'{checkpoint} does not name its model; pass --model')
    if not str(name).startswith('relgraph_'):
        raise HubError(f"{checkpoint} holds '{name}', not a relgraph model; only relgraph_* models are published here")
    kwargs = _model_kwargs_from_args(args, name)
    kwargs.update(model_kwargs or {})
    try:
        model = timm.create_model(name, **kwargs)
    except (RuntimeError, ValueError) as err:
        raise HubError(f"cannot build '{name}' from {checkpoint}: {err}") from err
    try:
        model.load_state_dict(ckpt['state_dict'])
    except RuntimeError as err:  # GraphMismatchError included
        raise HubError(f"{checkpoint} does not hold weights of '{name}': {str(err).splitlines()[0][:300]}") from None
    model.eval()
    data_config = {key: args[key] for key in ('mean', 'std', 'crop_pct', 'interpolation') if args.get(key)}
    return export_model(model, out_dir, results=results, repo_id=repo_id, data_config=data_config or None)


def verify_folder(folder) -> Dict[str, Any]:
    """Check a Hub folder: weights hash, and the graph of config.json against every graph buffer."""
    from safetensors.torch import load_file
    from .graphs import GraphSpec, edge_hash
    from .masks import fit_graph, node_adjacency

    folder = Path(folder)
    config = json.loads((folder / CONFIG).read_text())
    expected = config.get('relgraph', {}).get('weights_sha256')
    if expected and file_sha256(folder / WEIGHTS) != expected:
        raise HubError(f'{folder / WEIGHTS} does not match the sha256 recorded in config.json')
    spec = GraphSpec.from_dict(config['model_args']['graph'])
    G = spec.build()
    recorded = config['pretrained_cfg']['graph']['edges_sha256']
    if edge_hash(G) != recorded:
        raise HubError(f'config.json graph {spec.to_dict()} does not hash to its recorded edges_sha256')
    for key, tensor in load_file(str(folder / WEIGHTS)).items():
        if key.endswith('.graph'):
            A = node_adjacency(fit_graph(G, tensor.shape[0]))
            if not torch.equal(torch.from_numpy(A).to(torch.uint8), tensor.to(torch.uint8)):
                raise HubError(f"weights' graph buffer {key} disagrees with the graph in config.json")
    return config


def upload_plan(folder) -> List[str]:
    """The files a push uploads, relative to the folder."""
    folder = Path(folder)
    return sorted(str(p.relative_to(folder)) for p in folder.rglob('*') if p.is_file())


def push_folder(folder, repo_id: str, token: Optional[str] = None, private: bool = False, exist_ok: bool = False,
                dry_run: bool = False, commit_message: str = 'Add relgraph model') -> List[str]:
    """Upload a verified Hub folder to ``repo_id``; returns the uploaded file list."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.utils import get_token

    verify_folder(folder)
    files = upload_plan(folder)
    if dry_run:
        return files
    token = token or get_token()
    if not token:
        raise HubError('no Hugging Face token: run `huggingface-cli login` or set HF_TOKEN')
    api = HfApi(token=token)
    try:
        if api.repo_exists(repo_id) and not exist_ok:
            raise HubError(f'{repo_id} already exists on the Hub; pass --exist-ok to upload a new revision to it')
        api.create_repo(repo_id, private=private, exist_ok=exist_ok)
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=commit_message)
    except HfHubHTTPError as err:
        raise HubError(f'Hub request failed for {repo_id}: {err}') from err
    return files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m timm_relgraph.hub', description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    pub = sub.add_parser('publish', help='checkpoint -> Hub folder (and optionally push it)')
    pub.add_argument('checkpoint', help='model_best.pth.tar / last.pth.tar / checkpoint-N.pth.tar / .safetensors')
    pub.add_argument('out_dir', help='new folder to write')
    pub.add_argument('--model', help='architecture name when the checkpoint does not record it')
    pub.add_argument('--model-kwargs', default='{}', help='JSON dict of extra create_model kwargs')
    pub.add_argument('--results', default='{}', help='JSON dict of measured results for the card')
    pub.add_argument('--repo-id', help='org/name on the Hub')
    pub.add_argument('--push', action='store_true', help='upload to --repo-id')
    pub.add_argument('--dry-run', action='store_true', help='list what would be uploaded, upload nothing')
    pub.add_argument('--exist-ok', action='store_true', help='allow uploading to an existing repo')
    pub.add_argument('--private', action='store_true')
    args = parser.parse_args(argv)
    try:
        if (args.push or args.dry_run) and not args.repo_id:
            raise HubError('--push and --dry-run need --repo-id org/name')
        folder = export_checkpoint(args.checkpoint, args.out_dir, model_name=args.model,
                                   results=json.loads(args.results), repo_id=args.repo_id,
                                   model_kwargs=json.loads(args.model_kwargs))
        print(f'wrote {folder}')
        if args.push or args.dry_run:
            files = push_folder(folder, args.repo_id, private=args.private, exist_ok=args.exist_ok,
                                dry_run=args.dry_run)
            verb = 'would upload' if args.dry_run else 'uploaded'
            print(f'{verb} to {args.repo_id}: ' + ', '.join(files))
    except (HubError, json.JSONDecodeError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
