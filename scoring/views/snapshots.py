"""Snapshots: uploading one, and reading one as a conversation."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.text import Truncator

from scoring import modes
from scoring.access import get_agent_for_user, get_snapshot_for_user, require_perm
from scoring.filters import is_id, row_with_id
from scoring.forms import SnapshotUploadForm, StartRunForm
from scoring.importing import SnapshotError, TokenizeError, import_or_find
from scoring.models import Node, Section, Snapshot
from scoring.roles import holds_candidates

# Conversation nodes per page: a 2,000-response context is ~6,000 nodes.
NODES_PER_PAGE = 200
# A page shows its first nodes and folds the rest under one <details>: shown
# whole, the demo's 139-node conversation made the page 20,500 px tall on a
# 390 px phone (11,200 px at 1280 px).
NODES_UNFOLDED = 20


def snapshot_upload(request, agent_id):
    require_perm(request, "scoring.add_snapshot")
    agent = get_agent_for_user(request, agent_id)
    if request.method != "POST":
        form = SnapshotUploadForm(agent=agent)
    else:
        form = SnapshotUploadForm(request.POST, request.FILES, agent=agent)
    if form.is_bound and form.is_valid():
        try:
            snapshot, created = import_or_find(
                agent, form.snapshot_data, by=request.user, source=Snapshot.Source.UPLOAD
            )
        except SnapshotError as e:
            form.add_error("file", e.errors)
        except TokenizeError as e:
            form.add_error(None, f"Nothing was imported: {e}")
        else:
            if created:
                messages.success(
                    request,
                    f"Imported a snapshot of {agent.name}: {snapshot.node_count} nodes, "
                    f"{snapshot.memory_count} memories, {snapshot.response_count} responses.",
                )
            else:
                messages.info(request, "This snapshot was already imported: here it is; nothing new was stored.")
            return redirect("snapshot_detail", pk=snapshot.pk)
    return render(request, "scoring/snapshot_upload.html", {"agent": agent, "form": form})


def _context_nodes(snapshot, section):
    # token_ids can be thousands of ints per node; this page never shows them.
    return (
        Node.objects.filter(snapshot=snapshot, section=section)
        .defer("token_ids")
        .order_by("index")
    )


def snapshot_detail(request, pk):
    snapshot = get_snapshot_for_user(request, pk)

    # ?node=<id> (from a memory's page, a heatmap cell or a candidate) jumps to
    # the page that shows it; the browser opens the page's fold for the
    # #fragment when the node is in it (the HTML standard's details revealing;
    # snapshot.js where a browser lacks it).
    if "node" in request.GET:
        node_id = request.GET["node"]
        node = _node_in(snapshot, node_id)
        if node is None:
            # The snapshot is here, only the node is not: its page says so
            # (a bare 404 said nothing was at /snapshots/<id>/ at all).
            return render_snapshot_page(
                request, snapshot, _start_form(request, snapshot), node_problem=_node_problem(node_id), status=404
            )
        page = node.index // NODES_PER_PAGE + 1 if node.section == Section.CONVERSATION else 1
        return redirect(f"{reverse('snapshot_detail', args=[pk])}?page={page}#node-{node.pk}")

    page = _conversation_page(snapshot, request.GET.get("page"))
    # A history restore wants the whole page back, not the fragment.
    if request.htmx and not request.htmx.history_restore_request:
        ctx = {"snapshot": snapshot, "agent": snapshot.agent, "page": page}
        return render(request, "scoring/snapshot_detail.html#context", ctx)
    return render_snapshot_page(request, snapshot, _start_form(request, snapshot), page=page)


def _start_form(request, snapshot):
    return StartRunForm(snapshot=snapshot) if request.user.has_perm("scoring.start_run") else None


def _node_in(snapshot, node_id):
    """The snapshot's node with this id, or None (another snapshot's node included)."""
    return row_with_id(Node.objects.filter(snapshot=snapshot).only("section", "index"), node_id)


def _node_problem(node_id):
    if is_id(node_id):
        return f"There is no node {node_id} in this snapshot."
    if not node_id:
        return "The link names no node (?node= is empty): it takes a node's id, a whole number."
    return f"“{Truncator(node_id).chars(40)}” is not a node: ?node= takes a node's id, a whole number."


def _conversation_page(snapshot, number):
    """Page `number` of the conversation: page.shown, its first NODES_UNFOLDED
    nodes, and page.folded, the rest, with the memories among them counted
    and their keys listed once each for the fold's summary."""
    paginator = Paginator(_context_nodes(snapshot, Section.CONVERSATION), NODES_PER_PAGE)
    page = paginator.get_page(number)
    nodes = list(page.object_list)
    page.shown, page.folded = nodes[:NODES_UNFOLDED], nodes[NODES_UNFOLDED:]
    page.folded_keys = list(dict.fromkeys(n.memory_key for n in page.folded if n.memory_key))
    page.folded_memories = sum(1 for n in page.folded if n.memory_key)
    return page


def render_snapshot_page(request, snapshot, start_form, *, page=None, node_problem="", status=200):
    """The snapshot's page, with this start form (None: no form): the run
    start view sends a refused form back on it, with what was sent. A
    node_problem (a ?node= link to no node of it) is said above the page."""
    page = page or _conversation_page(snapshot, 1)
    ctx = {"snapshot": snapshot, "agent": snapshot.agent, "page": page, "node_problem": node_problem}
    if page.number == 1:
        # The small sections come before the conversation, on its first page.
        ctx["preamble"] = [
            (section, list(_context_nodes(snapshot, section)))
            for section in (Section.SYSTEM, Section.IDENTITY, Section.JOURNAL)
        ]
    ctx["runs"] = list(snapshot.runs.select_related("created_by"))
    for run in ctx["runs"]:
        run.has_heatmap = modes.get(run.mode).has_heatmap
    ctx["candidate_count"] = snapshot.candidates.count()
    # The top bar's Review badge counts the candidates waiting for this
    # user's review (context_processors.nav): the page says how many of its
    # own those are, so "48" beside a badge's "12" is not read as a contradiction.
    if holds_candidates(request.user):
        ctx["awaiting_review"] = snapshot.candidates.reviewable_by(request.user).count()
    ctx["start_form"] = start_form
    return render(request, "scoring/snapshot_detail.html", ctx, status=status)


urlpatterns = [
    path("agents/<int:agent_id>/snapshots/upload/", snapshot_upload, name="snapshot_upload"),
    path("snapshots/<int:pk>/", snapshot_detail, name="snapshot_detail"),
]
