// Fleet overview: draws the chart series the server computed (uPlot, vendored) and refreshes the counts and
// charts from /dashboard/overview.json every few seconds.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("overview-config").textContent);
  var status = document.getElementById("overview-status");
  var COLORS = { started: "#2f6fdf", completed: "#2e9d5b", failed: "#d64545", p50: "#2f6fdf", p95: "#c77700" };
  var SPECS = {
    "chart-sessions": { group: "sessions", series: [["started", "started", COLORS.started], ["completed", "completed", COLORS.completed], ["failed", "failed", COLORS.failed]], unit: "/min" },
    "chart-tasks": { group: "tasks", series: [["completed", "completed", COLORS.completed]], unit: "/min" },
    "chart-queue": { group: "latency", series: [["queue_p50", "p50", COLORS.p50], ["queue_p95", "p95", COLORS.p95]], unit: " ms" },
    "chart-dispatch": { group: "latency", series: [["dispatch_p95", "p95", COLORS.p95]], unit: " ms" }
  };
  var plots = {};

  function dataOf(spec, charts) {
    var group = charts[spec.group];
    return [group.x].concat(spec.series.map(function (s) { return group[s[0]]; }));
  }

  // What the page shows, also readable by tests: how many buckets carry a value, and their total.
  function describe(figure, data) {
    var points = 0, sum = 0;
    data.slice(1).forEach(function (values) {
      values.forEach(function (v) { if (v !== null && v !== undefined) { points += 1; sum += v; } });
    });
    figure.dataset.points = String(points);
    figure.dataset.sum = String(Math.round(sum * 1000) / 1000);
  }

  // Axis labels in UTC, 24-hour: "14:05", with the date once buckets are hours ("11-30 14:00").
  function timeLabels(u, splits) {
    return splits.map(function (ts) {
      var iso = new Date(ts * 1000).toISOString();
      return config.charts && config.charts.stepSeconds >= 3600 ? iso.slice(5, 16).replace("T", " ") : iso.slice(11, 16);
    });
  }

  function width(figure) { return Math.max(figure.clientWidth - 4, 240); }

  function draw(charts) {
    if (!charts || typeof uPlot === "undefined") { return; }
    Object.keys(SPECS).forEach(function (id) {
      var figure = document.getElementById(id);
      if (!figure) { return; }
      var spec = SPECS[id];
      var data = dataOf(spec, charts);
      describe(figure, data);
      if (plots[id]) { plots[id].setData(data); return; }
      var opts = {
        width: width(figure),
        height: 190,
        scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } } },
        tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
        legend: { live: true },
        cursor: { drag: { x: false, y: false } },
        series: [{ label: "time (UTC)", value: "{YYYY}-{MM}-{DD} {HH}:{mm}" }].concat(spec.series.map(function (s) {
          return {
            label: s[1], stroke: s[2], width: 1.6, spanGaps: false,
            points: { show: data[0].length <= 96, size: 4 },
            value: function (u, v) { return v === null || v === undefined ? "—" : (Math.round(v * 100) / 100) + spec.unit; }
          };
        })),
        axes: [{ stroke: "#4b5563", grid: { stroke: "#eef0f3" }, values: timeLabels }, { stroke: "#4b5563", grid: { stroke: "#eef0f3" }, size: 56 }]
      };
      plots[id] = new uPlot(opts, data, figure.querySelector(".plot"));
    });
  }

  function setCounts(counts) {
    document.querySelectorAll("[data-count]").forEach(function (node) {
      var path = node.dataset.count.split(".");
      var value = counts[path[0]] ? counts[path[0]][path[1]] : undefined;
      if (value !== undefined && value !== null) { node.textContent = String(value); }
    });
  }

  function refresh() {
    if (document.hidden) { return window.setTimeout(refresh, config.pollMs); }
    fetch(config.dataUrl + "?window=" + encodeURIComponent(config.window), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (body) {
        setCounts(body.counts);
        draw(body.charts);
        status.textContent = "updated " + new Date().toISOString().slice(11, 19) + " UTC";
        status.className = "muted small";
      })
      .catch(function (error) {
        status.textContent = "update failed (" + error.message + "), retrying";
        status.className = "error small";
      })
      .then(function () { window.setTimeout(refresh, config.pollMs); });
  }

  draw(config.charts);
  window.addEventListener("resize", function () {
    Object.keys(plots).forEach(function (id) {
      plots[id].setSize({ width: width(document.getElementById(id)), height: 190 });
    });
  });
  window.setTimeout(refresh, config.pollMs);
})();
