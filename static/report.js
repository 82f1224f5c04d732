// Adds and removes child rows of the failure form in place. Without
// JavaScript the same buttons post the form and the server re-renders it.
(function () {
  var form = document.querySelector("form.report");
  if (!form) return;
  var fieldset = form.querySelector("fieldset.children");
  if (!fieldset) return;
  function renumber() {
    fieldset.querySelectorAll(".child").forEach(function (row, i) {
      var title = row.querySelector(".child-title");
      if (title) title.textContent = title.textContent.replace(/\d+$/, String(i + 1));
      var remove = row.querySelector("button[name=remove_child]");
      if (remove) remove.value = String(i);
    });
  }
  // Children are asked of parents only; without JavaScript the block
  // always shows and the server ignores it for other roles.
  var role = form.querySelector("#role");
  function showChildren() {
    fieldset.hidden = role && role.value !== "parent";
  }
  if (role) {
    role.addEventListener("change", showChildren);
    showChildren();
  }
  fieldset.addEventListener("click", function (e) {
    var button = e.target.closest("button");
    if (!button) return;
    var rows = fieldset.querySelectorAll(".child");
    if (button.name === "add_child") {
      e.preventDefault();
      var copy = rows[rows.length - 1].cloneNode(true);
      copy.querySelectorAll("input").forEach(function (input) { input.value = ""; });
      copy.querySelectorAll(".field-error").forEach(function (p) { p.remove(); });
      rows[rows.length - 1].after(copy);
      renumber();
      copy.querySelector("input").focus();
    } else if (button.name === "remove_child") {
      e.preventDefault();
      if (rows.length > 1) {
        button.closest(".child").remove();
      } else {
        rows[0].querySelectorAll("input").forEach(function (input) { input.value = ""; });
      }
      renumber();
    }
  });
})();
