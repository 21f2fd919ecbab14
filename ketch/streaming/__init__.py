"""Wire protocols of the streaming subresources (exec, attach, port-forward), shared by
the apiserver proxy, the node agent's server and the CLI: `channels` (v5.channel.k8s.io
WebSocket framing) and `spdy` (SPDY/3.1 framing carried by port-forward)."""
