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
