// Small behaviours of forms on every page, in a static file rather than
// inline handlers, so the Content-Security-Policy can refuse inline script.

// <select data-submit-on-change>: choosing an option submits its form (the
// form keeps a submit button for pages without JavaScript).
document.addEventListener("change", function (event) {
  var field = event.target;
  if (field.matches && field.matches("select[data-submit-on-change]") && field.form) {
    field.form.requestSubmit ? field.form.requestSubmit() : field.form.submit();
  }
});

// The start-a-run form (snapshot page): only the chosen mode's fieldset is
// shown, the others hidden and disabled (so not sent). Without JavaScript
// every fieldset shows, each under its mode's name, and the server uses only
// the chosen mode's fields.
function showRunMode(select) {
  var form = select.form;
  if (!form) return;
  form.querySelectorAll("fieldset[data-mode]").forEach(function (fieldset) {
    var chosen = fieldset.getAttribute("data-mode") === select.value;
    fieldset.hidden = !chosen;
    fieldset.disabled = !chosen;
  });
  form.querySelectorAll("[data-without-js]").forEach(function (note) { note.hidden = true; });
}

document.addEventListener("change", function (event) {
  if (event.target.matches && event.target.matches("select[data-run-mode]")) showRunMode(event.target);
});

function showRunModes() {
  document.querySelectorAll("select[data-run-mode]").forEach(showRunMode);
}
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", showRunModes);
else showRunModes();
// Pages swapped in by htmx (boosted links, history restores) bring their own form.
document.addEventListener("htmx:load", showRunModes);
// Back to the page from the history: the browser may restore another mode.
window.addEventListener("pageshow", showRunModes);
