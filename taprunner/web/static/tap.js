// TAP pages: the query page's examples fill the editor, and the editor
// completes table and column names. Every page works without this script
// (an example link opens the query page with its query filled). The names come
// from the page itself (the table browser beside the editor), so completion
// costs no request. No inline script anywhere: the pages' CSP forbids it.
// Structure: taprunner/web/pages.py.
"use strict";
(function () {
  var MAX_SHOWN = 8;

  function byId(id) { return document.getElementById(id); }

  // Examples: one click puts the query in the editor.
  function examples(editor) {
    var links = document.querySelectorAll("#example-list a.example-link[data-query]");
    links.forEach(function (link) {
      link.addEventListener("click", function (event) {
        if (event.ctrlKey || event.metaKey || event.shiftKey || event.button) return;
        event.preventDefault();
        editor.value = link.dataset.query;
        editor.focus();
        editor.setSelectionRange(editor.value.length, editor.value.length);
        editor.scrollIntoView({ block: "nearest" });
        editor.dispatchEvent(new Event("input"));
      });
    });
  }

  // Names to complete: tables (qualified and bare) and their columns.
  function names() {
    var tables = [], columns = {};
    document.querySelectorAll("#schema-browser [data-table]").forEach(function (el) {
      var table = el.dataset.table;
      if (el.dataset.column) {
        columns[el.dataset.column] = table;
      } else if (tables.indexOf(table) < 0) {
        tables.push(table);
      }
    });
    var all = tables.map(function (t) { return { text: t, note: "table" }; });
    Object.keys(columns).sort().forEach(function (c) {
      all.push({ text: c, note: "column of " + columns[c] });
    });
    return all;
  }

  function completion(editor) {
    var candidates = names();
    if (!candidates.length) return;
    var list = document.createElement("ul");
    list.id = "completions";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "Table and column names");
    list.hidden = true;
    editor.insertAdjacentElement("afterend", list);
    editor.setAttribute("aria-controls", "completions");
    editor.setAttribute("aria-autocomplete", "list");
    var shown = [], active = -1, start = 0;

    function close() {
      list.hidden = true;
      shown = [];
      active = -1;
      editor.removeAttribute("aria-activedescendant");
    }

    function highlight(index) {
      active = index;
      Array.prototype.forEach.call(list.children, function (item, i) {
        item.setAttribute("aria-selected", i === index ? "true" : "false");
      });
      editor.setAttribute("aria-activedescendant", "completion-" + index);
    }

    function accept(index) {
      var chosen = shown[index];
      var end = editor.selectionStart;
      editor.setRangeText(chosen.text, start, end, "end");
      close();
      editor.focus();
    }

    function update() {
      var caret = editor.selectionStart;
      if (caret !== editor.selectionEnd) return close();
      var before = editor.value.slice(0, caret);
      var word = /[A-Za-z_][\w.]*$/.exec(before);
      if (!word) return close();
      var typed = word[0], lower = typed.toLowerCase();
      // After "alias." complete the column part only.
      var dot = typed.lastIndexOf(".");
      var isTable = candidates.some(function (c) {
        return c.note === "table" && c.text.toLowerCase().indexOf(lower) === 0;
      });
      var part = dot >= 0 && !isTable ? lower.slice(dot + 1) : lower;
      start = caret - (dot >= 0 && !isTable ? typed.length - dot - 1 : typed.length);
      shown = candidates.filter(function (c) {
        var text = c.text.toLowerCase();
        if (dot >= 0 && !isTable && c.note === "table") return false;
        return text.indexOf(part) === 0 && text !== part;
      }).slice(0, MAX_SHOWN);
      if (!shown.length || (!part && dot < 0)) return close();
      list.textContent = "";
      shown.forEach(function (c, i) {
        var item = document.createElement("li");
        item.id = "completion-" + i;
        item.setAttribute("role", "option");
        item.textContent = c.text;
        var note = document.createElement("span");
        note.className = "note";
        note.textContent = " " + c.note;
        item.appendChild(note);
        item.addEventListener("mousedown", function (event) {
          event.preventDefault();
          accept(i);
        });
        list.appendChild(item);
      });
      list.hidden = false;
      highlight(0);
    }

    editor.addEventListener("input", update);
    editor.addEventListener("blur", close);
    editor.addEventListener("keydown", function (event) {
      if (list.hidden) return;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        var step = event.key === "ArrowDown" ? 1 : shown.length - 1;
        highlight((active + step) % shown.length);
      } else if (event.key === "Enter") {
        // Only Enter: Tab keeps moving the focus on (no keyboard trap).
        if (active < 0) return;
        event.preventDefault();
        accept(active);
      } else if (event.key === "Escape") {
        event.preventDefault();
        close();
      }
    });
  }

  function start() {
    var editor = byId("query");
    if (!editor) return;
    examples(editor);
    completion(editor);
    window.tapPage = { ready: true };
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
