"""What an agent's base URL may be (security walkthrough, LOW): no query string
or fragment (`http://127.0.0.1:8942/internal/exact/path?token=abc#` made
Check connection fetch exactly that internal path, the appended /v1/models
swallowed), no user name or password (shown to every viewer, and sent by
httpx as Basic auth in place of the Bearer key), and no link-local host,
where cloud metadata services answer. Rows saved before the rules are not
migrated: the client refuses to call them, and the next save asks for a fix."""

import httpx
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from scoring.checks import check_agent
from scoring.client import InferenceClient, PermanentError
from scoring.models import Agent
from tests.test_views_agents import _valid_post


@pytest.mark.parametrize("url, said", [
    ("http://127.0.0.1:8942/internal/exact/path?token=abc#", "query string"),
    ("http://gpu-1:8000/v1?", "query string"),
    ("http://gpu-1:8000/v1#frag", "fragment"),
    ("http://svc:BasicAuthPw123@gpu-1:8000/v1", "API key field"),
    ("http://svc@gpu-1:8000/v1", "API key field"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://169.254.1.1:8000/v1", "link-local"),
    ("http://[fe80::1]:8000/v1", "link-local"),
    ("http://[fd00:ec2::254]/v1", "metadata"),
    ("http://[::ffff:169.254.169.254]/v1", "link-local"),
    # The forms the resolver reads as an address, with no DNS: a number, hex, octal, short.
    ("http://2852039166/v1", "2852039166 (169.254.169.254) is a link-local"),
    ("http://0xa9fea9fe/v1", "link-local"),
    ("http://169.254.43518/v1", "link-local"),
    # httpx reads ideographic full stops as dots.
    ("http://169\u3002254\u3002169\u3002254/v1", "link-local"),
    # The same address under names the clouds publish, and Alibaba Cloud's, which is not link-local.
    ("http://metadata.google.internal/computeMetadata/v1", "metadata.google.internal is the name of a cloud "
                                                           "metadata service: enter the inference server's address"),
    ("http://METADATA.Google.Internal./v1", "metadata service"),
    ("http://metadata/v1", "metadata service"),
    ("http://instance-data:80/latest", "metadata service"),
    ("http://instance-data.ec2.internal/latest", "metadata service"),
    ("http://100.100.100.200/latest/meta-data", "100.100.100.200 is a cloud metadata service's address"),
    ("http://1684301000/v1", "1684301000 (100.100.100.200) is a cloud metadata service's address"),
    ("http://[::ffff:100.100.100.200]/v1", "(100.100.100.200) is a cloud metadata service's address"),
    # A percent-escape in the host reaches the resolver as written (olga saved http://%00/v1).
    ("http://%00/v1", "Remove the percent-escapes"),
    ("http://%41/v1", "Remove the percent-escapes"),
    ("http://a%2Fb/v1", "Remove the percent-escapes"),
    ("http://gpu-1:99999/v1", "99999 is not a port: enter a number from 1 to 65535"),
    ("http://gpu-1:0/v1", "0 is not a port"),
    ("http://[::1]:99999/v1", "99999 is not a port"),
    ("http://gpu-1:80x/v1", "80x is not a port"),
    ("http://gpu 1:8000/v1", "spaces"),
    ("gpu-1:8000/v1", "http://"),
])
def test_it_refuses_a_base_url_that_would_send_requests_elsewhere(cast, url, said):
    response = cast.client_for(cast.operator).post(reverse("agent_create"), _valid_post(base_url=url))

    assert response.status_code == 200
    errors = response.context["form"].errors["base_url"]
    assert said in " ".join(errors)
    # One message, one range: not Python's "(Port out of range 0-65535)" beside ours.
    assert len(errors) == 1 and "0-65535" not in errors[0]
    assert not Agent.objects.filter(name="helper").exists()


@pytest.mark.parametrize("url", [
    "http://gpu-1:8000/v1", "https://inference.example.com/v1/", "http://127.0.0.1:8765",
    "http://10.0.0.5:8000/v1", "http://[::1]:8000/v1", "http://[fd00::1]:8000", "http://gpu-1.lan/v1/path",
    # Names that merely contain a metadata service's, and the port left out after its colon.
    "http://metadata-cache.lan:8000/v1", "http://gpu-1.metadata.example/v1", "http://gpu-1:/v1",
])
def test_it_takes_an_ordinary_base_url(cast, url):
    response = cast.client_for(cast.operator).post(reverse("agent_create"), _valid_post(base_url=url))

    assert response.status_code == 302
    assert Agent.objects.get(name="helper").base_url == url


def test_moving_a_keyed_agent_to_a_bad_port_is_an_error_not_a_500(cast):
    agent = Agent.objects.create(name="poc", base_url="http://gpu-1:8000/v1", model="m", api_key="sk-1")
    response = cast.client_for(cast.operator).post(
        reverse("agent_edit", args=[agent.pk]), _valid_post(name="poc", base_url="http://gpu-1:99999/v1")
    )
    assert response.status_code == 200 and "port" in response.context["form"].errors["base_url"][0]


def test_the_command_line_refuses_it_too(db):
    with pytest.raises(CommandError, match=r"--url: .*query string"):
        call_command("add_agent", "helper", "--url", "http://h:8000/v1?x=1", "--model", "m")
    assert not Agent.objects.exists()


# --- rows saved before the rules -------------------------------------------------

@pytest.fixture
def old_row(db):
    # objects.create does not validate: as a row saved before the rules.
    return Agent.objects.create(name="old", base_url="http://svc:BasicAuthPw123@127.0.0.1:8942/x?token=abc#",
                                model="m", api_key="sk-old")


def test_the_client_refuses_to_call_an_old_rows_url(old_row):
    sent = []
    with InferenceClient.for_agent(old_row) as client:
        client.http = httpx.Client(transport=httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200)))
        with pytest.raises(PermanentError, match="not sent") as refused:
            client.models()
        with pytest.raises(PermanentError, match="not sent"):
            client.complete([1, 2])
    assert sent == []
    # The refusal does not repeat the password it refuses.
    assert "BasicAuthPw123" not in str(refused.value) and "API key field" in str(refused.value)


def test_check_connection_says_why_and_sends_nothing(cast, old_row):
    results = check_agent(old_row)
    assert results[0].ok is False and "not sent" in results[0].message
    assert all(r.ok is None for r in results[1:])
    assert {r.message for r in results[1:]} == {"not checked: memscore does not call this base URL"}

    page = cast.client_for(cast.operator).post(reverse("agent_check", args=[old_row.pk])).content.decode()
    assert "not sent" in page


def test_the_agent_page_hides_an_old_rows_password(cast, old_row):
    page = cast.client_for(cast.viewer).get(reverse("agent_detail", args=[old_row.pk])).content.decode()
    assert "BasicAuthPw123" not in page and "127.0.0.1:8942" in page


def test_the_next_save_of_an_old_row_asks_for_a_fix(cast, old_row):
    client = cast.client_for(cast.operator)
    edit = reverse("agent_edit", args=[old_row.pk])
    response = client.post(edit, _valid_post(name="old", base_url=old_row.base_url, model="m2"))
    assert response.status_code == 200 and "base_url" in response.context["form"].errors

    assert client.post(edit, _valid_post(name="old", base_url="http://127.0.0.1:8942/v1")).status_code == 302
    old_row.refresh_from_db()
    assert old_row.base_url == "http://127.0.0.1:8942/v1"
