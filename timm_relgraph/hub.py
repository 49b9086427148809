"""Publish relational-graph models to the Hugging Face Hub, in timm's own format.

``python -m timm_relgraph.hub publish CHECKPOINT OUT_DIR [--push --repo-id org/name]`` turns a training
checkpoint (the project's trainer or timm's train.py) into a Hub model folder:

- ``model.safetensors``: the state dict, with every relational layer's ``graph`` buffer;
- ``config.json``: timm's config (architecture, num_classes, pretrained_cfg, model_args), whose model_args
  carry the graph (generator, n, k, p, seed) and whose pretrained_cfg carries the graph's measured C, L and the
  sha256 of its edge list;
- ``README.md``: a model card in the layout of timm's Hub cards (Model Details with the paper's parameter
  count, MACs, activations and the relational graph; Model Usage, install line first; Model Comparison with the
  measured results and the command that produced them; the family card ``MODEL_CARD.md`` when the repository
  is at hand; Citation).

``--evaluate`` reloads the written folder through ``local-dir:`` and measures it on the run's test split;
``--results-csv`` adds its row to a results table in timm's ``results/results-*.csv`` format.

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

from ._io import atomic_open
from .names import family_prefix

# Families whose architecture depends on the input size (the MLP's first layer reads every pixel).
INPUT_SIZE_FAMILIES = ('mlp5',)

__all__ = ['load_training_checkpoint', 'export_model', 'export_checkpoint', 'push_folder', 'verify_folder',
           'render_card', 'update_card', 'evaluate_folder', 'check_reload', 'comparison_row', 'results_row',
           'write_results_csv', 'read_results_csv', 'folder_model_name', 'model_stats', 'HubError',
           'ReloadMismatchError', 'main']

WEIGHTS = 'model.safetensors'
CONFIG = 'config.json'
CARD = 'README.md'
# shipped in the wheel as package data (in a checkout, a link to the repository's MODEL_CARD.md)
FAMILY_CARD = Path(__file__).resolve().parent / 'MODEL_CARD.md'
if not FAMILY_CARD.is_file():
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


# --- The model card, in the layout of timm's own Hub cards ------------------------------------------------
# timm's cards (``timm.models._hub.generate_readme`` and the cards of the timm organisation) run: front matter,
# "# Model card for NAME", a description, "## Model Details" (Model Type, Model Stats, Papers, Dataset,
# Original), "## Model Usage" (Image Classification, Feature Map Extraction, Image Embeddings),
# "## Model Comparison" and "## Citation". The card below keeps that order and those names, adds the
# relational graph to the details and the measured results (with the command that produced them) to the
# comparison, and puts the install line first, since the architecture is defined by this package.

PAPER_URL = 'https://arxiv.org/abs/2007.06559'
AUTHORS_CODE = 'https://github.com/facebookresearch/graph2nn'
INSTALL = 'pip install timm-relgraph'

# family -> (network, which of its layers follow the graph)
FAMILY_TEXT = {
    'mlp5': ('5-layer MLP', 'its three middle Linear layers'),
    'cnn8': ('8-layer CNN', 'its six 3x3 convolutions'),
    'resnet18': ('ResNet-18', 'both 3x3 convolutions of every basic block'),
    'resnet34': ('ResNet-34', 'both 3x3 convolutions of every basic block'),
    'resnet34sep': ('ResNet-34-sep', 'the 1x1 convolution after every depthwise 3x3'),
    'resnet50': ('ResNet-50', 'the 1x1, 3x3 and 1x1 convolutions of every bottleneck'),
    'efficientnet_b0': ('EfficientNet-B0', 'the 1x1 expansion and projection convolutions'),
}

CIFAR10_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck')


def dataset_info(name: Optional[str]) -> Optional[Dict[str, Any]]:
    """What the card says about a training dataset named as the trainer names it (``torch/fashion_mnist``,
    ``cifar10``, ``digits``, ...): display name, Hub dataset id and class names; None when not recorded."""
    from .data import FASHION_MNIST_CLASSES, _ALIASES
    if not name:
        return None
    key = _ALIASES.get(str(name).lower(), str(name).lower())
    known = {
        'fashion_mnist': dict(key=key, name='Fashion-MNIST', hub_id='fashion_mnist', labels=FASHION_MNIST_CLASSES),
        'cifar10': dict(key=key, name='CIFAR-10', hub_id='cifar10', labels=CIFAR10_CLASSES),
        'digits': dict(key=key, name='scikit-learn digits (8x8)', hub_id=None, labels=tuple(str(i) for i in range(10))),
        'imagefolder': dict(key=key, name='an image folder', hub_id=None, labels=None),
    }
    return known.get(key, dict(key=key, name=str(name), hub_id=None, labels=None))


def split_text(dataset: Optional[str], split: str, samples: Optional[int] = None) -> str:
    """``Fashion-MNIST test split (10,000 images)``: a dataset split as a card or a table names it. The trainer's
    eval split of Fashion-MNIST and CIFAR-10 (``validation``) is their test set, and is called so."""
    from .data import is_train_split

    info = dataset_info(dataset) or {'key': None, 'name': str(dataset)}
    try:
        held_out = not is_train_split(split)
    except ValueError:
        held_out = False
    name = 'test' if held_out and info['key'] in ('fashion_mnist', 'cifar10') else split
    return f"{info['name']} {name} split" + (f' ({samples:,} images)' if samples is not None else '')


def count_activations(model, input_size) -> int:
    """Activations of one forward pass on one ``(C, H, W)`` input: the output elements of every conv and linear
    layer (the convention of fvcore's ActivationCountAnalysis, which timm's "Activations (M)" reports)."""
    total = [0]

    def hook(module, inputs, output):
        total[0] += output.numel() // output.shape[0]

    layers = (torch.nn.Conv2d, torch.nn.Linear)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, layers)]
    was_training = model.training
    model.eval()
    try:
        like = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, *input_size, device=like.device, dtype=like.dtype))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total[0]


def model_stats(model, input_size) -> Dict[str, Any]:
    """The card's Model Stats of a built relgraph model at ``input_size``: parameters as the paper counts them
    (only the weights its graph keeps), analytic MACs (checked against a forward-hook count) and activations."""
    from .flops import count_macs, count_params

    input_size = [int(v) for v in input_size]
    counted = count_macs(model, input_size)
    analytic = getattr(model, 'macs', None)
    stats = {
        'params': count_params(model),
        'macs': int(analytic) if analytic is not None and analytic == counted else counted,
        'macs_method': 'analytic' if analytic is not None and analytic == counted else 'forward hooks',
        'activations': count_activations(model, input_size),
        'input_size': input_size,
    }
    if getattr(model, 'baseline_macs', None) is not None and analytic == counted:
        stats['complete_graph_macs'] = int(model.baseline_macs)
    return stats


def _millions(value: float) -> str:
    return f'{value / 1e6:,.2f}'


def _giga(value: float) -> str:
    return f'{value / 1e9:.3g}'


def _graph_line(graph: Dict[str, Any]) -> str:
    if graph.get('generator') == 'connectome':
        return f"connectome `{graph.get('name')}` (n={graph['n']})"
    if graph.get('generator') == 'ws_flex' and graph.get('k') == graph.get('n') and not graph.get('p'):
        return f"complete graph (n={graph['n']}): every weight kept, the ordinary network"
    return (f"WS-flex (n={graph['n']}, k={graph.get('k'):.6g}, p={graph.get('p'):.6g}, seed={graph.get('seed')})")


def _sweet_spot_line(family: Optional[str], C: float, L: float) -> Optional[str]:
    from .paper import PAPER_SWEET_SPOTS
    box = PAPER_SWEET_SPOTS.get(family or '')
    if not box:
        return None
    (c0, c1), (l0, l1) = box['C'], box['L']
    inside = c0 <= C <= c1 and l0 <= L <= l1
    where = 'CIFAR-10' if family == 'mlp5' else 'ImageNet'
    return f"{'inside' if inside else 'outside'} the paper's sweet spot for this family (C {c0:.2f}-{c1:.2f}, " \
           f"L {l0:.2f}-{l1:.2f}, found on {where})"


def _usage(model_id: str, num_classes: int, in_chans: int) -> str:
    mode = "'L'" if in_chans == 1 else "'RGB'"
    k = min(5, num_classes) if num_classes else 5
    head = ("```python\nimport timm\nimport timm_relgraph  # registers the relgraph_* architectures with timm\n"
            "import torch\nfrom PIL import Image\n\n")
    image = (f"img = Image.open('image.png').convert({mode})  # any image; this model reads "
             f"{'grayscale' if in_chans == 1 else 'RGB'} input\n")
    transforms = ("\n# the model's own preprocessing (resize, crop, normalisation), from its pretrained config\n"
                  "data_config = timm.data.resolve_model_data_config(model)\n"
                  "transform = timm.data.create_transform(**data_config, is_training=False)\n"
                  "x = transform(img).unsqueeze(0)  # a batch of one\n")
    classify = (head + image +
                f"\nmodel = timm.create_model('{model_id}', pretrained=True).eval()\n" + transforms +
                f"\nwith torch.inference_mode():\n    probabilities = model(x).softmax(dim=1)\n"
                f"top_prob, top_idx = torch.topk(probabilities * 100, k={k})\n"
                f"names = model.pretrained_cfg.get('label_names') or [str(i) for i in range(model.num_classes)]\n"
                f"for p, i in zip(top_prob[0].tolist(), top_idx[0].tolist()):\n"
                f"    print(f'{{names[i]}}: {{p:.1f}}%')\n```\n")
    features = (head + image +
                f"\nmodel = timm.create_model('{model_id}', pretrained=True, features_only=True).eval()\n" +
                transforms +
                "\nwith torch.inference_mode():\n    feature_maps = model(x)\n"
                "for f in feature_maps:\n    print(f.shape)  # one map per stage, [1, C, H, W]\n"
                "print(model.feature_info.channels(), model.feature_info.reduction())\n```\n")
    embeddings = (head + image +
                  f"\nmodel = timm.create_model('{model_id}', pretrained=True, num_classes=0).eval()  "
                  f"# no classifier\n" + transforms +
                  "\nwith torch.inference_mode():\n"
                  "    embedding = model(x)  # pooled features, [1, num_features]\n"
                  "    # or, in two steps: unpooled features, then the head without its classifier\n"
                  "    features = model.forward_features(x)\n"
                  "    same = model.forward_head(features, pre_logits=True)\n"
                  "print(embedding.shape, torch.allclose(embedding, same))\n```\n")
    return '\n'.join([
        'The architecture is defined by the `timm-relgraph` package: install it, and import it before '
        'creating the model (without `import timm_relgraph`, timm reports "Unknown model").', '',
        '```bash', INSTALL, '```', '',
        '### Image Classification', '', classify,
        '### Feature Map Extraction', '', features,
        '### Image Embeddings', '', embeddings,
    ])


def _comparison(card: Dict[str, Any], full_name: str) -> List[str]:
    results = dict(card.get('results') or {})
    command = results.pop('command', None)
    rows = card.get('comparison') or []
    lines: List[str] = []
    if rows:
        source = rows[0].get('measured_by')
        lines += [source, ''] if source else []
        lines += ['| model | graph C | graph L | Params (M) | GMACs | top-1 (%) | top-5 (%) |',
                  '|---|---:|---:|---:|---:|---:|---:|']
        for r in rows:
            mark = ' (this model)' if r.get('model') == full_name else ''
            lines.append(f"| `{r['model']}`{mark} | {r['C']:.3f} | {r['L']:.3f} | {_millions(r['params'])} | "
                         f"{_giga(r['macs'])} | {r['top1']:.2f} | {r['top5']:.2f} |")
        lines.append('')
    if results:
        lines += ['| result | value |', '|---|---|'] + [f'| {k} | {v} |' for k, v in results.items()] + ['']
    if command:
        lines += [f'Produced by: `{command}`', '']
    if not lines:
        lines = ['No measured results were recorded with this export.', '']
    lines += ['Parameters count only the weights the relational graph keeps (the paper\'s count); MACs count the '
              'multiply-adds of conv and linear layers on the kept weights, at the image size above.', '']
    return lines


def _family_card() -> List[str]:
    """The family card (``MODEL_CARD.md`` of the repository) as one section: title dropped, headings one level
    down, its citation left to the card's own Citation section."""
    if not FAMILY_CARD.is_file():
        return []
    out, skipping = [], False
    for line in FAMILY_CARD.read_text().splitlines():
        if line.startswith('# '):
            continue
        if line.startswith('## '):
            skipping = line[3:].strip().lower() == 'citation'
            if skipping:
                continue
            line = '#' + line
        if not skipping:
            out.append(line)
    while out and not out[0].strip():
        out.pop(0)
    return ['## About relgraph models', '', *out, ''] if out else []


def render_card(config: Dict[str, Any], repo_id: Optional[str] = None) -> str:
    """The README.md of a Hub folder, from its ``config.json`` alone (so it can be re-rendered after the
    folder has been evaluated)."""
    from .names import join_tag
    from .paper import PAPER_NAME

    cfg = config['pretrained_cfg']
    card = config.get('relgraph') or {}
    graph = cfg['graph']
    stats = card.get('stats') or {}
    full = join_tag(config['architecture'], cfg.get('tag'))
    family = family_prefix(config['architecture'])
    network, layers = FAMILY_TEXT.get(family, ('network', 'its relational layers'))
    data = card.get('dataset') or {}
    input_size = stats.get('input_size') or list(cfg['input_size'])
    complete = graph.get('generator') == 'ws_flex' and graph.get('k') == graph.get('n') and not graph.get('p')

    front = ['---', 'tags:', '- image-classification', '- timm', '- timm-relgraph',
             'pipeline_tag: image-classification', 'library_name: timm',
             f"license: {cfg.get('license') or 'apache-2.0'}"]
    if data.get('hub_id'):
        front += ['datasets:', f"- {data['hub_id']}"]
    front += ['---']

    paper = f'"{PAPER_NAME}" (You, Leskovec, He, Xie; ICML 2020)'
    if complete:
        description = (f'The complete-graph {network} of {paper}: all {graph["n"]} nodes of its relational graph '
                       f'are connected, so every weight is kept. This is the ordinary {network}, the baseline the '
                       f'relational models are FLOPs-matched to.')
    else:
        description = (f'A relational-graph {network} from {paper}: {layers} keep only the weight blocks between '
                       f'adjacent nodes of a {graph["n"]}-node relational graph (clustering C = {graph["C"]:.3f}, '
                       f'average path length L = {graph["L"]:.3f}), and its widths are increased until its '
                       f'multiply-adds match the complete-graph network\'s.')
    if data.get('name'):
        description += f' Trained on {data["name"]} with `timm-relgraph`.'

    details = ['## Model Details', '- **Model Type:** Image classification / feature backbone', '- **Model Stats:**']
    if 'params' in stats:
        details.append(f"  - Params (M): {_millions(stats['params'])} ({stats['params']:,}: only the weights the "
                       f"graph keeps, as the paper counts)")
    if 'macs' in stats:
        baseline = stats.get('complete_graph_macs')
        extra = f'; complete graph {baseline:,}' if baseline and not complete else ''
        details.append(f"  - GMACs: {_giga(stats['macs'])} ({stats['macs']:,} MACs, "
                       f"{stats.get('macs_method', 'analytic')}{extra})")
    if 'activations' in stats:
        details.append(f"  - Activations (M): {stats['activations'] / 1e6:.3g} ({stats['activations']:,} outputs of "
                       f"conv and linear layers)")
    details.append(f'  - Image size: {input_size[-2]} x {input_size[-1]} ({input_size[0]} '
                   f'channel{"s" if input_size[0] != 1 else ""})')
    details += ['- **Relational graph:**',
                f'  - Generator: {_graph_line(graph)}',
                f"  - Clustering coefficient C: {graph['C']:.4f}",
                f"  - Average path length L: {graph['L']:.4f}",
                f"  - Edges: {graph['num_edges']} (edge-list sha256 `{graph['edges_sha256'][:16]}...`)"]
    spot = None if complete else _sweet_spot_line(family, graph['C'], graph['L'])
    if spot:
        details.append(f'  - Sweet spot: {spot}')
    details += ['- **Papers:**', f'  - {PAPER_NAME}: {PAPER_URL}']
    if data.get('name'):
        details.append(f"- **Dataset:** {data['name']}")
    details.append(f"- **Original:** {AUTHORS_CODE} (the authors' code); this implementation: timm-relgraph")

    model_id = f'hf-hub:{repo_id}' if repo_id else 'local-dir:/path/to/this/folder'
    lines = [*front, f'# Model card for {full}', '', description, '', *details, '',
             '## Model Usage', _usage(model_id, config.get('num_classes') or cfg.get('num_classes') or 0,
                                      input_size[0]),
             '## Model Comparison', *_comparison(card, full), *_family_card(),
             '## Citation', '```bibtex', CITATION, '```']
    return '\n'.join(lines) + '\n'


def export_model(model, out_dir, results: Optional[Dict[str, Any]] = None, repo_id: Optional[str] = None,
                 data_config: Optional[Dict[str, Any]] = None, dataset: Optional[str] = None,
                 comparison: Optional[List[Dict[str, Any]]] = None) -> Path:
    """Write ``model`` as a Hub folder (safetensors, config.json, README.md) atomically; returns the folder.

    ``results``: measured results for the card (a ``command`` key is shown as the command that produced them);
    ``dataset``: the training dataset as the trainer names it (card, Hub metadata and the class names);
    ``comparison``: rows for the card's comparison table (see :func:`comparison_row`).
    """
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
        data = dataset_info(dataset)
        labels = (data or {}).get('labels')
        model_config = {'label_names': list(labels)} if labels and len(labels) == model.num_classes else None
        save_for_hf(model, tmp, model_config=model_config, model_args=model_args, safe_serialization=True,
                    data_config=data_config)
        config = json.loads((tmp / CONFIG).read_text())
        config['pretrained_cfg']['graph'] = graph
        weights_sha256 = file_sha256(tmp / WEIGHTS)
        config['pretrained_cfg']['weights_sha256'] = weights_sha256  # checked by create_model(pretrained=True)
        config['relgraph'] = {
            'results': results or {}, 'weights_sha256': weights_sha256,
            'dataset': {k: v for k, v in data.items() if k != 'labels'} if data else None,
            'stats': model_stats(model, config['pretrained_cfg']['input_size']),
            'comparison': list(comparison or []),
        }
        (tmp / CONFIG).write_text(json.dumps(config, indent=2) + '\n')
        (tmp / CARD).write_text(render_card(config, repo_id))
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
                      model_kwargs: Optional[Dict[str, Any]] = None, dataset: Optional[str] = None,
                      comparison: Optional[List[Dict[str, Any]]] = None) -> Path:
    """Training checkpoint -> Hub folder. The architecture comes from the checkpoint (``arch``) unless given;
    the dataset from the run's options (``args.yaml``) unless given."""
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
    return export_model(model, out_dir, results=results, repo_id=repo_id, data_config=data_config or None,
                        dataset=args.get('dataset') if dataset is None else dataset, comparison=comparison)


class ReloadMismatchError(HubError):
    """A model reloaded from its exported folder does not reproduce the accuracy measured in training."""


def update_card(folder, results: Optional[Dict[str, Any]] = None,
                comparison: Optional[List[Dict[str, Any]]] = None, repo_id: Optional[str] = None) -> Path:
    """Record measured ``results`` and ``comparison`` rows in a Hub folder's config.json and re-render its card.
    The weights are not touched (their sha256 stays valid)."""
    folder = Path(folder)
    config = json.loads((folder / CONFIG).read_text())
    card = config.setdefault('relgraph', {})
    if results is not None:
        card['results'] = dict(results)
    if comparison is not None:
        card['comparison'] = list(comparison)
    for name, text in ((CONFIG, json.dumps(config, indent=2) + '\n'), (CARD, render_card(config, repo_id))):
        with atomic_open(folder / name) as f:
            f.write(text)
    return folder


def evaluate_folder(folder, dataset: str, split: str = 'validation', data_dir: Optional[str] = None,
                    num_samples: Optional[int] = None, batch_size: int = 512, device: Optional[str] = None,
                    progress: Optional[bool] = False) -> Dict[str, Any]:
    """Reload a Hub folder as a user would (``timm.create_model('local-dir:FOLDER', pretrained=True)``), build
    timm's eval transforms from its config and measure top-1 / top-5 (%) on ``split`` of ``dataset``
    (names and splits as the trainer takes them: for Fashion-MNIST and CIFAR-10, ``validation`` is the test
    split). Returns the accuracies with what a timm results row needs (param_count, img_size, crop_pct,
    interpolation)."""
    import timm
    import timm_relgraph  # noqa: F401
    from timm.data import create_transform, resolve_model_data_config
    from tqdm import tqdm

    from .data import create_relgraph_dataset
    from .flops import count_params

    folder = Path(folder).resolve()
    model = timm.create_model(f'local-dir:{folder}', pretrained=True).eval()
    device = torch.device(device or 'cpu')
    model.to(device)
    data_config = resolve_model_data_config(model)
    extra = {}
    if (dataset_info(dataset) or {}).get('key') == 'imagefolder':
        extra['input_img_mode'] = 'L' if data_config['input_size'][0] == 1 else 'RGB'
    data = create_relgraph_dataset(dataset, root=data_dir, split=split, num_samples=num_samples, **extra)
    data.transform = create_transform(**data_config, is_training=False)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=0)
    k = min(5, model.num_classes)
    correct1 = correct5 = seen = 0
    with torch.inference_mode():
        for x, y in tqdm(loader, desc=f'eval {folder.name}', leave=False,
                         disable=None if progress is None else not progress):
            x, y = x.to(device), y.to(device)
            top = model(x).topk(k, dim=1).indices
            correct1 += (top[:, 0] == y).sum().item()
            correct5 += (top == y[:, None]).any(dim=1).sum().item()
            seen += len(y)
    if not seen:
        raise HubError(f'no samples in split {split!r} of {dataset!r}')
    return {
        'top1': 100.0 * correct1 / seen, 'top5': 100.0 * correct5 / seen, 'samples': seen,
        'dataset': dataset, 'split': split, 'param_count': count_params(model),
        'macs': int(model.pretrained_cfg.get('macs') or 0), 'img_size': int(data_config['input_size'][-1]),
        'crop_pct': float(data_config['crop_pct']), 'interpolation': data_config['interpolation'],
        'graph': dict(model.pretrained_cfg.get('graph') or {}),
    }


def check_reload(folder, expected_top1: float, evaluation: Dict[str, Any], tolerance: float = 0.01) -> float:
    """Raise :class:`ReloadMismatchError` unless the reloaded top-1 equals ``expected_top1`` (the trained
    model's) within ``tolerance`` points; returns the difference."""
    diff = abs(float(evaluation['top1']) - float(expected_top1))
    if not diff <= tolerance:
        raise ReloadMismatchError(
            f'{folder}: the model reloaded through local-dir: scores {evaluation["top1"]:.4f}% top-1 on '
            f'{evaluation["samples"]} {evaluation["dataset"]} {evaluation["split"]} samples, the trained model '
            f'{float(expected_top1):.4f}% (difference {diff:.4f} > {tolerance} points): the export lost something')
    return diff


def comparison_row(name: str, evaluation: Dict[str, Any], measured_by: Optional[str] = None) -> Dict[str, Any]:
    """One row of a card's comparison table, from :func:`evaluate_folder`'s result."""
    graph = evaluation.get('graph') or {}
    row = {'model': name, 'C': float(graph.get('C', float('nan'))), 'L': float(graph.get('L', float('nan'))),
           'params': int(evaluation['param_count']), 'macs': int(evaluation.get('macs') or 0),
           'top1': round(float(evaluation['top1']), 3), 'top5': round(float(evaluation['top5']), 3)}
    if measured_by:
        row['measured_by'] = measured_by
    return row


RESULTS_COLUMNS = ('model', 'img_size', 'top1', 'top1_err', 'top5', 'top5_err', 'param_count', 'crop_pct',
                   'interpolation')


def results_row(name: str, evaluation: Dict[str, Any]) -> Dict[str, str]:
    """A row of timm's ``results/results-<dataset>.csv`` format: accuracies and errors in % to 3 decimals,
    param_count in millions to 2 decimals (here the paper's count: only the kept weights)."""
    top1, top5 = float(evaluation['top1']), float(evaluation['top5'])
    return {
        'model': name, 'img_size': str(int(evaluation['img_size'])),
        'top1': f'{top1:.3f}', 'top1_err': f'{100.0 - top1:.3f}', 'top5': f'{top5:.3f}',
        'top5_err': f'{100.0 - top5:.3f}', 'param_count': _millions(evaluation['param_count']),
        'crop_pct': f"{float(evaluation['crop_pct']):.3f}", 'interpolation': evaluation['interpolation'],
    }


def write_results_csv(rows: List[Dict[str, str]], path) -> Path:
    """Write timm-format results rows, best top-1 first (as timm's tables are sorted), atomically."""
    import csv

    path = Path(path)
    rows = sorted(rows, key=lambda r: (-float(r['top1']), r['model']))
    with atomic_open(path) as f:
        writer = csv.DictWriter(f, fieldnames=RESULTS_COLUMNS, lineterminator='\n')
        writer.writeheader()
        writer.writerows(rows)
    return path


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


def read_results_csv(path) -> List[Dict[str, str]]:
    """Rows of a timm-format results CSV (empty when the file does not exist)."""
    import csv

    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def folder_model_name(folder) -> str:
    """The model name (``relgraph_mlp5``, ``relgraph_mlp5_c1.0_l1.0``) of a Hub folder, from its config.json."""
    from .names import join_tag

    config = json.loads((Path(folder) / CONFIG).read_text())
    return join_tag(config['architecture'], config['pretrained_cfg'].get('tag'))


def main(argv=None) -> int:
    import shlex

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog='python -m timm_relgraph.hub', description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    pub = sub.add_parser('publish', help='checkpoint -> Hub folder (and optionally push it)')
    pub.add_argument('checkpoint', help='model_best.pth.tar / last.pth.tar / checkpoint-N.pth.tar / .safetensors')
    pub.add_argument('out_dir', help='new folder to write')
    pub.add_argument('--model', help='architecture name when the checkpoint does not record it')
    pub.add_argument('--model-kwargs', default='{}', help='JSON dict of extra create_model kwargs')
    pub.add_argument('--results', default='{}', help='JSON dict of measured results for the card')
    pub.add_argument('--dataset', default=None, help="training dataset as the trainer names it (default: the run's)")
    pub.add_argument('--evaluate', action='store_true',
                     help="reload the folder through timm's local-dir: and measure top-1/top-5 on --eval-split of "
                          'the dataset; the card records the numbers and this command')
    pub.add_argument('--eval-split', default='validation',
                     help='split to evaluate (validation = the test split of Fashion-MNIST and CIFAR-10)')
    pub.add_argument('--data-dir', default=None, help='dataset folder for --evaluate (default: the run\'s)')
    pub.add_argument('--results-csv', default=None, metavar='CSV',
                     help="add (or replace) this model's row in a timm-format results CSV (implies --evaluate)")
    pub.add_argument('--repo-id', help='org/name on the Hub')
    pub.add_argument('--push', action='store_true', help='upload to --repo-id')
    pub.add_argument('--dry-run', action='store_true', help='list what would be uploaded, upload nothing')
    pub.add_argument('--exist-ok', action='store_true', help='allow uploading to an existing repo')
    pub.add_argument('--private', action='store_true')
    args = parser.parse_args(argv)
    try:
        if (args.push or args.dry_run) and not args.repo_id:
            raise HubError('--push and --dry-run need --repo-id org/name')
        results = json.loads(args.results)
        folder = export_checkpoint(args.checkpoint, args.out_dir, model_name=args.model,
                                   results=results, repo_id=args.repo_id,
                                   model_kwargs=json.loads(args.model_kwargs), dataset=args.dataset)
        print(f'wrote {folder}')
        if args.evaluate or args.results_csv:
            run = json.loads((folder / CONFIG).read_text()).get('relgraph', {})
            dataset = args.dataset or (run.get('dataset') or {}).get('key')
            if not dataset:
                raise HubError('--evaluate needs --dataset: the checkpoint does not record its dataset')
            run_args = {}
            args_yaml = Path(args.checkpoint).parent / 'args.yaml'
            if args_yaml.is_file():
                import yaml
                run_args = yaml.safe_load(args_yaml.read_text()) or {}
            evaluation = evaluate_folder(folder, dataset, split=args.eval_split,
                                         data_dir=args.data_dir or run_args.get('data_dir'), progress=None)
            name = folder_model_name(folder)
            results.update({'dataset': split_text(dataset, args.eval_split, evaluation['samples']),
                            'top-1 (%)': round(evaluation['top1'], 3), 'top-5 (%)': round(evaluation['top5'], 3),
                            'command': 'relgraph publish ' + ' '.join(shlex.quote(a) for a in argv[1:])})
            update_card(folder, results=results, comparison=[comparison_row(name, evaluation)],
                        repo_id=args.repo_id)
            print(f'{name} reloaded from {folder}: top-1 {evaluation["top1"]:.3f}%  top-5 {evaluation["top5"]:.3f}% '
                  f'({evaluation["samples"]} images)')
            if args.results_csv:
                rows = [r for r in read_results_csv(args.results_csv) if r.get('model') != name]
                write_results_csv(rows + [results_row(name, evaluation)], args.results_csv)
                print(f'wrote {args.results_csv}')
        if args.push or args.dry_run:
            files = push_folder(folder, args.repo_id, private=args.private, exist_ok=args.exist_ok,
                                dry_run=args.dry_run)
            verb = 'would upload' if args.dry_run else 'uploaded'
            print(f'{verb} to {args.repo_id}: ' + ', '.join(files))
    except (HubError, json.JSONDecodeError, FileNotFoundError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
