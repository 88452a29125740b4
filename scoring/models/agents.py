"""Agents: an LLM agent whose context memscore scores, and how to reach its inference server."""

import hashlib
import ipaddress
import os
import re
import secrets
import socket
import string
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

DEFAULT_MESSAGE_TEMPLATE = "<|im_start|>{role}\n{text}<|im_end|>\n"
DEFAULT_MEMORY_TEMPLATE = "<|im_start|>memory\n[{key}]\n{text}<|im_end|>\n"
DEFAULT_END_OF_TURN = "<|im_end|>"


class Backend(models.TextChoices):
    """Which API the agent's inference server speaks (scoring.client picks the client)."""

    MEMSCORE = "memscore", "memscore (/score protocol)"
    VLLM = "vllm", "vLLM (unmodified)"
    SGLANG = "sglang", "SGLang (unmodified)"


class TrainingTarget(models.TextChoices):
    """Where approved fine-tuning samples go."""

    TRAIN = "train", "/train (memscore protocol)"
    NONE = "none", "none: export only"


def default_training_target(backend):
    """Where an agent's approved samples go unless told: stock vLLM and SGLang
    servers have no /train, so export only there."""
    return TrainingTarget.TRAIN if backend == Backend.MEMSCORE else TrainingTarget.NONE


class TrainingContext(models.TextChoices):
    """What a fine-tuning sample's context holds before its response."""

    # DESIGN.md's: the context as the agent saw it ("nothing removed").
    AS_SCORED = "as_scored", "as scored: memories included"
    # Context distillation: the model learns to give the response without
    # the memories, which is what closes the all-memories-removed gap.
    WITHOUT_MEMORIES = "without_memories", "without memories"


def key_env_allowed(name):
    """Whether an agent may read its API key from the environment variable
    `name`: only names under the prefix an administrator allows in settings,
    so an operator cannot make the server send DATABASE_URL or SECRET_KEY to
    a host of their choosing."""
    prefix = settings.MEMSCORE_AGENT_KEY_ENV_PREFIX
    # The prefix alone names no agent's key: it would be one key for every agent.
    return (bool(prefix) and name.startswith(prefix) and len(name) > len(prefix)
            and re.fullmatch(r"[A-Z0-9_]+", name) is not None)


def validate_api_key_env(value):
    if value and not key_env_allowed(value):
        prefix = settings.MEMSCORE_AGENT_KEY_ENV_PREFIX
        if prefix and value == prefix:
            raise ValidationError(f"Add the agent's own name after {prefix}, e.g. {prefix}POC: "
                                  "the prefix alone names no variable.")
        raise ValidationError(
            f"Only environment variables named {prefix}… (capitals, digits and _) may hold an agent's key: "
            "the administrator sets that prefix (MEMSCORE_AGENT_KEY_ENV_PREFIX)."
        )


def check_template(template, names):
    """Refuse a chat template that uses anything but {name} for `names`: no
    format specs ({text:>99999999999} would build a huge string while being
    checked), conversions, positions, attributes or indexes. Returns it."""
    try:
        fields = [(field, spec, conversion) for _, field, spec, conversion in string.Formatter().parse(template)
                  if field is not None]
    except ValueError as e:
        raise ValidationError(f"Not a valid template ({e}); write {{{{ for a brace.") from None
    allowed = ", ".join(f"{{{n}}}" for n in names)
    for field, spec, conversion in fields:
        if field not in names or spec or conversion:
            shown = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise ValidationError(f"Use only {allowed} in braces, with nothing else inside them (found {shown}); "
                                  "write {{ for a brace.")
    return template


def same_server(url, other):
    """Whether two base URLs reach the same server (scheme, host and port):
    a stored key may follow a change of path, never a change of host."""
    a, b = urlsplit(url), urlsplit(other)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


PREFIX_IDS_FORMAT = "Enter a JSON list of token ids (non-negative integers), e.g. [1], or []."


def validate_prefix_ids(value):
    if not isinstance(value, list) or not all(isinstance(i, int) and i >= 0 for i in value):
        raise ValidationError(PREFIX_IDS_FORMAT)


# Cloud metadata services answer on link-local addresses (169.254.169.254 on
# AWS, GCP, Azure...), and on these, which are not: AWS's IPv6 one, Alibaba
# Cloud's, and Oracle Cloud Classic's.
METADATA_ADDRESSES = {ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200", "192.0.0.192")}
# The names under which clouds publish their metadata services, refused as
# written (no DNS lookup: what a name resolves to can change after the check).
METADATA_NAMES = {
    "metadata.google.internal", "metadata",  # GCP
    "instance-data", "instance-data.ec2.internal",  # AWS
    "metadata.tencentyun.com",  # Tencent Cloud
    "metadata.platformequinix.com", "metadata.packet.net",  # Equinix Metal: answers by the caller's address
}
# NAT64's well-known prefix: the last 32 bits are an IPv4 address.
NAT64 = ipaddress.ip_network("64:ff9b::/96")


def api_key_problem(key):
    """Why `key` cannot be sent as a Bearer token, in words (never the key
    itself: the words are shown and logged); None when it can. Only visible
    ASCII goes in an HTTP header: a line break (a wrapped copy-paste) or a
    non-breaking space made every call fail with an error quoting the key,
    or never go out at all."""
    bad = [c for c in key if not 0x21 <= ord(c) <= 0x7E]
    if not bad:
        return None
    kinds = sorted({"line breaks" if c in "\r\n" else "spaces or tabs" if c.isascii() and c.isspace()
                    else "control characters" if c.isascii() else "non-ASCII characters (e.g. a non-breaking space)"
                    for c in bad})
    return (f"The API key holds {' and '.join(kinds)}, which an HTTP header cannot carry: "
            "enter it again as the server issued it.")


def base_url_problem(value):
    """Why memscore will not send requests under `value` as an agent's base
    URL, in words; None when it will. Checked when an agent is saved
    (validate_base_url) and by the client before each call, for rows saved
    before a rule (no data migration: their next save asks for a fix)."""
    # Not URLField: inference hosts are often bare names on a LAN ("gpu-1").
    if any(c.isspace() or not c.isprintable() for c in value):
        return "Remove the spaces and control characters from the base URL."
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Enter an http:// or https:// URL with a host, e.g. http://gpu-1:8000/v1"
    if "%" in parts.hostname:
        # http://%41/v1 is not http://A/v1 to every reader: the resolver is given "%41".
        return (f"Remove the percent-escapes (%…) from the host {parts.hostname}: write the server's name "
                "or address as it is, e.g. http://gpu-1:8000/v1")
    problem = _port_problem(parts)
    if problem:
        return problem
    try:
        # The host as the client's httpx reads it (it reads 169。254。169。254 as 169.254.169.254).
        host = httpx.URL(value).host
    except (ValueError, httpx.InvalidURL) as e:
        return f"Not a URL memscore can call ({e}): enter one such as http://gpu-1:8000/v1"
    if "@" in parts.netloc:
        # httpx sends them as Basic auth in place of the Bearer key, and pages show the URL.
        return ("Remove the user name and password (the part before @) from the base URL: every viewer "
                "of the agent's page sees the URL. Enter the server's key in the API key field.")
    before_fragment = value.partition("#")[0]
    extras = [name for name, there in (("query string (?…)", "?" in before_fragment), ("fragment (#…)", "#" in value))
              if there]
    if extras:
        # The client appends each endpoint's path (/v1/models) to the base URL: a
        # query or fragment swallows it, and the request goes to the URL as given.
        return (f"Remove the {' and the '.join(extras)} from the base URL: memscore adds each endpoint's "
                "path after it, e.g. http://gpu-1:8000/v1")
    if host.rstrip(".") in METADATA_NAMES:  # httpx has lower-cased it
        return f"{host} is the name of a cloud metadata service: enter the inference server's address."
    address = literal_address(host)
    if address is not None:
        embedded = address.ipv4_mapped if address.version == 6 else None
        if address.version == 6 and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        # 2852039166 is said as what it is: 2852039166 (169.254.169.254).
        shown = embedded or address
        named = host if host == str(shown) else f"{host} ({shown})"
        if address in METADATA_ADDRESSES or embedded in METADATA_ADDRESSES:
            return f"{named} is a cloud metadata service's address: enter the inference server's address."
        if address.is_link_local or (embedded is not None and embedded.is_link_local):
            return (f"{named} is a link-local address, where cloud metadata services answer: enter the "
                    "inference server's address.")
    return None


def _port_problem(parts):
    """Why the port of a urlsplit() URL is not one to call, in words, or None."""
    try:
        port = parts.port
    except ValueError:  # out of range, or not a number
        port = None
    else:
        if port != 0:
            return None
    written = parts.netloc.rpartition("@")[2].rpartition("]")[2].partition(":")[2]
    return f"{written} is not a port: enter a number from 1 to 65535, e.g. http://gpu-1:8000/v1"


def literal_address(host):
    """The IP address `host` is written as, or None for a name. Read as the
    resolver reads a literal (2852039166, 0xa9fea9fe and 169.254.43518 are
    169.254.169.254), with no DNS lookup."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        return None
    return ipaddress.ip_address(found[0][4][0]) if found else None


def validate_base_url(value):
    problem = base_url_problem(value)
    if problem:
        raise ValidationError(problem)


def shown_url(url):
    """`url` with any user name and password in it hidden (refused since; an
    older row may hold them)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="…@" + parts.netloc.rpartition("@")[2]))


class KeySource(models.TextChoices):
    """Where the key sent to an agent's server comes from (Agent.key_source)."""

    STORED = "stored", "stored"
    ENV = "env", "read from the environment"
    ENV_UNSET = "env_unset", "named variable not set"
    ENV_EMPTY = "env_empty", "named variable empty"
    ENV_REFUSED = "env_refused", "named variable not allowed"
    NONE = "none", "none"


def validate_agent_name(value):
    """An agent is named by its id or its name alike (?agent=, the command
    line's export_samples and send_training): a name of digits only would
    name another agent, the one with that id."""
    if value.isdigit():
        raise ValidationError("A name of digits only reads as another agent's id: add a letter, e.g. agent-7.",
                              code="digits")


class Agent(models.Model):
    """An LLM agent whose context memscore scores, and its inference server."""

    name = models.SlugField(max_length=100, unique=True, validators=[validate_agent_name])
    base_url = models.CharField(
        "inference base URL",
        max_length=500,
        validators=[validate_base_url],
        help_text="The server's root (http://gpu-1:8000) or its OpenAI prefix (http://gpu-1:8000/v1): "
        "either works on every server API.",
    )
    model = models.CharField("model name", max_length=200)
    backend = models.CharField(
        "server API",
        max_length=20,
        choices=Backend.choices,
        default=Backend.MEMSCORE,
        # Plain text: the pages escape help texts (no Markdown, no HTML).
        help_text="vLLM: start it as vllm serve MODEL --enable-prefix-caching. "
        "SGLang: python -m sglang.launch_server --model-path MODEL. "
        "memscore: a server with the /score protocol (the reference server).",
    )
    priority = models.IntegerField(
        "scheduling priority",
        null=True,
        blank=True,
        help_text="Leave blank unless the server schedules by priority (vLLM needs "
        "--scheduling-policy priority, or it answers 400). Score calls send this value; "
        "alternates are sent one step more urgent (vLLM: lower first; SGLang: higher first).",
    )
    # Secret: never rendered in pages, logs or the admin (see admin.AgentForm).
    api_key = models.CharField(max_length=500, blank=True)
    api_key_env = models.CharField(
        "API key environment variable",
        max_length=100,
        blank=True,
        validators=[validate_api_key_env],
        help_text="Read the API key from this environment variable instead of storing it "
        "(only names under the prefix the administrator allows, MEMSCORE_AGENT_KEY_… by default).",
    )
    # SHA-256 of the per-agent token that the snapshot API accepts; the token
    # itself is shown once, when it is issued.
    ingest_token_hash = models.CharField(max_length=64, blank=True, editable=False)

    message_template = models.CharField(max_length=500, default=DEFAULT_MESSAGE_TEMPLATE)
    prefix_ids = models.JSONField(
        "prefix token ids",
        default=list,
        blank=True,
        validators=[validate_prefix_ids],
        help_text="Token ids put before every prompt, e.g. [1] for a model whose chat template "
        "starts with a BOS token (Llama, Mistral). [] for ChatML models (Qwen).",
    )
    end_of_turn = models.CharField(
        "end-of-turn token",
        max_length=100,
        default=DEFAULT_END_OF_TURN,
        help_text="The text of the token that ends a message, as the message template writes it; "
        "it must tokenize to one id (<|im_end|> for ChatML, <|eot_id|> for Llama 3).",
    )
    memory_template = models.CharField(
        max_length=500,
        default=DEFAULT_MEMORY_TEMPLATE,
        help_text="How the agent renders a memory: {key} and {text} are replaced.",
    )

    score_concurrency = models.PositiveSmallIntegerField(
        default=4,
        validators=[MinValueValidator(1), MaxValueValidator(256)],
        help_text="Score calls in flight at once for one run.",
    )
    score_batch_tokens = models.PositiveIntegerField(
        default=65_536,
        validators=[MaxValueValidator(16 * 1024 * 1024)],
        help_text="vLLM only: leave-one-out prompts sent together in one request, up to this many tokens "
        "(vLLM's prefix cache does not serve prompt log-probabilities, so batching saves round trips); "
        "0 sends one prompt per request.",
    )
    score_shards = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(64)],
        help_text="Celery tasks a full-matrix run is fanned out to (they share the concurrency).",
    )
    request_timeout = models.FloatField(
        default=300.0,
        validators=[MinValueValidator(1.0), MaxValueValidator(24 * 3600.0)],
        help_text="Total seconds allowed for one call to the server (1 s to a day).",
    )

    incremental_enabled = models.BooleanField(default=True)
    incremental_max_age = models.PositiveIntegerField(
        default=6 * 3600, help_text="Re-score a memory after this many seconds."
    )
    incremental_response_window = models.PositiveIntegerField(default=20, validators=[MinValueValidator(1)])
    incremental_batch = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1)], help_text="Memories scored per background tick, at most."
    )
    weight_alpha = models.FloatField(
        default=0.3,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Weight of a new score in the moving average.",
    )

    finetune_count = models.PositiveIntegerField(default=200, validators=[MinValueValidator(1)])
    finetune_min_divergence = models.FloatField(
        default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(1e6)]
    )
    required_approvals = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)]
    )
    # How a candidate's reviews settle it: see Candidate's settled_status.
    rejections_to_settle = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)],
        help_text="A candidate is rejected once this many reviewers reject it, whatever its approvals.",
    )
    blind_review = models.BooleanField(
        default=False,
        help_text="A reviewer sees the others' decisions and comments on a candidate only once they "
        "have approved or rejected it.",
    )
    training_target = models.CharField(
        max_length=20,
        choices=TrainingTarget.choices,
        default=TrainingTarget.TRAIN,
        help_text="Stock vLLM and SGLang servers have no /train: choose none there and export "
        "approved samples as JSONL.",
    )
    training_context = models.CharField(
        max_length=20,
        choices=TrainingContext.choices,
        default=TrainingContext.AS_SCORED,
        help_text="What a sample's context holds before its response. Without memories, training teaches "
        "the model what the memories told it, and the re-score after fine-tuning shows the gap closing.",
    )

    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    Backend = Backend
    KeySource = KeySource
    TrainingTarget = TrainingTarget
    TrainingContext = TrainingContext

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def base_url_shown(self):
        return shown_url(self.base_url)

    def drop_keys_for_new_host(self, *, new_key=False, new_key_env=False):
        """A key is the secret of one server: an agent moved to another host
        keeps neither its stored key nor its environment variable, unless the
        same change gives one for the new host (`new_key`, `new_key_env`).
        Otherwise one change could move an agent and the next send another
        host's key there. A new stored key does not keep the variable either:
        get_api_key reads the variable first. Returns (whether the stored key
        was removed, the variable removed or ""); the caller saves."""
        dropped_key = bool(self.api_key) and not new_key
        if dropped_key:
            self.api_key = ""
        dropped_env = self.api_key_env if not new_key_env else ""
        if dropped_env:
            self.api_key_env = ""
        return dropped_key, dropped_env

    def moved_keys_message(self, dropped_key, dropped_env):
        """What drop_keys_for_new_host removed, in words ("" for nothing)."""
        removed = []
        if dropped_key:
            removed.append("its stored API key was removed")
        if dropped_env:
            removed.append(f"it no longer reads its key from the environment (${dropped_env})")
        return " and ".join(removed)

    def get_api_key(self):
        if self.api_key_env:
            # Checked again here: a row saved before the rule, or by hand, must
            # not make the server send another variable to the agent's host.
            return os.environ.get(self.api_key_env, "") if key_env_allowed(self.api_key_env) else ""
        return self.api_key

    def key_source(self):
        """Where get_api_key() finds the key, as a KeySource: a named variable
        is read in place of a stored key, and only from this process's
        environment (the agent's page asks the web server's)."""
        if self.api_key_env:
            if not key_env_allowed(self.api_key_env):
                return KeySource.ENV_REFUSED
            value = os.environ.get(self.api_key_env)
            if value is None:
                return KeySource.ENV_UNSET
            return KeySource.ENV if value else KeySource.ENV_EMPTY
        return KeySource.STORED if self.api_key else KeySource.NONE

    def issue_ingest_token(self):
        """Make a new snapshot-API token, keep only its hash, return it once."""
        token = secrets.token_urlsafe(32)
        self.ingest_token_hash = hashlib.sha256(token.encode()).hexdigest()
        self.save(update_fields=["ingest_token_hash"])
        return token

    def check_ingest_token(self, token):
        if not self.ingest_token_hash or not token:
            return False
        digest = hashlib.sha256(token.encode()).hexdigest()
        return secrets.compare_digest(digest, self.ingest_token_hash)

    def render_node(self, node):
        """The text of one node as the agent sends it to the model."""
        if node.memory_key:
            return self.memory_template.format(key=node.memory_key, text=node.text)
        return self.message_template.format(role=node.role, text=node.text)
