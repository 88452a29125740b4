// Keyboard shortcuts on a candidate's page. Every shortcut is an element that
// carries data-key: a button or link is clicked, a text box (data-key-action=
// "focus") is focused. Elements are looked up on each key press because htmx
// swaps the forms. No page text is ever inserted as HTML.
//
// The page has one comment box (c focuses it) and the rejection reads that
// box: c, type the reason, Esc, r rejects with it. On the candidate list,
// a [data-select-all] checkbox ticks every [data-selectable] one.
(function () {
  "use strict";

  function isTyping(el) {
    return !!el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  function focusField(field) {
    var details = field.closest("details");
    if (details) details.open = true;
    field.focus();
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    var active = document.activeElement;
    if (event.key === "Escape" && isTyping(active)) {
      active.blur();
      return;
    }
    if (isTyping(event.target) || !/^[a-z]$/.test(event.key)) return;

    var target = document.querySelector('[data-key="' + event.key + '"]');
    if (!target) return;
    event.preventDefault();

    if (target.getAttribute("data-key-action") === "focus") {
      focusField(target);
      return;
    }
    // Reject needs a comment: an empty comment box gets the focus instead.
    var requiredId = target.getAttribute("data-requires");
    var required = requiredId && document.getElementById(requiredId);
    if (required && !required.value.trim()) {
      required.setAttribute("placeholder", "Say why, then press Esc and r (or click Reject).");
      focusField(required);
      return;
    }
    target.click();
  });

  // On a phone the context scrolls inside its card: it opens at its end,
  // the nodes just before the response (the memory and the question), not
  // at the oldest shown.
  function contextAtItsEnd() {
    var context = document.getElementById("candidate-context");
    if (context && context.scrollHeight > context.clientHeight) context.scrollTop = context.scrollHeight;
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", contextAtItsEnd);
  else contextAtItsEnd();

  document.addEventListener("change", function (event) {
    var all = event.target;
    if (!all.matches || !all.matches("input[data-select-all]")) return;
    document.querySelectorAll("input[data-selectable]").forEach(function (box) {
      box.checked = all.checked;
    });
  });
})();
