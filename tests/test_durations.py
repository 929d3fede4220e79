"""The one Prometheus duration formatter (pdobs.core.promql), used by the config's messages, the
simulator's promtool files and live endpoints, and the benchmarks."""

import pytest

from pdobs.core import promql


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (0.5, "500ms"), (1.5, "1s500ms"), (15, "15s"), (60, "1m"), (90, "1m30s"),
    (870, "14m30s"), (3600, "1h"), (5400, "1h30m"), (86400, "24h"),
])
def test_the_shortest_duration_is_written(seconds, text):
    assert promql.format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0.001, 0.25, 1, 29.5, 59.999, 61, 3599, 3601, 7322.5])
def test_what_is_written_reads_back_the_same(seconds):
    assert promql.duration_seconds(promql.format_duration(seconds)) == pytest.approx(seconds)


def test_a_negative_duration_is_refused():
    with pytest.raises(ValueError, match="cannot be negative"):
        promql.format_duration(-1)
