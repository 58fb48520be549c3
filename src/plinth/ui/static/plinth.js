// plinth web UI: progressive enhancements only; every page works without this file.
// No inline scripts or handlers exist (the CSP forbids them): behaviour is bound here by
// data attributes.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // A "select all" checkbox toggles every checkbox named by its data-select-all attribute.
  document.querySelectorAll("input[data-select-all]").forEach(function (all) {
    all.addEventListener("change", function () {
      var name = all.getAttribute("data-select-all");
      document.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(
        function (box) { box.checked = all.checked; });
    });
  });
  // A button with data-needs-checked="NAME:N" stays disabled until N boxes NAME are checked.
  document.querySelectorAll("[data-needs-checked]").forEach(function (button) {
    var parts = button.getAttribute("data-needs-checked").split(":");
    var name = parts[0], least = parseInt(parts[1] || "1", 10);
    function update() {
      var n = document.querySelectorAll(
        'input[type=checkbox][name="' + name + '"]:checked').length;
      button.disabled = n < least;
    }
    document.addEventListener("change", update);
    update();
  });
});
