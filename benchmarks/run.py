"""Run every benchmark (`make bench`)."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# The short variants: `make bench` should take minutes; run a script alone for the full figures
# (benchmarks/epcis.py captures a million events by default).
for script, short in (("declarations.py", []), ("epcis.py", ["--events", "36000", "--queries", "200"])):
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script), *short, *sys.argv[1:]], check=True)

# The cbec batch path's quick variant (the full one: benchmarks/cbec.py --parcels 1000000).
print("== cbec.py --parcels 20000", flush=True)
subprocess.run([sys.executable, str(HERE / "cbec.py"), "--parcels", "20000", "--small", "5000"], check=True)
