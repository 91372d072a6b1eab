import asyncio
from datetime import UTC, datetime

import pytest

from usage_features.domain.scores import Score
from usage_features.http.app import MicroBatcher

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
STORE_TIME = datetime(2026, 2, 20, 6, tzinfo=UTC)


class RecordingScorer:
    """A scorer fake: a score per id, each call recorded; its online store holds now's
    features, or (``stale``) those of ``STORE_TIME``'s day only."""

    def __init__(self, fail: bool = False, stale: bool = False):
        self.calls: list[tuple[list[str], object]] = []
        self.fail = fail
        self.stale = stale

    def score(self, customer_ids, as_of=None):
        self.calls.append((list(customer_ids), as_of))
        if self.fail:
            raise RuntimeError("store down")
        return [Score(c, as_of, "active", "v1", 0.5) for c in customer_ids]

    def online_time(self):
        return (STORE_TIME, "the online store is of another day") if self.stale else (NOW, None)

    def online_problem(self, as_of):
        return None  # the online store answers for the times it is asked

    def online_freshness(self, as_of):
        return None


def run_concurrently(batcher, requests):
    async def main():
        return await asyncio.gather(*(batcher.score(ids, as_of) for ids, as_of in requests))
    return asyncio.run(main())


def ids_of(answers):
    return [[s.customer_id for s in answer.scores] for answer in answers]


def test_concurrent_requests_share_one_scoring_call_and_get_their_own_scores():
    scorer = RecordingScorer()
    results = run_concurrently(MicroBatcher(scorer), [(["a"], None), (["b", "c"], None),
                                                      (["d"], None)])
    assert ids_of(results) == [["a"], ["b", "c"], ["d"]]
    assert scorer.calls == [(["a", "b", "c", "d"], NOW)]
    assert all(answer.note is None for answer in results)


def test_a_request_with_its_own_time_is_scored_alone():
    scorer = RecordingScorer()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    run_concurrently(MicroBatcher(scorer), [(["a"], at), (["b"], None)])
    assert sorted(scorer.calls, key=str) == sorted([(["a"], at), (["b"], NOW)], key=str)


def test_a_batch_on_a_stale_store_is_answered_as_of_its_time_and_every_request_told():
    scorer = RecordingScorer(stale=True)
    results = run_concurrently(MicroBatcher(scorer), [(["a"], None), (["b", "c"], None)])
    assert scorer.calls == [(["a", "b", "c"], STORE_TIME)]
    assert ids_of(results) == [["a"], ["b", "c"]]
    for answer in results:
        assert "another day" in answer.note
        assert {(s.as_of, s.fresh) for s in answer.scores} == {(STORE_TIME, False)}


def test_a_failure_reaches_every_waiting_request():
    batcher = MicroBatcher(RecordingScorer(fail=True))
    with pytest.raises(RuntimeError, match="store down"):
        run_concurrently(batcher, [(["a"], None), (["b"], None)])
