"""The site's root: the agents list is where everything starts."""

from django.shortcuts import redirect
from django.urls import path


def home(request):
    return redirect("agent_list")


urlpatterns = [path("", home, name="home")]
