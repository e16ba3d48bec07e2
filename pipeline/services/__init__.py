"""Local tooling around the pipeline: the Elasticsearch node, Prism and the Flink
cluster, the Python worker pool, and the sample news site the demo and tests serve."""
