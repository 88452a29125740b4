"""The agent form: its settings grouped as the page shows them, with the
limits that keep a team's workflow possible."""

import re

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import Q

from scoring.models import Agent, Candidate
from scoring.models.agents import (
    PREFIX_IDS_FORMAT,
    Backend,
    TrainingTarget,
    api_key_problem,
    check_template,
    default_training_target,
    same_server,
    validate_prefix_ids,
)

# The agent form's fields, grouped as the page shows them.
AGENT_FIELD_GROUPS = [
    (
        "Inference server",
        ["name", "backend", "base_url", "model", "api_key", "clear_api_key", "api_key_env", "priority"],
    ),
    ("Chat template", ["message_template", "memory_template", "prefix_ids", "end_of_turn"]),
    ("Scoring calls", ["score_concurrency", "score_shards", "request_timeout", "score_batch_tokens"]),
    (
        "Background (incremental) scoring",
        ["incremental_enabled", "incremental_max_age", "incremental_response_window",
         "incremental_batch", "weight_alpha"],
    ),
    (
        "Fine-tuning",
        ["training_target", "training_context", "finetune_count", "finetune_min_divergence",
         "required_approvals", "rejections_to_settle", "blind_review"],
    ),
]


# Settings added after agents were first created: left blank (or not sent, by a
# client or a saved page that predates them) they keep the agent's value, a new
# agent's being the default.
# A new agent's training target unless one is chosen (default_training_target).
DEFAULT_TARGET_LABEL = "as the server API has it"
KEEP_WHEN_BLANK = ("rejections_to_settle", "score_batch_tokens", "training_context")

# The agent form's limits on its numbers, (least, most), said in each field's
# help. They replace the database column's range (a positive column's 0, an
# integer column's 2**63 - 1), so each field has one minimum with one message,
# and a bound a person can read. The model's own validators stay within them.
AGENT_NUMBER_LIMITS = {
    # vLLM and SGLang take any integer; alternates go one step beyond it.
    "priority": (-1_000_000, 1_000_000),
    "score_concurrency": (1, 256),
    "score_shards": (1, 64),
    "request_timeout": (1, 24 * 3600),
    "score_batch_tokens": (0, 16 * 1024 * 1024),
    # Up to 30 days; 0 re-scores a memory at every tick.
    "incremental_max_age": (0, 30 * 24 * 3600),
    "incremental_response_window": (1, 10_000),
    "incremental_batch": (1, 1_000),
    "weight_alpha": (0, 1),
    # A real context holds some thousands of entries (200-2,000 responses).
    "finetune_count": (1, 100_000),
    "finetune_min_divergence": (0, 1_000_000),
    # Each approval or rejection is a different person's: a team, not a crowd.
    "required_approvals": (1, 20),
    "rejections_to_settle": (1, 20),
}

# Text that looks like one special token: <|im_end|>, <|eot_id|>, <end_of_turn>, </s>.
_SPECIAL_TOKEN = re.compile(r"<\|[^<>|\s]+\|>|</?[A-Za-z_][\w.-]*>")


def reviewer_count():
    """How many active people may approve or reject candidates now."""
    review = Permission.objects.filter(content_type__app_label="scoring", codename="review_candidate")
    return (
        get_user_model().objects.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(groups__permissions__in=review) | Q(user_permissions__in=review))
        .distinct()
        .count()
    )


def _limit(field, least, most):
    """Make `field`'s range [least, most], replacing the column's own."""
    keep = [v for v in field.validators if not isinstance(v, (MinValueValidator, MaxValueValidator))]
    # Said as the help says it ("1,000,000", not Django's "1000000").
    field.validators = [*keep, MinValueValidator(least, f"Ensure this value is at least {least:,}."),
                        MaxValueValidator(most, f"Ensure this value is at most {most:,}.")]
    field.min_value, field.max_value = least, most
    field.widget.attrs.update(min=least, max=most)
    said = f"From {least:,} to {most:,}."
    field.help_text = f"{field.help_text} {said}".strip() if field.help_text else said


class TemplateField(forms.CharField):
    """A chat template: browsers submit a textarea's line breaks as CRLF, the
    template uses LF. Read as LF, an unchanged template is not "changed"."""

    def to_python(self, value):
        value = super().to_python(value)
        return value.replace("\r\n", "\n") if value else value


def _template_field(model_field, help_text=None):
    field = Agent._meta.get_field(model_field)
    # A textarea keeps the newlines (a text input drops them) and strip=False the
    # trailing one: the template must render exactly what the agent sends. A new
    # agent's form starts from the model's default (a ModelForm does not copy a
    # default onto a field declared here).
    return TemplateField(
        label=field.verbose_name,
        max_length=field.max_length,
        strip=False,
        initial=field.get_default(),
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text=help_text or field.help_text,
    )


def _check_template(template, sample):
    # Browsers submit textarea line breaks as CRLF; the chat template uses LF.
    template = check_template(template.replace("\r\n", "\n"), list(sample))
    try:
        rendered = template.format(**sample)
    except (KeyError, IndexError, ValueError) as e:
        raise ValidationError(
            "Not a valid template (%(error)s). Use only %(names)s in braces; write {{ for a brace.",
            params={"error": e, "names": ", ".join(f"{{{n}}}" for n in sample)},
        ) from None
    if sample["text"] not in rendered:
        raise ValidationError("The template must contain {text}.")
    return template


# Said on the read-only field to everyone who is not a superuser.
KEY_ENV_SUPERUSER_ONLY = (
    "Only a superuser may choose an environment variable for the key: its key goes to whatever host "
    "the agent names, so whoever names the variable decides which host gets that key."
)


class AgentForm(forms.ModelForm):
    # Who edits: the view passes the user, the admin sets it on its form class.
    # Only a superuser may name an environment variable for the key.
    user = None

    # The key is write-only: never rendered back, blank keeps the stored one.
    api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Sent as a Bearer token to the inference server. Leave blank if the server needs none.",
    )
    clear_api_key = forms.BooleanField(label="Remove the stored API key", required=False)
    message_template = _template_field(
        "message_template", "How the agent renders a message: {role} and {text} are replaced. What comes before "
                            "{text} in an assistant message is where memscore finds a response's start.")
    memory_template = _template_field("memory_template")

    class Meta:
        model = Agent
        fields = [name for _, names in AGENT_FIELD_GROUPS for name in names if name != "clear_api_key"]
        labels = {
            "score_concurrency": "Calls in flight",
            "score_shards": "Shards",
            "request_timeout": "Call timeout (seconds)",
            "incremental_enabled": "Score memories in the background",
            "incremental_max_age": "Re-score after (seconds)",
            "incremental_response_window": "Response window",
            "incremental_batch": "Memories per tick",
            "finetune_count": "Last entries to consider",
            "finetune_min_divergence": "Minimum divergence (nats)",
            "required_approvals": "Approvals required before training",
            "rejections_to_settle": "Rejections that reject a candidate",
            "blind_review": "Blind review",
            "training_target": "Send approved samples to",
            "training_context": "Samples' context",
            "score_batch_tokens": "Tokens per batched request (vLLM)",
        }
        widgets = {"prefix_ids": forms.TextInput(attrs={"spellcheck": "false"})}
        # Text that is not JSON gets the same words as JSON of the wrong shape.
        error_messages = {"prefix_ids": {"invalid": PREFIX_IDS_FORMAT}}
        # What each setting does (the allowed range is added after it).
        help_texts = {
            "model": "The model's name on the server, sent with every call (e.g. Qwen/Qwen2.5-7B-Instruct).",
            "incremental_response_window": "Background scoring: how many responses after a memory's appearance "
                                           "its score looks at.",
            "finetune_count": "Fine-tune runs: how many of the last conversation entries they look at.",
            "finetune_min_divergence": "Fine-tune runs: how much worse (nats) a response must be predicted without "
                                       "memories to become a candidate.",
            "required_approvals": "How many reviewers must approve a candidate before it can be sent to training. "
                                  "A change applies to decisions from now on: candidates already approved stay "
                                  "approved.",
        }

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if user is not None:
            self.user = user
        self.creating = not self.instance.pk
        if self.instance.pk:
            # The snapshot API matches the "agent" field of snapshots by this name.
            self.fields["name"].disabled = True
            self.fields["name"].help_text = "Snapshots name their agent, so the name is fixed."
            state = "A key is set." if self.instance.api_key else "No key is stored."
            self.fields["api_key"].help_text = f"{state} Leave blank to keep it as it is."
            if self.instance.api_key_env:
                self.fields["api_key"].help_text += (
                    f" While the key is read from the environment (${self.instance.api_key_env}), "
                    "a key entered here is kept but not sent."
                )
            if not self.instance.api_key:
                del self.fields["clear_api_key"]  # nothing to remove
            self.fields["base_url"].help_text += (
                " Moving the agent to another host removes its API key, stored or read from the "
                "environment: enter the key for the new host."
            )
        else:
            del self.fields["clear_api_key"]
            if "training_target" in self.fields:
                # Left to follow the server API chosen (add_agent's default): a
                # vLLM agent saved with /train failed every job it sent.
                field = self.fields["training_target"]
                field.choices = [("", DEFAULT_TARGET_LABEL), *TrainingTarget.choices]
                field.required, field.initial = False, ""
                field.help_text = ("“As the server API has it”: /train for memscore's, none (export approved "
                                   "samples as JSONL) for vLLM and SGLang, whose stock servers have no /train.")
        self.names_key_env = bool(self.user and self.user.is_superuser)
        if not self.names_key_env and "api_key_env" in self.fields:
            self._key_env_read_only()
        for name, (least, most) in AGENT_NUMBER_LIMITS.items():
            if name in self.fields:
                _limit(self.fields[name], least, most)
        if "required_approvals" in self.fields:
            reviewers = reviewer_count()
            self.fields["required_approvals"].help_text += (
                f" {reviewers} {'person' if reviewers == 1 else 'people'} may review now."
            )
        for name in KEEP_WHEN_BLANK:
            if name in self.fields:  # the admin may show a subset of fields
                self.fields[name].required = False
        # Set by save(): the key was dropped because the agent moved to another host,
        # and the environment variable it was read from, if any.
        self.key_dropped = self.dropped_stored_key = False
        self.dropped_key_env = ""

    def _key_env_read_only(self):
        """Shown, never taken from the request: a disabled field keeps the
        agent's value (nothing for a new agent), whatever is posted."""
        field = self.fields["api_key_env"]
        field.disabled = True
        field.widget.attrs["placeholder"] = "set by a superuser"
        shown = self.instance.api_key_env
        said = f"The key is read from ${shown}. " if shown else ""
        field.help_text = f"{said}{KEY_ENV_SUPERUSER_ONLY}"

    def clean_message_template(self):
        return _check_template(self.cleaned_data["message_template"], {"role": "user", "text": "\x00"})

    def clean_prefix_ids(self):
        # A blank field means no prefix (the column is not nullable).
        value = self.cleaned_data["prefix_ids"]
        if value is None or value == "":
            return []
        # The model skips its validators for "empty" values such as {}: check here.
        validate_prefix_ids(value)
        return value

    def clean_end_of_turn(self):
        # Whitespace around the token would tokenize to more than the one id it must be.
        value = self.cleaned_data["end_of_turn"].strip()
        if not value:
            raise ValidationError("Enter the end-of-turn token's text, e.g. <|im_end|>.")
        # Only the server knows its tokens (the agent page's check asks it), but
        # two special tokens can never be one.
        found = _SPECIAL_TOKEN.findall(value)
        if len(found) > 1:
            raise ValidationError(
                "%(value)s is %(n)s special tokens (%(found)s); the end of a turn is one token, e.g. %(first)s.",
                params={"value": value, "n": len(found), "found": ", ".join(found), "first": found[0]},
            )
        return value

    def clean_api_key(self):
        key = self.cleaned_data["api_key"]
        problem = api_key_problem(key) if key else None
        if problem:
            raise ValidationError(problem, code="header")
        return key

    def clean_memory_template(self):
        return _check_template(self.cleaned_data["memory_template"], {"key": "k", "text": "\x00"})

    def clean(self):
        cleaned = super().clean()
        if self.creating and "training_target" in self.fields and not cleaned.get("training_target"):
            cleaned["training_target"] = default_training_target(cleaned.get("backend") or Backend.MEMSCORE)
        for name in KEEP_WHEN_BLANK:
            if name in self.fields and name not in self.errors and cleaned.get(name) in (None, ""):
                cleaned[name] = getattr(self.instance, name)
        self._refuse_a_posted_key_env()
        if cleaned.get("api_key") and cleaned.get("clear_api_key"):
            self.add_error("clear_api_key", "Either enter a new key or remove the stored one, not both.")
        return cleaned

    def _refuse_a_posted_key_env(self):
        # A browser does not send a disabled field; a request that names another
        # variable is told no rather than saved without it.
        if self.names_key_env or "api_key_env" not in self.fields:
            return
        posted = (self.data.get(self.add_prefix("api_key_env")) or "").strip()
        if posted and posted != self.instance.api_key_env:
            self.add_error("api_key_env", f"{KEY_ENV_SUPERUSER_ONLY} Leave it as it is, or enter the key "
                                          "in the API key field.")

    def save(self, commit=True):
        agent = super().save(commit=False)
        new_key = self.cleaned_data.get("api_key")
        if new_key:
            agent.api_key = new_key
        elif self.cleaned_data.get("clear_api_key"):
            agent.api_key = ""
        elif self.instance.pk:
            # ModelForm copied the blank field onto the instance: restore the stored key.
            agent.api_key = Agent.objects.values_list("api_key", flat=True).get(pk=agent.pk)
        self._drop_key_on_new_host(agent, new_key)
        if commit:
            agent.save()
        return agent

    def _drop_key_on_new_host(self, agent, new_key):
        """Agent.drop_keys_for_new_host: the same edit may give the new host's
        key, typed in, or a variable a superuser names (only they may)."""
        if not self.instance.pk:
            return
        old_url = Agent.objects.values_list("base_url", flat=True).get(pk=agent.pk)
        if same_server(old_url, agent.base_url):
            return
        self.dropped_stored_key, self.dropped_key_env = agent.drop_keys_for_new_host(
            new_key=bool(new_key), new_key_env=self.names_key_env and "api_key_env" in self.changed_data,
        )
        self.key_dropped = self.dropped_stored_key or bool(self.dropped_key_env)

    def key_dropped_message(self, agent):
        """What save() removed when the agent moved to another host, in words."""
        removed = agent.moved_keys_message(self.dropped_stored_key, self.dropped_key_env)
        then = ("the key entered with the move is the one sent" if self.cleaned_data.get("api_key")
                else "enter the key for the new server")
        return f"{agent.name} moved to another host, so {removed}: {then}."

    def warnings(self):
        """What a saved agent's settings may make impossible, in words (the
        settings are kept: reviewers may join later)."""
        said = []
        reviewers = reviewer_count()
        for name, done in (("required_approvals", "approved"), ("rejections_to_settle", "rejected")):
            wanted = self.cleaned_data.get(name)
            if wanted and wanted > reviewers:
                said.append(
                    f"{self.fields[name].label} is {wanted}, but only {reviewers} "
                    f"{'person' if reviewers == 1 else 'people'} may review now: no candidate "
                    f"can be {done} until more reviewers join."
                )
        raised = "required_approvals" in self.changed_data and not self.creating and (
            self.cleaned_data["required_approvals"] > (self.initial.get("required_approvals") or 0))
        if raised:
            waiting = self.instance.candidates.waiting_for_training().count()
            if waiting:
                said.append(
                    f"{waiting} candidate{'s' if waiting != 1 else ''} approved under the earlier rule "
                    f"{'stay' if waiting != 1 else 'stays'} approved and can be sent to training as "
                    f"{'they are' if waiting != 1 else 'it is'}: the new number applies to decisions from now on."
                )
        if "training_context" in self.changed_data and not self.creating:
            kept = self.instance.candidates.exclude(status=Candidate.Status.TRAINED).exclude(
                training_context=self.cleaned_data["training_context"]).count()
            if kept:
                said.append(
                    f"{kept} candidate{'s' if kept != 1 else ''} not yet trained "
                    f"{'were' if kept != 1 else 'was'} made with the earlier samples' context and "
                    f"{'keep' if kept != 1 else 'keeps'} it: the next fine-tune run gives the new one to those "
                    "no one has reviewed; a reviewed candidate keeps the context its reviewers saw."
                )
        if self.cleaned_data.get("weight_alpha") == 0:
            said.append("Weight alpha is 0: a new score never moves a memory's weight, which stays as it is now "
                        "(1 takes the newest score alone).")
        if self.cleaned_data.get("incremental_enabled") and self.cleaned_data.get("incremental_max_age") == 0:
            said.append("Re-score after is 0 seconds: every memory is due at every background sweep, which scores "
                        f"up to {self.cleaned_data.get('incremental_batch')} of them each time.")
        if self.creating or "end_of_turn" in self.changed_data:
            said.append(
                f"Only the server can tell whether the end-of-turn token "
                f"{self.cleaned_data['end_of_turn']} is one token: use “Check connection” on this page."
            )
        return said

    def grouped_fields(self):
        """[(title, [bound field, ...]), ...] in the page's order."""
        return [
            (title, [self[name] for name in names if name in self.fields])
            for title, names in AGENT_FIELD_GROUPS
        ]
