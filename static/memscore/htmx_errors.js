// Says so when an htmx request fails. htmx leaves the page as it was when the
// answer is a 4xx/5xx (htmx:responseError) or there is none (htmx:sendError):
// a click on Reject seemed to do nothing, and the decision was not recorded.
// The message goes in #request-problem (base.html: role="alert", kept in view
// below the top bar); the form is left as it was, so what was typed stays.
//
// A request the user did not make (a panel's poll) never takes them off the
// page: when it finds them logged out (the server answers with HX-Redirect to
// the login page, memscore_site.middleware), the message links to the login
// page instead, so a comment being typed is not dropped. A request the user
// made follows the redirect.
(function () {
  "use strict";

  var REASONS = {
    400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
    413: "Content Too Large", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout"
  };

  function region() {
    return document.getElementById("request-problem");
  }

  // A poll (hx-trigger="every 4s") is issued without a triggering event.
  function byUser(detail) {
    return !!(detail.requestConfig && detail.requestConfig.triggeringEvent);
  }

  function sends(detail) {
    return (detail.requestConfig && detail.requestConfig.verb || "get").toLowerCase() !== "get";
  }

  function holdsTypedText(root) {
    if (!root) return false;
    return Array.prototype.some.call(
      root.querySelectorAll("textarea, input[type=text], input[type=search], input:not([type])"),
      function (field) { return field.value.trim() !== ""; }
    );
  }

  function statusName(status) {
    return status + (REASONS[status] ? " " + REASONS[status] : "");
  }

  // What happened: `status` 0 when no answer came.
  function cause(status) {
    if (status === 0) return "the server could not be reached";
    if (status === 403) return "the server refused it (" + statusName(status) + "), most likely because this page is out of date";
    if (status === 404) return "it is no longer there (" + statusName(status) + "): it may have been deleted";
    if (status >= 500) return "the server failed (" + statusName(status) + ")";
    return "the server refused it (" + statusName(status) + ")";
  }

  function message(detail, status) {
    var form = detail.elt && (detail.elt.closest("form") || detail.elt.form);
    var typed = holdsTypedText(form);
    if (!byUser(detail)) {
      return "This page stopped updating: " + cause(status) + ". " +
        (status === 0 ? "What it shows may be out of date; it updates again once the server answers."
          : "Reload the page to see it as it is now.");
    }
    if (!sends(detail)) {
      return "Could not load it: " + cause(status) + ". " +
        (status === 0 ? "Check your connection, then try again." : "Reload the page and try again.");
    }
    if (status === 0) {
      return "Not sent: " + cause(status) + ". Check your connection, then try again." +
        (typed ? " What you typed is still in the form." : "");
    }
    var lead = status >= 500 ? "This may not have been saved: " : "Not saved: ";
    var advice = status >= 500 ? "Reload the page to see what was saved, then try again if need be."
      : "Reload the page and try again.";
    return lead + cause(status) + ". " + advice +
      (typed ? " What you typed is still in the form: copy it before you reload." : "");
  }

  // Where focus goes back to once the message is dismissed: the button that
  // sent the request (the form is left as it was), else the page's main part;
  // removing the focused Dismiss button would leave it on the page's body, and
  // the next Tab at its top.
  var returnTo = null;

  function sender(detail) {
    var event = detail.requestConfig && detail.requestConfig.triggeringEvent;
    return (event && event.submitter) || detail.elt;
  }

  function dismiss() {
    var back = returnTo;
    returnTo = null;
    clear();
    if (back && back.isConnected && !back.disabled && back.matches("a[href], button, input, select, textarea")) {
      back.focus();
      return;
    }
    var main = document.querySelector("main");
    if (main) {
      main.setAttribute("tabindex", "-1");
      main.focus();
    }
  }

  // `link`: an optional {href, text} after the message; `from`: the element
  // that sent a user's request.
  function show(text, source, link, from) {
    var box = region();
    if (!box) return;
    // A poll failing every few seconds says it once, and never hides what a
    // user's own request was told. A user's request failing again says it
    // again (a screen reader hears it), though the words are the same.
    if (source === "poll" && (box.getAttribute("data-source") === "user" || box.getAttribute("data-text") === text)) {
      return;
    }
    var bar = document.querySelector(".topbar");
    box.style.top = (bar ? bar.offsetHeight : 0) + "px";

    var inner = document.createElement("div");
    var p = document.createElement("p");
    p.textContent = text;
    if (link) {
      var a = document.createElement("a");
      a.href = link.href;
      a.textContent = link.text;
      p.append(" ", a);
    }
    var button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.textContent = "Dismiss";
    button.addEventListener("click", dismiss);
    inner.append(p, button);
    box.replaceChildren(inner);
    box.setAttribute("data-source", source);
    box.setAttribute("data-text", text);
    if (source === "user") returnTo = from || null;
  }

  function clear() {
    var box = region();
    if (!box) return;
    box.replaceChildren();
    box.removeAttribute("data-source");
    box.removeAttribute("data-text");
  }

  document.addEventListener("htmx:responseError", function (event) {
    var user = byUser(event.detail);
    show(message(event.detail, event.detail.xhr.status), user ? "user" : "poll", null, user && sender(event.detail));
  });

  document.addEventListener("htmx:sendError", function (event) {
    var user = byUser(event.detail);
    show(message(event.detail, 0), user ? "user" : "poll", null, user && sender(event.detail));
  });

  // Answered: a request of the user's clears any message, a poll only a poll's.
  document.addEventListener("htmx:afterRequest", function (event) {
    if (!event.detail.successful) return;
    var box = region();
    if (byUser(event.detail) || (box && box.getAttribute("data-source") === "poll")) clear();
  });

  document.addEventListener("htmx:beforeOnLoad", function (event) {
    var detail = event.detail;
    var box = region();
    var to = detail.xhr.getResponseHeader("HX-Redirect");
    var login = box && box.getAttribute("data-login-url");
    if (byUser(detail) || !to || !login || to.indexOf(login) !== 0) return;
    event.preventDefault();
    show("You have been logged out, so this page no longer updates and nothing sent from it is saved." +
      (holdsTypedText(document.querySelector("main")) ? " Copy what you typed before you log in again." : ""),
      "poll", { href: to, text: "Log in again" });
  });
})();
