"""Edit and approve: a reviewer's corrected response, tokenized by the agent's server."""

from django.core.exceptions import ValidationError

from scoring.client import InferenceClient
from scoring.models import Node


def edit_and_approve(candidate, reviewer, text, *, confirm_reversal=False):
    """Replace the response that will be trained with `text`, then approve.

    The corrected text is rendered with the response node's own role and
    template and tokenized by the agent's server, so its ids match what
    the model would have produced. The original stays beside it.
    Raises ValidationError for bad input and the client's errors when the
    server cannot tokenize. `confirm_reversal`: as Candidate.decide's.
    """
    if not (text or "").strip():
        raise ValidationError({"text": "The corrected response cannot be empty."})
    # Checked before the server call too, so a final candidate costs no request.
    candidate.check_decidable()
    original = candidate.response
    edited_node = Node(role=original.role, memory_key=original.memory_key, text=text)
    with InferenceClient.for_agent(candidate.agent) as client:
        edited_ids = client.tokenize(candidate.agent.render_node(edited_node))
    return candidate.approve_edited(reviewer, text, edited_ids, confirm_reversal=confirm_reversal)
