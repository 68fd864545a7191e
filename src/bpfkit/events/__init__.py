"""Events from BPF programs: trace_pipe lines, perf buffer and ring buffer records.

Decoding is pure (bytes and strings in, records out); readers add the I/O around it.
"""
