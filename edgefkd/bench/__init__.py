"""benchmark-latency: latency statistics, host description, FLOP counting, the benchmark
loop over runners, and its reports (JSON, CSV, Markdown, latency plot)."""
