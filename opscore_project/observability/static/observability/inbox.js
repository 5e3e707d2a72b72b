// Inbox: lists the human tasks waiting for the user (polling the inbox API) and answers them through the API.
// An input task's form is generated from its inputSchema (string, number, integer, boolean, enum, nested
// object); an approval gets one button per option and a comment. Cards being edited are never redrawn.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("inbox-config").textContent);
  var list = document.getElementById("inbox-items");
  var empty = document.getElementById("inbox-empty");
  var status = document.getElementById("inbox-status");
  var csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  var cards = {}; // taskRunId -> card element

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function field(path, name, schema, required) {
    var wrap = el("div", { "class": "field", "data-path": path });
    var label = el("label", {});
    var caption = (schema.title || name) + (required ? " *" : "");
    var input;
    if (schema.type === "object") {
      var set = el("fieldset", { "class": "nested", "data-path": path });
      set.appendChild(el("legend", {}, caption));
      fields(set, path, schema);
      wrap.appendChild(set);
      return wrap;
    }
    if (schema.enum) {
      input = el("select", { name: path });
      if (!required) { input.appendChild(el("option", { value: "" }, "—")); }
      schema.enum.forEach(function (option, index) {
        input.appendChild(el("option", { value: String(index) }, String(option)));
      });
    } else if (schema.type === "boolean") {
      input = el("input", { type: "checkbox", name: path });
      if (schema.default === true) { input.checked = true; }
    } else if (schema.type === "number" || schema.type === "integer") {
      input = el("input", { type: "number", name: path, step: schema.type === "integer" ? "1" : "any" });
      if (schema.minimum !== undefined) { input.min = schema.minimum; }
      if (schema.maximum !== undefined) { input.max = schema.maximum; }
    } else {
      input = el(schema.maxLength && schema.maxLength > 200 ? "textarea" : "input", { name: path });
      if (input.tagName === "INPUT") { input.type = "text"; }
      if (schema.maxLength !== undefined) { input.maxLength = schema.maxLength; }
    }
    if (schema.default !== undefined && schema.type !== "boolean") {
      input.value = schema.enum ? String(schema.enum.indexOf(schema.default)) : String(schema.default);
    }
    input.dataset.kind = schema.enum ? "enum" : schema.type;
    label.appendChild(el("span", {}, caption));
    label.appendChild(input);
    wrap.appendChild(label);
    if (schema.description) { wrap.appendChild(el("small", { "class": "muted" }, schema.description)); }
    wrap.appendChild(el("small", { "class": "field-error", "data-error-for": path }));
    return wrap;
  }

  function fields(container, path, schema) {
    var required = schema.required || [];
    Object.keys(schema.properties || {}).forEach(function (name) {
      container.appendChild(field(path + "." + name, name, schema.properties[name], required.indexOf(name) >= 0));
    });
  }

  // The form's value, following the schema: empty optional fields are left out.
  function collect(form, path, schema) {
    var value = {};
    Object.keys(schema.properties || {}).forEach(function (name) {
      var sub = schema.properties[name];
      var subPath = path + "." + name;
      if (sub.type === "object") { value[name] = collect(form, subPath, sub); return; }
      var input = form.elements[subPath];
      if (sub.type === "boolean" && !sub.enum) { value[name] = input.checked; return; }
      if (input.value === "") { return; }
      if (sub.enum) { value[name] = sub.enum[Number(input.value)]; }
      else if (sub.type === "number" || sub.type === "integer") { value[name] = Number(input.value); }
      else { value[name] = input.value; }
    });
    return value;
  }

  function showErrors(card, body) {
    card.querySelectorAll(".field-error").forEach(function (node) { node.textContent = ""; });
    var general = card.querySelector(".card-error");
    general.textContent = body.message || "Not answered.";
    Object.keys(body.errors || {}).forEach(function (path) {
      var target = card.querySelector('[data-error-for="' + path + '"]');
      if (target) { target.textContent = body.errors[path].join(" "); }
      else { general.textContent += " " + path + ": " + body.errors[path].join(" "); }
    });
  }

  function submit(card, task, body) {
    card.classList.add("busy");
    var url = config.answerUrl.replace("SESSION", encodeURIComponent(task.sessionId))
      .replace("TASK", encodeURIComponent(task.taskId));
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json", "X-CSRFToken": csrf, "X-OpsCore-Interface": "dashboard",
        "Idempotency-Key": card.dataset.key,
      },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.json().then(function (answer) { return { ok: response.ok, answer: answer }; });
    }).then(function (result) {
      card.classList.remove("busy");
      if (!result.ok) { showErrors(card, result.answer); return; }
      card.classList.add("answered");
      card.querySelector(".card-error").textContent = "";
      card.querySelector("form").replaceWith(el("p", { "class": "answered-note" },
        "Answered by " + result.answer.answeredBy + ": " + JSON.stringify(result.answer.result)));
      window.setTimeout(function () { remove(task.taskRunId); }, 4000);
    }).catch(function () {
      card.classList.remove("busy");
      card.querySelector(".card-error").textContent = "Could not reach Ops-Core; try again.";
    });
  }

  function render(task) {
    var card = el("article", { "class": "inbox-card kind-" + task.kind, "data-task-run": task.taskRunId,
                               "data-task": task.taskId });
    card.dataset.key = "dashboard-" + task.taskRunId + "-" + Math.random().toString(36).slice(2);
    var head = el("header", {});
    var link = el("a", { href: config.sessionUrl.replace("SESSION", task.sessionId) }, task.workflowId || "session");
    head.appendChild(el("span", { "class": "badge badge-waiting_for_input" }, task.kind));
    head.appendChild(el("code", {}, task.taskId));
    head.appendChild(document.createTextNode(" in "));
    head.appendChild(link);
    if (task.timeoutAt) {
      head.appendChild(el("span", { "class": "muted small" },
        " · " + (task.onTimeout || "fail") + " at " + task.timeoutAt.replace("T", " ").slice(0, 19)));
    }
    card.appendChild(head);
    card.appendChild(el("p", { "class": "prompt" }, task.prompt));
    var form = el("form", { novalidate: "" });
    if (task.kind === "approval") {
      var comment = el("textarea", { name: "comment", rows: "2", placeholder: "Comment (optional)" });
      form.appendChild(comment);
      var buttons = el("div", { "class": "buttons" });
      (task.options || []).forEach(function (option) {
        var button = el("button", { type: "button", "data-option": option,
                                    "class": option === "reject" ? "secondary reject" : "approve" }, option);
        button.addEventListener("click", function () {
          submit(card, task, { option: option, comment: comment.value });
        });
        buttons.appendChild(button);
      });
      form.appendChild(buttons);
    } else {
      fields(form, "value", task.inputSchema || {});
      var send = el("button", { type: "submit", "class": "approve" }, "Submit");
      form.appendChild(send);
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        submit(card, task, { value: collect(form, "value", task.inputSchema || {}) });
      });
    }
    card.appendChild(form);
    card.appendChild(el("p", { "class": "card-error error", role: "alert" }));
    return card;
  }

  function remove(taskRunId) {
    var card = cards[taskRunId];
    if (card && card.parentNode) { card.parentNode.removeChild(card); }
    delete cards[taskRunId];
    empty.hidden = Object.keys(cards).length > 0;
  }

  function editing(card) {
    return card.contains(document.activeElement) || card.classList.contains("busy")
      || card.classList.contains("answered");
  }

  function refresh() {
    fetch(config.api + "?page_size=200", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (page) {
        var current = {};
        (page.results || []).forEach(function (task) {
          current[task.taskRunId] = true;
          if (!cards[task.taskRunId]) {
            cards[task.taskRunId] = render(task);
            list.appendChild(cards[task.taskRunId]);
          }
        });
        Object.keys(cards).forEach(function (id) {
          if (!current[id] && !editing(cards[id])) { remove(id); }
        });
        empty.hidden = Object.keys(cards).length > 0;
        status.textContent = "following · " + new Date().toLocaleTimeString();
      })
      .catch(function () { status.textContent = "reconnecting…"; })
      .then(function () { window.setTimeout(refresh, config.pollMs); });
  }

  refresh();
})();
