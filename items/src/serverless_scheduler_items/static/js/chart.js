// A small bar chart of run durations, built as inline SVG with DOM APIs.

import { h, svg } from "./dom.js";

export function runDurationMs(run) {
  if (!run.started_at || !run.finished_at) return null;
  const ms = new Date(run.finished_at) - new Date(run.started_at);
  return Number.isFinite(ms) && ms >= 0 ? ms : null;
}

export function formatDuration(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** Durations of `runs` (newest first, as the API lists them), oldest on the left. */
export function durationChart(runs, { width = 640, height = 120 } = {}) {
  const points = runs
    .map((run) => ({ run, ms: runDurationMs(run) }))
    .filter((p) => p.ms !== null)
    .reverse()
    .slice(-60);
  if (!points.length) return h("p", { class: "muted" }, "No finished runs yet.");
  const max = Math.max(...points.map((p) => p.ms), 1);
  const pad = { left: 56, right: 8, top: 8, bottom: 18 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const slot = plotW / points.length;
  const barW = Math.max(2, Math.min(24, slot * 0.7));
  const bars = points.map((p, i) => {
    const barH = Math.max(1, (p.ms / max) * plotH);
    return svg("rect", {
      x: (pad.left + i * slot + (slot - barW) / 2).toFixed(1),
      y: (pad.top + plotH - barH).toFixed(1),
      width: barW.toFixed(1),
      height: barH.toFixed(1),
      class: `bar bar-${p.run.status}`,
    }, svg("title", {}, `${new Date(p.run.started_at).toLocaleString()}: ${formatDuration(p.ms)} (${p.run.status})`));
  });
  return svg("svg", {
    class: "chart", viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img",
    "aria-label": `Durations of the last ${points.length} runs; longest ${formatDuration(max)}`,
  },
  svg("line", { x1: pad.left, x2: width - pad.right, y1: pad.top + plotH, y2: pad.top + plotH, class: "axis" }),
  svg("line", { x1: pad.left, x2: width - pad.right, y1: pad.top, y2: pad.top, class: "grid" }),
  svg("text", { x: pad.left - 6, y: pad.top + 4, class: "tick", "text-anchor": "end" }, formatDuration(max)),
  svg("text", { x: pad.left - 6, y: pad.top + plotH, class: "tick", "text-anchor": "end" }, "0"),
  svg("text", { x: pad.left, y: height - 4, class: "tick" }, "older"),
  svg("text", { x: width - pad.right, y: height - 4, class: "tick", "text-anchor": "end" }, "newer"),
  bars);
}
