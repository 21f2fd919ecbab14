"""The lab cluster behind `ketch up` / `ketch down`: a whole cluster on one machine.

`components.py` says what runs (settings, names, addresses, each daemon's
command line, pid file, log file, readiness check); `network.py` makes the lab
bridge and one network namespace per node; `processes.py` starts and stops
daemons by the pids it recorded; `teardown.py` powers the nodes off and finds
what the lab left in the kernel; `cluster.py` brings it all up in stages or
down in reverse. docs/lab.md describes the result.
"""
