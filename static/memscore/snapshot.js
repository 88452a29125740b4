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
})();
