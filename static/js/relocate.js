/* Moving off OpenAI: the choices of a model name that is not ticked (or not typed) are
   disabled, and so is the new API key's name while its checkbox is off. The form works
   without this file; the server ignores the choices of rows that are not ticked. */
(function () {
  "use strict";
  var form = document.querySelector("[data-relocate-form]");
  if (!form) return;

  function setEnabled(controls, on) {
    controls.forEach(function (control) { control.disabled = !on; });
  }

  var updates = [];
  form.querySelectorAll("[data-relocate-row]").forEach(function (row) {
    var use = row.querySelector("input[type=checkbox]");
    var name = row.querySelector("input[type=text]");
    var choices = Array.prototype.slice.call(row.querySelectorAll("select"));
    function update() {
      var on = use ? use.checked : !!(name && name.value.trim());
      row.classList.toggle("is-off", !on);
      setEnabled(choices, on);
    }
    if (use) use.addEventListener("change", update);
    if (name) name.addEventListener("input", update);
    updates.push(update);
  });

  var issueKey = form.querySelector("[name=issue_key]");
  var keyName = form.querySelector("[name=key_name]");
  if (issueKey && keyName) {
    var keyField = keyName.closest("[data-field]") || keyName.parentNode;
    var updateKey = function () {
      keyName.disabled = !issueKey.checked;
      keyField.classList.toggle("is-off", !issueKey.checked);
    };
    issueKey.addEventListener("change", updateKey);
    updates.push(updateKey);
  }

  function updateAll() { updates.forEach(function (update) { update(); }); }

  // Disabled controls are not submitted; send them anyway so that a page shown again
  // with an error keeps the choices (the server skips rows that are not ticked).
  form.addEventListener("submit", function () {
    form.querySelectorAll("select:disabled, input:disabled").forEach(function (control) {
      control.disabled = false;
    });
  });
  // Coming back to the page from the history restores it as it was at submit time.
  window.addEventListener("pageshow", updateAll);
  updateAll();
})();
