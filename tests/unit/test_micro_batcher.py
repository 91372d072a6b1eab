import asyncio
from datetime import UTC, datetime

import pytest

from usage_features.http.app import MicroBatcher


class RecordingScorer:
    """A scorer fake: echoes ids, records each call."""

    def __init__(self, fail: bool = False):
        self.calls: list[tuple[list[str], object]] = []
        self.fail = fail

    def score(self, customer_ids, as_of=None):
        self.calls.append((list(customer_ids), as_of))
        if self.fail:
            raise RuntimeError("store down")
        return [f"score:{c}" for c in customer_ids]

    def online_problem(self, as_of):
        return None  # the online store holds every time

    def online_freshness(self, as_of):
        return None


def run_concurrently(batcher, requests):
    async def main():
        return await asyncio.gather(*(batcher.score(ids, as_of) for ids, as_of in requests))
    return asyncio.run(main())


def test_concurrent_requests_share_one_scoring_call_and_get_their_own_scores():
    scorer = RecordingScorer()
    results = run_concurrently(MicroBatcher(scorer), [(["a"], None), (["b", "c"], None),
                                                      (["d"], None)])
    assert results == [["score:a"], ["score:b", "score:c"], ["score:d"]]
    assert scorer.calls == [(["a", "b", "c", "d"], None)]


def test_a_request_with_its_own_time_is_scored_alone():
    scorer = RecordingScorer()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    run_concurrently(MicroBatcher(scorer), [(["a"], at), (["b"], None)])
    assert sorted(scorer.calls, key=str) == sorted([(["a"], at), (["b"], None)], key=str)


def test_a_failure_reaches_every_waiting_request():
    batcher = MicroBatcher(RecordingScorer(fail=True))
    with pytest.raises(RuntimeError, match="store down"):
        run_concurrently(batcher, [(["a"], None), (["b"], None)])
