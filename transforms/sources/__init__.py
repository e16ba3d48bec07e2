"""Archive readers for backfills: WARC files, saved feeds, URL lists, text folders.

Each reader yields the pipeline's own items (``FeedItem`` to fetch, ``Page`` to
extract, ``Article`` ready to normalise) and ``Failure`` records with a reason.
"""
