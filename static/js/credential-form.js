/* The provider key forms: show only the fields that matter for the chosen provider, and the
   native dialect URLs only with a custom base URL. The forms work without this file. */
(function () {
  "use strict";

  function fieldBox(form, name) {
    return form.querySelector('[data-field="' + name + '"]');
  }

  function show(form, name, visible) {
    var box = fieldBox(form, name);
    if (box) box.classList.toggle("is-hidden", !visible);
  }

  // A custom server's Messages and Responses URLs: only with a custom base URL (or while
  // they hold a value or an error, so nothing typed disappears).
  function dialectFields(form, alwaysBaseUrl) {
    var base = form.querySelector("[name=base_url]");
    if (!base) return function () {};
    var names = ["messages_base_url", "responses_base_url"];
    function update() {
      var custom = alwaysBaseUrl() || !!base.value.trim();
      names.forEach(function (name) {
        var box = fieldBox(form, name);
        var input = form.querySelector('[name="' + name + '"]');
        if (!box || !input) return;
        var keep = !!input.value.trim() || box.classList.contains("field--invalid");
        box.classList.toggle("is-hidden", !custom && !keep);
      });
    }
    base.addEventListener("input", update);
    update();
    return update;
  }

  var editForm = document.querySelector("[data-credential-dialects]");
  if (editForm) dialectFields(editForm, function () { return false; });

  var form = document.querySelector("[data-credential-form]");
  var hintsNode = document.getElementById("provider-hints");
  if (!form || !hintsNode) return;
  var hints = {};
  JSON.parse(hintsNode.textContent).forEach(function (h) { hints[h.slug] = h; });
  var provider = form.querySelector("[name=provider]");
  var region = form.querySelector("[name=region]");
  var extras = ["api_version", "deployments", "organization", "project"];
  var updateDialects = dialectFields(form, function () {
    var h = hints[provider.value];
    return !!(h && h.requires_base_url);
  });

  function optional(name, isOptional) {
    var marker = form.querySelector('[data-field="' + name + '"] .field__optional');
    if (marker) marker.classList.toggle("is-hidden", !isOptional);
  }

  function update() {
    updateDialects();
    var h = hints[provider.value];
    if (!h) {
      extras.forEach(function (name) { show(form, name, false); });
      return;
    }
    var codes = h.regions.map(function (r) { return r.code; });
    show(form, "region", codes.length > 1);
    if (region) {
      Array.prototype.forEach.call(region.options, function (option) {
        option.hidden = option.value !== "" && codes.indexOf(option.value) === -1;
      });
      if (region.value && codes.indexOf(region.value) === -1) region.value = "";
    }
    optional("base_url", !h.requires_base_url);
    optional("secret", h.key_optional);
    extras.forEach(function (name) { show(form, name, h.extras.indexOf(name) !== -1); });
  }

  provider.addEventListener("change", update);
  update();
})();
