// Metrics: the last minutes of the daemon's own traffic (GET
// /v1/admin/traffic, a ring the host keeps second by second), drawn on
// <canvas>. Refreshed every few seconds while the view is open.
import { api } from "../api.js";
import { h, fill, errorBox } from "../dom.js";

const RANGES = { "5 min": [300, 5], "15 min": [900, 15] };

const CHARTS = [
  { id: "rps", title: "Requests / s", series: [["per_second", "req/s", "--chart1"]], unit: "" },
  { id: "latency", title: "Latency to first byte", series: [["p50_ms", "p50", "--chart1"], ["p99_ms", "p99", "--chart2"]], unit: " ms" },
  { id: "tokens", title: "Tokens", series: [["input_tokens", "input", "--chart1"], ["output_tokens", "output", "--chart2"]], unit: "" },
  { id: "errors", title: "Errors and refusals", series: [["errors", "errors", "--bad"], ["refusals", "refusals", "--warn"], ["client_errors", "other 4xx", "--chart1"]], unit: "" },
];

export async function render(main) {
  let range = "5 min";
  const stats = h("div", { class: "grid stats" });
  const charts = h("div", { class: "grid wide" });
  const note = h("div");
  const canvases = {};
  for (const chart of CHARTS) {
    canvases[chart.id] = h("canvas", { class: "chart", id: "chart-" + chart.id, role: "img", "aria-label": chart.title });
    charts.append(h("section", { class: "panel" }, h("div", { class: "row" }, h("h2", { style: "margin:0" }, chart.title),
      h("span", { class: "spacer" }), h("div", { class: "legend" }, chart.series.map(([, label, color]) =>
        h("span", {}, h("i", { style: `background:var(${color})` }), label)))), canvases[chart.id]));
  }
  const picker = h("select", { "aria-label": "Time range", onchange: () => { range = picker.value; refresh(); } },
    Object.keys(RANGES).map((r) => h("option", { value: r }, "last " + r)));
  fill(main, h("h1", {}, "Metrics", h("span", { class: "spacer" }), picker), stats, note, charts,
    h("p", { class: "muted" }, "From the daemon's own figures, kept for 15 minutes in memory. For history, scrape ",
      h("code", {}, "/metrics"), " with Prometheus."));

  async function refresh() {
    const [seconds, step] = RANGES[range];
    let data;
    try {
      data = await api("GET", `/v1/admin/traffic?seconds=${seconds}&step=${step}`);
    } catch (e) {
      return fill(note, errorBox(e));
    }
    fill(note);
    const pts = data.points;
    const sum = (k) => pts.reduce((a, p) => a + p[k], 0);
    const last = pts.slice(-12); // about the last minute at 5 s a point
    const maxOf = (k) => Math.max(0, ...last.map((p) => p[k]));
    fill(stats,
      stat("requests", sum("requests"), "in the range"),
      stat("req/s now", (last.reduce((a, p) => a + p.per_second, 0) / last.length).toFixed(2), "last minute"),
      stat("p99", maxOf("p99_ms").toFixed(1) + " ms", "worst, last minute"),
      stat("tokens", sum("input_tokens") + sum("output_tokens"), "in + out"),
      stat("errors", sum("errors"), "5xx and failed streams"),
      stat("refusals", sum("refusals"), "422"));
    for (const chart of CHARTS) draw(canvases[chart.id], pts, chart, data.step_seconds);
  }
  await refresh();
  const timer = setInterval(refresh, 5000);
  const onResize = () => refresh();
  window.addEventListener("resize", onResize);
  return () => { clearInterval(timer); window.removeEventListener("resize", onResize); };
}

function stat(label, value, hint) {
  return h("div", { class: "panel", dataset: { stat: label } }, h("div", { class: "muted" }, label),
    h("div", { class: "stat" }, String(value)), h("div", { class: "muted", style: "font-size:12px" }, hint));
}

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * power).find((m) => m >= value);
}

function draw(canvas, points, chart, step) {
  const css = getComputedStyle(document.documentElement);
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  const left = 46, right = 8, top = 8, bottom = 22;
  const plotW = width - left - right, plotH = height - top - bottom;
  const max = niceMax(Math.max(...chart.series.flatMap(([key]) => points.map((p) => p[key]))));
  g.font = "11px system-ui, sans-serif";
  g.fillStyle = css.getPropertyValue("--muted");
  g.strokeStyle = css.getPropertyValue("--grid");
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = top + plotH - (plotH * i) / 4;
    g.beginPath(); g.moveTo(left, y + 0.5); g.lineTo(left + plotW, y + 0.5); g.stroke();
    const v = (max * i) / 4;
    g.fillText((v >= 1000 ? (v / 1000).toFixed(1) + "k" : +v.toFixed(2)) + chart.unit, 2, y + 4);
  }
  const minutes = (points.length * step) / 60;
  for (let m = 0; m <= minutes; m++) {
    const x = left + plotW - (plotW * m) / minutes;
    g.fillText(m === 0 ? "now" : `-${m}m`, Math.max(left, x - 12), height - 6);
  }
  const n = Math.max(points.length - 1, 1);
  for (const [key, , color] of chart.series) {
    g.strokeStyle = css.getPropertyValue(color);
    g.lineWidth = 2;
    g.beginPath();
    points.forEach((p, i) => {
      const x = left + (plotW * i) / n, y = top + plotH - (plotH * p[key]) / max;
      i ? g.lineTo(x, y) : g.moveTo(x, y);
    });
    g.stroke();
  }
}
