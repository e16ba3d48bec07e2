"""Per-host pacing state: a host's last request start leaves the state once it can no
longer delay a request, so the state holds recently fetched hosts, not every host."""

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp

from pipeline.services.runners import prism_args
from transforms.politeness import PaceHostDoFn


@pytest.mark.runner
def test_a_host_pacing_state_is_dropped_after_its_ttl_and_set_again_on_prism():
    stream = (
        TestStream()
        .advance_watermark_to(Timestamp(1000))
        .add_elements(["a1", "b2", "c3", "a4"])
        .advance_watermark_to(Timestamp(1000 + 61))  # past the TTL: a, b and c dropped
        .add_elements(["a5"])  # a fresh state for a, with its own timer
        .advance_watermark_to_infinity()  # drops a again
    )
    options = PipelineOptions(prism_args(streaming=True))
    with beam.Pipeline(options=options) as p:
        out = (
            p
            | stream
            | beam.Map(lambda s: (s[0], s)).with_output_types(tuple[str, str])  # (host, item)
            | beam.ParDo(PaceHostDoFn(min_delay=0.01, forget_after=60))
        )
        assert_that(out, equal_to(["a1", "b2", "c3", "a4", "a5"]))
    counters = p.result.metrics().query()["counters"]
    (dropped,) = [c for c in counters if c.key.metric.name == "host_states_dropped"]
    assert dropped.committed == 4  # 3 only if a's first state had never left
