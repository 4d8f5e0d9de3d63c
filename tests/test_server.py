"""flows.server: the temporary Prefect API a command-line ingest starts first."""

from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

from flows.server import prefect_api


def test_a_configured_api_is_used_as_it_is(prefect_harness):
    with prefect_api() as server:
        assert server is None  # the harness's API (an admin's server, in production)


def test_without_a_configured_api_a_temporary_server_starts_and_answers(prefect_harness):
    import httpx

    with temporary_settings(restore_defaults={PREFECT_API_URL}), prefect_api() as server:
        assert server is not None
        try:
            assert get_current_settings().api.url == server.api_url
            server.wait_ready()
            assert httpx.get(f"{server.api_url}/health").json() is True
        finally:
            server.stop()
