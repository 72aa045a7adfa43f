"""Make the front page's pictures, nbs/images/*.png, from real runs.

Reads
- the toy methods: trained here by `ngebm.toy` with `ngebm_toy`'s defaults (rings, 300 steps, seed 0; seconds on a CPU);
- a digits comparison of CE, JEM and NG-EBM, the folder `--run` (default /tmp/baseline) that
  `ngebm_compare --out /tmp/baseline` writes with the default preset: each method's cached seed-1 evaluation
  (`<method>/seed1/eval.json`: the reliability diagrams, the OOD scores), and JEM's seed-1 best checkpoint
  (SGLD from noise) and training sample grids (`jem/seed1/samples/`).
Writes toys.png, jem_samples.png, reliability.png and ood_jem.png into `--out` (default nbs/images), replacing them,
and prints the numbers that the captions in nbs/index.ipynb rely on. The output is the same, byte for byte, on a rerun.

    python tools/make_images.py --run /tmp/baseline
"""
import argparse, json
from pathlib import Path
import matplotlib; matplotlib.use('Agg')
import matplotlib.pyplot as plt, numpy as np, torch
from matplotlib.collections import PathCollection
from PIL import Image
from torchvision.utils import make_grid

from ngebm.toy import TOY_METHODS, toy_data, train_toy, plot_toys, mean_grad_norm
from ngebm.runs import load_model, run_config, read_log
from ngebm.data import make_loaders
from ngebm.evaluate import jem_samples, plot_reliabilities, ood_report_from

NAMES = {'ce': 'CE', 'jem': 'JEM', 'ngebm': 'NG-EBM'}
OOD_NAMES = {'interp': 'interp (averages of two test digits)', 'uniform': 'uniform noise',
             'constant': 'constant (all black)'}

def save(fig, path:Path, dpi=80):
    "Save a figure as a PNG with a 256-colour palette (a third of the bytes), close it, and print its size."
    fig.savefig(path, dpi=dpi, bbox_inches='tight'); plt.close(fig)
    Image.open(path).convert('RGB').quantize(256).save(path, optimize=True)
    w, h = Image.open(path).size
    print(f"{path}: {w}x{h} px, {path.stat().st_size / 1024:.0f} KB")

def toys(out:Path):
    "The six toy methods on the rings: energy and data, SGLD samples, approximate mass (`plot_toys`, larger type)."
    x, y = toy_data('rings', 1024)
    titles = {'cd': 'CD', 'jem': 'JEM', 'ngebm': 'NG-EBM', 'igebm': 'IGEBM', 'ssm': 'SSM', 'dsm': 'DSM'}
    models = {titles[k]: train_toy(k).model for k in TOY_METHODS}
    rows, names = ['energy E(x), data', 'SGLD samples (red)', '-||dE/dx|| (approx. mass)'], list(models)
    with plt.rc_context({'font.size': 16}):
        fig = plot_toys(models, x)
        for i, ax in enumerate(fig.axes):   # row-major, a column per model: names on top, quantities on the left
            r, name = i // len(names), names[i % len(names)]
            ax.set_title(name if r == 0 else '')
            if i % len(names) == 0: ax.set_ylabel(rows[r])
            if r == 2: ax.set_xlabel(f'mean at data: {mean_grad_norm(models[name], x):.3f}', fontsize=14)
            for c in ax.collections:
                if isinstance(c, PathCollection): c.set_sizes(4 * c.get_sizes())   # dots that show at page size
        fig.tight_layout(); save(fig, out/'toys.png', dpi=56)   # 18 x 9 inches: about 1000 px wide

def grid_image(x:torch.Tensor, nrow:int) -> np.ndarray:
    "Images in [-1, 1] (n, 1, H, W) as one grid in [0, 1], rows of `nrow`, white separators."
    return make_grid((x.float().clamp(-1, 1) + 1) / 2, nrow=nrow, padding=1, pad_value=1)[0].numpy()

def samples(run:Path, out:Path):
    "Test digits, JEM's last training samples (persistent SGLD chains), and its SGLD samples from noise."
    jem = run/'jem'/'seed1'
    dls = make_loaders(run_config(jem).data)
    last = sorted((jem/'samples').glob('epoch_*.png'))[-1]
    torch.manual_seed(0)
    uncond, cond = jem_samples(load_model(jem), dls.shape, dls.n_classes)
    panels = [(grid_image(next(iter(dls.test))[0][:64], 8), 'test digits'),
              (np.asarray(Image.open(last).convert('L')) / 255,
               "JEM's training samples\n(replay-buffer chains, last epoch)"),
              (grid_image(torch.cat([uncond, cond]), len(uncond)),
               'JEM: 100 SGLD steps from noise\nrow 1 E(x), then E(x, y)')]
    fig, axs = plt.subplots(1, 3, figsize=(13, 5.6), gridspec_kw=dict(width_ratios=[1, 1, 8 / 11 * 1.05]))
    for ax, (img, title) in zip(axs, panels):
        ax.imshow(img, cmap='gray', vmin=0, vmax=1, interpolation='nearest')
        ax.set(title=title, xticks=[], yticks=[])
    labels = ['E(x)'] + [f'y={c}' for c in range(dls.n_classes)]
    axs[2].set_yticks(np.arange(len(labels)) * 9 + 5, labels, fontsize=9)   # 8-pixel images, 1-pixel separators
    fig.tight_layout(); save(fig, out/'jem_samples.png')
    print(f"  training samples: {last}")

def evaluation(run:Path, method:str) -> dict:
    "The cached seed-1 evaluation of a method of the comparison, with its raw arrays."
    return json.loads((run/method/'seed1'/'eval.json').read_text())['result']

def reliability(run:Path, out:Path):
    "Reliability diagrams of CE, JEM and NG-EBM, seed 1 each, side by side."
    evals = {NAMES[m]: [evaluation(run, m)] for m in NAMES}
    with plt.rc_context({'font.size': 12}):
        fig = plot_reliabilities(evals, ['seed 1'])
        for ax in fig.axes:
            for t in ax.get_legend().get_texts(): t.set_fontsize(10)
        save(fig, out/'reliability.png')
    for m, (e,) in evals.items(): print(f"  {m}: accuracy {e['accuracy']:.3f}, ECE {e['ece']:.3f}")

def ood(run:Path, out:Path, method='jem', score='log p(x)'):
    "Histograms of one method's `score` on the test digits against each synthetic OOD set, AUROC in each title."
    rep = ood_report_from(evaluation(run, method))
    fig, axs = plt.subplots(1, len(rep.ood_names), figsize=(4.4 * len(rep.ood_names), 3.4), squeeze=False)
    for ax, o in zip(axs[0], rep.ood_names):
        a, b = rep.scores[rep.in_name][score].numpy(), rep.scores[o][score].numpy()
        edges = np.histogram_bin_edges(np.r_[a, b], 40)
        ax.hist(a, edges, density=True, color='tab:green', alpha=.6, label=f'test digits ({len(a)})')
        ax.hist(b, edges, density=True, color='tab:red', alpha=.6, label=f'{o} ({len(b)})')
        auroc = rep.metrics['AUROC'][score][o]
        ax.set(title=f"{OOD_NAMES.get(o, o)}: AUROC {auroc:.3f}", xlabel=f'{NAMES[method]} {score}', yticks=[])
        ax.set_ylim(top=1.3 * ax.get_ylim()[1]); ax.legend(loc='upper left', fontsize=10)
        print(f"  {score} {o}: AUROC {auroc:.3f}; range: test digits [{a.min():.2f}, {a.max():.2f}], "
              f"{o} [{b.min():.2f}, {b.max():.2f}]")
    fig.tight_layout(); save(fig, out/f'ood_{method}.png')

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--run', default='/tmp/baseline', help='folder of an `ngebm_compare` run of ce, jem and ngebm')
    p.add_argument('--out', default=str(Path(__file__).resolve().parent.parent/'nbs'/'images'), help='PNG folder')
    a = p.parse_args()
    run, out = Path(a.run), Path(a.out)
    missing = [str(run/m/'seed1'/'eval.json') for m in NAMES if not (run/m/'seed1'/'eval.json').exists()]
    if missing: raise SystemExit(f"make_images: {run} is not a finished comparison of ce, jem and ngebm: "
                                 f"no {', '.join(missing)}")
    cc = json.loads((run/'compare.json').read_text())
    print(f"reading {run}: ngebm_compare preset {cc['preset']}, methods {', '.join(cc['methods'])}; "
          f"JEM seed 1 has {len(read_log(run/'jem'/'seed1'))} log records")
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    toys(out); samples(run, out); reliability(run, out); ood(run, out)

if __name__ == '__main__': main()
