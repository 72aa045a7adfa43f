"""Time the README's main job, `ngebm_compare` with no arguments but an output folder, and keep its tables.
Usage: python tools/time_default_run.py OUT [extra ngebm_compare flags]   (run it alone: other jobs distort the time)
Writes OUT/timing.json (wall clock, peak memory, the machine's load before and after, torch and thread count) beside the run."""
import json, os, platform, resource, subprocess, sys, time
from pathlib import Path
import torch
from ngebm.runs import write_text_atomic

def main(out:str, *flags):
    out = Path(out); load0 = os.getloadavg()
    t0 = time.perf_counter()
    res = subprocess.run(['ngebm_compare', '--out', str(out), '--no_progress', *flags], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode: sys.exit(f"ngebm_compare failed ({res.returncode}):\n{res.stderr[-3000:]}")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024   # Linux: KiB
    timing = dict(command=' '.join(['ngebm_compare', *flags]), wall_seconds=wall, peak_rss_mb=peak_mb,
                  load_before=load0, load_after=os.getloadavg(), torch=torch.__version__, threads=torch.get_num_threads(),
                  cpus=os.cpu_count(), machine=platform.machine())
    write_text_atomic(out/'timing.json', json.dumps(timing, indent=1))
    print(json.dumps(timing, indent=1))

if __name__ == '__main__': main(*sys.argv[1:])
