"""Cluster DNS served by the node agent: records from Services and Endpoints, forwarding the rest."""
