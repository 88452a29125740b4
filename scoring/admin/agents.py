"""Agents, their snapshots (nodes) and memories (with their score history)."""

from django.contrib import admin

from scoring.admin.base import LoggedAdmin, PartAdmin, ReadOnlyAdmin, short
from scoring.forms import AgentForm
from scoring.importing import restore_memory_texts
from scoring.models import Activity, Agent, Memory, MemoryScore, Node, Snapshot


@admin.register(Agent)
class AgentAdmin(LoggedAdmin):
    # The same form as the agent pages: the key is write-only there too.
    form = AgentForm
    list_display = ["name", "model", "backend", "base_url", "key_state", "incremental_enabled",
                    "created_at"]
    list_filter = ["backend", "incremental_enabled", "training_target"]
    search_fields = ["name", "model", "base_url"]
    readonly_fields = ["key_state", "ingest_token_state", "created_at", "created_by"]
    fieldsets = [
        (None, {"fields": ["name", "backend", "base_url", "model", "priority"]}),
        ("Secrets", {"fields": ["key_state", "api_key", "clear_api_key", "api_key_env",
                                "ingest_token_state"]}),
        ("Chat template", {"fields": ["message_template", "memory_template", "prefix_ids",
                                      "end_of_turn"]}),
        ("Scoring", {"fields": ["score_concurrency", "score_shards", "request_timeout",
                                "score_batch_tokens"]}),
        ("Background scoring", {"fields": ["incremental_enabled", "incremental_max_age",
                                           "incremental_response_window", "incremental_batch",
                                           "weight_alpha"]}),
        ("Fine-tuning", {"fields": ["training_target", "training_context", "finetune_count", "finetune_min_divergence",
                                    "required_approvals", "rejections_to_settle", "blind_review"]}),
        ("Record", {"fields": ["created_at", "created_by"]}),
    ]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        # modelform_factory made this class for this request: AgentForm lets
        # only a superuser name the key's environment variable (the admin is
        # open to staff with the agent permissions too).
        form.user = request.user
        return form

    def get_fieldsets(self, request, obj=None):
        # AgentForm offers to remove a key only where one is stored: not for a
        # new agent, nor one without a key (asking for it there was a 500).
        if obj is not None and obj.api_key:
            return self.fieldsets
        return [(title, {**opts, "fields": [f for f in opts["fields"] if f != "clear_api_key"]})
                for title, opts in self.fieldsets]

    # Beside the form's own "API key" field, where a new key is entered.
    @admin.display(description="current API key")
    def key_state(self, agent):
        if agent.api_key_env:
            return f"from ${agent.api_key_env}"
        return "set" if agent.api_key else "none"

    @admin.display(description="snapshot API token")
    def ingest_token_state(self, agent):
        return "issued (only its hash is kept)" if agent.ingest_token_hash else "none"

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if form.cleaned_data.get("api_key"):
            Activity.record(request.user, "set API key", obj)
        elif form.cleaned_data.get("clear_api_key"):
            Activity.record(request.user, "removed API key", obj)
        if form.key_dropped:
            Activity.record(request.user, "removed API key", obj, reason="moved to another host")
            self.message_user(request, form.key_dropped_message(obj), level="warning")


@admin.register(Snapshot)
class SnapshotAdmin(LoggedAdmin):
    list_display = ["id", "agent", "taken_at", "source", "memory_count", "response_count",
                    "token_count", "imported_by", "imported_at"]
    list_filter = ["source", "agent"]
    list_select_related = ["agent", "imported_by"]
    date_hierarchy = "taken_at"
    search_fields = ["agent__name"]
    raw_id_fields = ["imported_by"]
    readonly_fields = ["agent", "source", "imported_at", "imported_by", "node_count", "memory_count",
                       "response_count", "token_count"]

    def has_add_permission(self, request):
        # Snapshots come in through the API, the upload page or the CLI (validated there).
        return False

    def has_change_permission(self, request, obj=None):
        # As imported: a date set here by hand skipped the import's checks (a
        # snapshot "taken" in 2031 became the agent's latest).
        return False

    # A memory shows the text of the newest snapshot that holds its key:
    # deleting that snapshot left it showing a text no snapshot held any more.
    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        restore_memory_texts(obj.agent)

    def delete_queryset(self, request, queryset):
        agents = list(Agent.objects.filter(pk__in=queryset.values("agent_id")))
        super().delete_queryset(request, queryset)
        for agent in agents:
            restore_memory_texts(agent)


@admin.register(Node)
class NodeAdmin(PartAdmin):
    list_display = ["id", "snapshot", "section", "index", "role", "memory_key", "n_tokens", "text_start"]
    list_filter = ["section"]
    list_select_related = ["snapshot__agent"]
    search_fields = ["memory_key", "text"]
    raw_id_fields = ["snapshot", "memory"]
    exclude = ["token_ids"]
    readonly_fields = ["snapshot", "section", "index", "role", "memory_key", "memory", "text",
                       "timestamp", "n_tokens"]
    show_full_result_count = False

    @admin.display(description="text")
    def text_start(self, node):
        return short(node.text)


class MemoryScoreInline(admin.TabularInline):
    model = MemoryScore
    extra = 0
    can_delete = False
    fields = ["scored_at", "score", "weight", "responses", "run"]
    readonly_fields = fields
    ordering = ["-scored_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Memory)
class MemoryAdmin(PartAdmin):
    list_display = ["key", "agent", "weight_shown", "last_scored", "first_seen"]
    list_filter = ["agent"]
    list_select_related = ["agent"]
    search_fields = ["key", "text"]
    readonly_fields = ["agent", "key", "weight", "last_scored", "first_seen"]
    # Not edited here either: its text is the agent's, as last imported (edited
    # here, the memory's page said the agent had changed it since the run).
    inlines = [MemoryScoreInline]

    @admin.display(description="weight", ordering="weight")
    def weight_shown(self, memory):
        return "—" if memory.weight is None else f"{memory.weight:.3f}"


@admin.register(MemoryScore)
class MemoryScoreAdmin(ReadOnlyAdmin):
    list_display = ["memory", "score", "weight", "responses", "run", "scored_at"]
    list_select_related = ["memory", "run"]
    search_fields = ["memory__key"]
    raw_id_fields = ["memory", "run"]
    date_hierarchy = "scored_at"
