/* The provider key form: shows only the fields that matter for the chosen provider.
   The form works without this file. */
(function () {
  "use strict";
  var form = document.querySelector("[data-credential-form]");
  var hintsNode = document.getElementById("provider-hints");
  if (!form || !hintsNode) return;
  var hints = {};
  JSON.parse(hintsNode.textContent).forEach(function (h) { hints[h.slug] = h; });
  var provider = form.querySelector("[name=provider]");
  var region = form.querySelector("[name=region]");
  var extras = ["api_version", "deployments", "organization", "project"];

  function show(name, visible) {
    var box = form.querySelector('[data-field="' + name + '"]');
    if (box) box.classList.toggle("is-hidden", !visible);
  }

  function optional(name, isOptional) {
    var marker = form.querySelector('[data-field="' + name + '"] .field__optional');
    if (marker) marker.classList.toggle("is-hidden", !isOptional);
  }

  function update() {
    var h = hints[provider.value];
    if (!h) {
      extras.forEach(function (name) { show(name, false); });
      return;
    }
    var codes = h.regions.map(function (r) { return r.code; });
    show("region", codes.length > 1);
    if (region) {
      Array.prototype.forEach.call(region.options, function (option) {
        option.hidden = option.value !== "" && codes.indexOf(option.value) === -1;
      });
      if (region.value && codes.indexOf(region.value) === -1) region.value = "";
    }
    optional("base_url", !h.requires_base_url);
    optional("secret", h.key_optional);
    extras.forEach(function (name) { show(name, h.extras.indexOf(name) !== -1); });
  }

  provider.addEventListener("change", update);
  update();
})();
