"""The local lab behind `ketch up` / `ketch down`: a list of daemons started in order.

`components.py` says what runs (command line, pid file, log file, readiness
check per component); `processes.py` starts and stops daemons by the PIDs it
recorded; `cluster.py` brings the list up or down and points the user's
kubeconfig at it. Later issues add the scheduler, controllers, and per-node
runtime daemons and node agents as more entries of the same list.
"""
