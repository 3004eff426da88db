/* Baton UI: small progressive enhancements. Every page works without this file. */
(function () {
  "use strict";

  document.documentElement.classList.replace("no-js", "js");

  // Selects marked data-autosubmit submit their form on change (team and
  // language switchers); the visible fallback button covers no-JS browsers.
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (!el.matches || !el.matches("[data-autosubmit]") || !el.form) return;
    if (typeof el.form.requestSubmit === "function") el.form.requestSubmit();
    else el.form.submit();
  });

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      try {
        document.execCommand("copy") ? resolve() : reject(new Error("copy failed"));
      } catch (err) {
        reject(err);
      } finally {
        document.body.removeChild(area);
      }
    });
  }

  document.addEventListener("click", function (event) {
    // Copy buttons: data-copy="#id-of-element-holding-the-value".
    var btn = event.target.closest && event.target.closest("[data-copy]");
    if (btn) {
      var source = document.querySelector(btn.getAttribute("data-copy"));
      if (!source) return;
      var text = (source.value !== undefined ? source.value : source.textContent).trim();
      var label = btn.querySelector(".copy__label") || btn;
      var original = btn.getAttribute("data-label") || label.textContent;
      btn.setAttribute("data-label", original);
      copyText(text).then(function () {
        label.textContent = btn.getAttribute("data-copied-label") || "Copied";
        btn.classList.add("is-copied");
        setTimeout(function () {
          label.textContent = original;
          btn.classList.remove("is-copied");
        }, 1600);
      }, function () {
        // Could not reach the clipboard: select the text so Ctrl+C works.
        var range = document.createRange();
        range.selectNodeContents(source);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
      });
      return;
    }

    // Dismissible messages.
    var close = event.target.closest && event.target.closest("[data-dismiss]");
    if (close) {
      var box = close.closest(".message");
      if (box) box.remove();
      return;
    }

    // Close open menus when clicking elsewhere.
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      menu.removeAttribute("open");
      var summary = menu.querySelector("summary");
      if (summary) summary.focus();
    });
  });
})();
