"""Benchmarks of stepgraph: CPU per page in-process, HTTP throughput, memory and profiles."""
