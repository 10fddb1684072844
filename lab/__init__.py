"""The rehearsal lab: the reference topology as real services in network namespaces on one machine."""
