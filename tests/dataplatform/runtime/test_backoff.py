"""The one restart policy (code servers, the fork server, the webserver and the daemon)."""

from dataplatform.runtime.backoff import Backoff


def test_delays_double_up_to_the_maximum():
    backoff = Backoff(maximum=30.0)
    assert [backoff.take() for _ in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_a_process_that_stayed_up_a_minute_restarts_at_once_again():
    backoff = Backoff(maximum=30.0)
    for _ in range(4):
        backoff.take()
    backoff.note_uptime(59.0)  # a crash loop keeps slowing down
    assert backoff.take() == 16.0
    backoff.note_uptime(61.0)
    assert backoff.take() == 1.0
