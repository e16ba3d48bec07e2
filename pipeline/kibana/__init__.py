"""Kibana saved objects: generated from code (``objects``) and checked against a real
Elasticsearch (``check``)."""
