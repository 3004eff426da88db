/* The model alias form: an "Add target" button and per-credential model suggestions.
   The form works without this file. */
(function () {
  "use strict";
  var form = document.querySelector("[data-route-form]");
  if (!form) return;
  var rows = form.querySelector("[data-target-rows]");
  var template = form.querySelector("[data-target-template]");
  var total = form.querySelector("[name=targets-TOTAL_FORMS]");
  var max = parseInt(form.querySelector("[name=targets-MAX_NUM_FORMS]").value, 10);
  var addButton = form.querySelector("[data-add-target]");
  var hints = {};
  JSON.parse(document.getElementById("route-model-hints").textContent).forEach(function (h) { hints[h.id] = h.models; });

  // Each credential gets a datalist of its provider's models, for the model input's suggestions.
  Object.keys(hints).forEach(function (id) {
    var list = document.createElement("datalist");
    list.id = "route-models-" + id;
    hints[id].forEach(function (model) {
      var option = document.createElement("option");
      option.value = model;
      list.appendChild(option);
    });
    form.appendChild(list);
  });

  function wire(row) {
    var credential = row.querySelector("select[name$='-credential']");
    var model = row.querySelector("input[name$='-upstream_model']");
    if (!credential || !model) return;
    function update() {
      model.setAttribute("list", hints[credential.value] ? "route-models-" + credential.value : "route-models-all");
    }
    credential.addEventListener("change", update);
    update();
  }

  rows.querySelectorAll("tr").forEach(wire);

  function refreshButton() {
    addButton.hidden = parseInt(total.value, 10) >= max;
  }

  addButton.addEventListener("click", function () {
    var index = parseInt(total.value, 10);
    if (index >= max) return;
    var html = template.innerHTML.replace(/__prefix__/g, String(index));
    var holder = document.createElement("tbody");
    holder.innerHTML = html;
    var row = holder.querySelector("tr");
    var priority = row.querySelector("input[name$='-priority']");
    if (priority) priority.value = String(Math.min(index, 100));
    rows.appendChild(row);
    total.value = String(index + 1);
    wire(row);
    refreshButton();
    var first = row.querySelector("select, input");
    if (first) first.focus();
  });
  refreshButton();
})();
