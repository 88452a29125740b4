"""The glossary: what each number on the pages means, in one place.

Every threshold in it is read from scoring.maths (and the agent's defaults
from the Agent model) when the page is rendered, never typed into the
template, so the words cannot drift from the formulas. The pages that show
a figure link here, to the term's anchor.
"""

from django.shortcuts import render
from django.urls import path

from scoring import maths
from scoring.models import Agent


def glossary(request):
    defaults = {name: Agent._meta.get_field(name).default
                for name in ("weight_alpha", "incremental_response_window", "finetune_min_divergence")}
    return render(
        request,
        "scoring/glossary.html",
        {
            "zero_threshold": maths.ZERO_THRESHOLD,
            "harmful_nats": maths.HARMFUL_NATS,
            "never_min": maths.NEVER_MATTERS_MIN_RESPONSES,
            "group_threshold": maths.GROUP_THRESHOLD_NATS,
            "redundancy_margin": maths.REDUNDANCY_MARGIN_NATS,
            "defaults": defaults,
        },
    )


urlpatterns = [path("glossary/", glossary, name="glossary")]
