// The failure form, a little better with JavaScript; everything works
// without it (the server re-renders the form on every button).
// - Focus goes to the error summary (autofocus does it too, where the
//   browser honours it on a non-form element).
// - The children block shows and hides as "parent" is chosen; hidden, it
//   is also disabled so that nothing of it is posted.
// - "Add a child" and "remove this child" work in place; each child keeps
//   its numbered legend and field IDs (child-N-field) in order.
(function () {
  var summary = document.getElementById("error-summary");
  if (summary && document.activeElement !== summary) summary.focus();

  var form = document.querySelector("form.report");
  if (!form) return;
  var fieldset = form.querySelector("fieldset.children");
  if (!fieldset) return;

  var role = form.querySelector("#role");
  function showChildren() {
    var parent = role && role.value === "parent";
    fieldset.hidden = !parent;
    fieldset.disabled = !parent;
  }
  if (role) {
    role.addEventListener("change", showChildren);
    // The browser may restore a choice (back button): follow it.
    showChildren();
  }

  // child-3-last_name → child-N-last_name, in id, for and aria-describedby.
  function renumberAttr(el, name, n) {
    var v = el.getAttribute(name);
    if (v) el.setAttribute(name, v.replace(/child-\d+-/g, "child-" + n + "-"));
  }
  function renumber() {
    fieldset.querySelectorAll("fieldset.child").forEach(function (row, i) {
      var n = i + 1;
      row.setAttribute("data-index", String(i));
      var number = row.querySelector(".child-number");
      if (number) number.textContent = String(n);
      row.querySelectorAll("[id], [for], [aria-describedby]").forEach(function (el) {
        renumberAttr(el, "id", n);
        renumberAttr(el, "for", n);
        renumberAttr(el, "aria-describedby", n);
      });
      var remove = row.querySelector("button[name=remove_child]");
      if (remove) remove.value = String(i);
    });
  }

  // A fresh row: values, errors and their marks removed.
  function clear(row) {
    row.querySelectorAll("input").forEach(function (input) {
      input.value = "";
      input.removeAttribute("aria-invalid");
      var ids = (input.getAttribute("aria-describedby") || "")
        .split(" ")
        .filter(function (id) { return id && !/-error$/.test(id); });
      if (ids.length) input.setAttribute("aria-describedby", ids.join(" "));
      else input.removeAttribute("aria-describedby");
    });
    row.querySelectorAll(".field-error").forEach(function (p) { p.remove(); });
    row.querySelectorAll(".field-invalid").forEach(function (d) { d.classList.remove("field-invalid"); });
  }

  fieldset.addEventListener("click", function (e) {
    var button = e.target.closest("button");
    if (!button) return;
    var rows = fieldset.querySelectorAll("fieldset.child");
    if (button.name === "add_child") {
      e.preventDefault();
      if (rows.length >= 20) return;
      var copy = rows[rows.length - 1].cloneNode(true);
      clear(copy);
      rows[rows.length - 1].after(copy);
      renumber();
      copy.querySelector("input").focus();
    } else if (button.name === "remove_child") {
      e.preventDefault();
      var row = button.closest("fieldset.child");
      if (rows.length > 1) {
        var next = row.nextElementSibling;
        row.remove();
        renumber();
        var target = next && next.matches("fieldset.child") ? next.querySelector("input") : fieldset.querySelector("button[name=add_child]");
        if (target) target.focus();
      } else {
        clear(row);
        row.querySelector("input").focus();
      }
    }
  });
})();
