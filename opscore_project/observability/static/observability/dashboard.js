// Operation log dashboard: follows new events by polling the events API with `after=<id>`.
// Events can commit out of id order (a long transaction takes its id early), so the cursor trails the newest
// events by a settle window and rows are de-duplicated by id.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("dashboard-config").textContent);
  var rows = document.getElementById("event-rows");
  var form = document.getElementById("filters");
  var toggle = document.getElementById("live-toggle");
  var status = document.getElementById("live-status");
  var SETTLE_MS = 10000;
  var PAGE_SIZE = 200;
  var MAX_ROWS = 500;
  var cursor = config.latestId || 0;
  var seen = new Set();
  var recent = []; // [{id, t}] events newer than the cursor, for advancing it once settled
  var timer = null;

  rows.querySelectorAll("tr[data-id]").forEach(function (tr) { seen.add(Number(tr.dataset.id)); });

  // Quick ranges: fill `since` and submit.
  form.querySelectorAll("button[data-range]").forEach(function (button) {
    button.addEventListener("click", function () {
      var since = new Date(Date.now() - Number(button.dataset.range) * 60000);
      form.elements.since.value = since.toISOString().replace(/\.\d+Z$/, "Z");
      form.elements.until.value = "";
      form.submit();
    });
  });
  // Drop empty fields so URLs stay short and shareable.
  form.addEventListener("submit", function () {
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.name && !el.value) { el.disabled = true; }
    });
  });

  function query() {
    var params = new URLSearchParams();
    ["agent", "session", "level", "type", "q"].forEach(function (name) {
      var value = form.elements[name].value.trim();
      if (value) { params.set(name, value); }
    });
    // `until` in the past means a closed range: nothing live to follow.
    params.set("after", String(cursor));
    params.set("page_size", String(PAGE_SIZE));
    return params;
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function short(value) { return value.length > 14 ? value.slice(0, 13) + "…" : value; }

  function renderRow(event) {
    var tr = el("tr", { "class": "event level-" + event.level + " fresh", "data-id": String(event.id) });
    var created = new Date(event.createdAt);
    tr.appendChild(el("td", { "class": "time", "title": event.createdAt },
      created.toISOString().replace("T", " ").slice(0, 23)));
    var level = el("td");
    level.appendChild(el("span", { "class": "badge badge-" + event.level }, event.level));
    tr.appendChild(level);
    var type = el("td", { "class": "type" });
    type.appendChild(el("a", { href: "?type=" + encodeURIComponent(event.eventType) }, event.eventType));
    tr.appendChild(type);
    var ids = el("td", { "class": "ids" });
    if (event.agentId) {
      ids.appendChild(el("a", { "class": "agent", title: "Agent page",
        href: config.agentUrl.replace("AGENT", encodeURIComponent(event.agentId)) }, event.agentId));
      ids.appendChild(document.createTextNode(" "));
    }
    if (event.sessionId) {
      ids.appendChild(el("a", { "class": "session", title: "Session timeline",
        href: config.sessionUrl.replace("SESSION", encodeURIComponent(event.sessionId)) }, "session " + short(event.sessionId)));
      ids.appendChild(document.createTextNode(" "));
    }
    if (event.taskId) { ids.appendChild(el("span", { "class": "task", title: "Task run" }, "task " + short(event.taskId))); }
    tr.appendChild(ids);
    var message = el("td", { "class": "message" }, event.message || "");
    if (event.context && Object.keys(event.context).length) {
      var details = el("details");
      details.appendChild(el("summary", {}, "context"));
      details.appendChild(el("pre", {}, JSON.stringify(event.context, null, 2)));
      message.appendChild(details);
    }
    tr.appendChild(message);
    return tr;
  }

  function insert(events) {
    var empty = rows.querySelector("tr.empty");
    // The API returns oldest first; newest belongs at the top.
    events.forEach(function (event) {
      if (seen.has(event.id)) { return; }
      seen.add(event.id);
      if (empty) { empty.remove(); empty = null; }
      rows.insertBefore(renderRow(event), rows.firstChild);
    });
    while (rows.children.length > MAX_ROWS) { rows.removeChild(rows.lastChild); }
  }

  function advance(events, full) {
    events.forEach(function (event) { recent.push({ id: event.id, t: Date.parse(event.createdAt) }); });
    if (!recent.length) { return; }
    var newest = Math.max.apply(null, recent.map(function (r) { return r.t; }));
    var keep = [];
    recent.forEach(function (r) {
      if (full || r.t <= newest - SETTLE_MS) { cursor = Math.max(cursor, r.id); } else { keep.push(r); }
    });
    recent = keep.filter(function (r) { return r.id > cursor; });
  }

  function poll() {
    timer = null;
    if (!toggle.checked) { return; }
    fetch(config.api + "?" + query().toString(), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (page) {
        insert(page.results);
        advance(page.results, Boolean(page.next));
        status.textContent = "following · updated " + new Date().toLocaleTimeString();
        status.className = "muted";
        schedule(page.next ? 0 : config.pollMs);
      })
      .catch(function (error) {
        status.textContent = "retrying (" + error.message + ")";
        status.className = "error";
        schedule(config.pollMs * 2);
      });
  }

  function schedule(delay) {
    if (timer === null) { timer = window.setTimeout(poll, delay); }
  }

  var until = form.elements.until.value.trim();
  if (!config.filtered || (until && Date.parse(until) < Date.now())) {
    toggle.checked = false;
    status.textContent = "paused (closed time range)";
  }
  toggle.addEventListener("change", function () {
    status.textContent = toggle.checked ? "following" : "paused";
    if (toggle.checked) { schedule(0); }
  });
  if (toggle.checked) { schedule(config.pollMs); }
})();
