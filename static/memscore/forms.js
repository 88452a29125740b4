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
// Now (or once the page has loaded), on pages swapped in by htmx (boosted links
// and history restores bring their own form), and back on the page from the
// history (the browser may restore other values than those last shown).
function onEveryLoad(show) {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", show);
  else show();
  document.addEventListener("htmx:load", show);
  window.addEventListener("pageshow", show);
}
onEveryLoad(showRunModes);

// The groups mode's note counts its groups by the default separator; the
// separator's field carries the snapshot's keys (scoring/forms/start_run.py),
// so a line below the note gives the figures for the separator as typed: the
// groups the run will make and its stage-1 calls (one per group, plus the
// baseline; near-duplicate pairs come on top, as the note says).

// mirrors scoring.maths.group_of
function groupOf(key, separator) {
  if (!separator) return key;
  var at = key.indexOf(separator);
  return at < 0 ? key : key.slice(0, at);
}

function showGroupFigures(input) {
  var note = input.form && input.closest("fieldset") && input.closest("fieldset").querySelector(".mode-note");
  if (!note) return;
  var line = note.nextElementSibling;
  if (!line || !line.hasAttribute("data-group-figures")) {
    line = document.createElement("p");
    line.className = "muted small mode-note";
    line.setAttribute("data-group-figures", "");
    line.setAttribute("aria-live", "polite");
    note.after(line);
  }
  var separator = input.value, fallback = input.getAttribute("data-group-default");
  line.hidden = separator === fallback;
  if (line.hidden) return;
  if (!separator) { line.textContent = "Type a separator to see how many groups it makes."; return; }
  var groups = new Set();
  JSON.parse(input.getAttribute("data-group-keys")).forEach(function (key) { groups.add(groupOf(key, separator)); });
  // textContent: the separator is the person's own text, never markup.
  line.textContent = "By “" + separator + "” as typed: " + groups.size + (groups.size === 1 ? " group, " : " groups, ") +
    (groups.size + 1) + " calls with the baseline (the figures above are for “" + fallback + "”).";
}

document.addEventListener("input", function (event) {
  if (event.target.matches && event.target.matches("input[data-group-keys]")) showGroupFigures(event.target);
});

function showAllGroupFigures() {
  document.querySelectorAll("input[data-group-keys]").forEach(showGroupFigures);
}
onEveryLoad(showAllGroupFigures);
