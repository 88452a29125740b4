// The snapshot page: a #node-<id> link to a node in a closed <details> (the
// conversation's folded part) opens it and scrolls to the node. The HTML
// standard has browsers do so themselves (Chromium does); this is for
// those that do not yet.
(function () {
  function reveal() {
    var target = location.hash.length > 1 && document.getElementById(location.hash.slice(1));
    var closed = target && target.closest("details:not([open])");
    if (!closed) return;
    for (; closed; closed = closed.parentElement.closest("details:not([open])")) closed.open = true;
    target.scrollIntoView();
  }
  window.addEventListener("hashchange", reveal);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", reveal);
  else reveal();

  // The Hide button at the fold's end (shown, in place of a link to its
  // summary, once html has the fold-js class): closes the fold and scrolls
  // its summary into view, with the focus. Listened for on the document, so
  // a conversation page swapped in by htmx has it too.
  document.documentElement.classList.add("fold-js");
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-fold-hide]");
    var fold = button && button.closest("details");
    if (!fold) return;
    fold.open = false;
    var summary = fold.querySelector(":scope > summary");
    summary.focus({ preventScroll: true });
    summary.scrollIntoView({ block: "center" });
  });
})();
