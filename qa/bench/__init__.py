"""`qa bench`: latency, throughput, ingest, cold start, memory and vector search at scale, with
txtai measured side by side in the same run. `runner.run_benchmark` is the entry point."""
