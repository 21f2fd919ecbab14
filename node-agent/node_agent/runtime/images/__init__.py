"""Images for the built-in runtime: OCI content store, shared unpacked layers, tags, archives.

Entry points: `store.ImageStore`, `busybox.ensure_busybox`, `references.parse`.
"""
