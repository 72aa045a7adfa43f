"""Execute notebooks in place as `nbdev_test` does (cells flagged slow or cuda are skipped and keep their committed outputs),
and store every executed cell's output, so that the docs show what the cells print.
Usage: python tools/run_cells.py nbs/17_compare.ipynb [...]  (run from the repository root; then `nbdev_clean`)."""
import os, re, sys
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell

SKIP = ('slow', 'cuda')

def skipped(cell) -> bool:
    "A cell nbdev_test skips by default: one flagged slow or cuda."
    return any(re.match(rf'^#\|\s*{f}\s*$', l) for l in cell.source.splitlines() for f in SKIP)

def run(path:Path):
    nb, here = read_nb(path), Path.cwd()
    os.chdir(path.parent)
    try: CaptureShell().run_all(nb, exc_stop=True, preproc=skipped)
    finally: os.chdir(here)
    write_nb(nb, path)

if __name__ == '__main__':
    for p in sys.argv[1:]: run(Path(p).resolve()); print('executed', p)
