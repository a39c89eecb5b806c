// Unified diffs as a readable inline view. Lines are inserted as text only.

import { h } from "./dom.js";

/** Split a unified diff into typed lines with old/new line numbers. */
export function parseUnifiedDiff(text) {
  const lines = String(text || "").replace(/\r\n/g, "\n").split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  const out = [];
  let oldNo = 0;
  let newNo = 0;
  for (const line of lines) {
    const hunk = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(line);
    if (hunk) {
      oldNo = Number(hunk[1]);
      newNo = Number(hunk[2]);
      out.push({ type: "hunk", text: line });
    } else if (line.startsWith("+++") || line.startsWith("---")) {
      out.push({ type: "meta", text: line });
    } else if (line.startsWith("+")) {
      out.push({ type: "add", text: line.slice(1), newNo: newNo++ });
    } else if (line.startsWith("-")) {
      out.push({ type: "del", text: line.slice(1), oldNo: oldNo++ });
    } else if (line.startsWith("\\")) {
      out.push({ type: "meta", text: line });
    } else {
      out.push({ type: "ctx", text: line.startsWith(" ") ? line.slice(1) : line, oldNo: oldNo++, newNo: newNo++ });
    }
  }
  return out;
}

export function looksLikeDiff(text) {
  return /^(@@ |\+\+\+ |--- )/m.test(String(text || ""));
}

/** A diff table: added lines green with "+", removed red with "−". */
export function renderDiff(text) {
  if (!looksLikeDiff(text)) return h("pre", { class: "detail" }, String(text || ""));
  const parsed = parseUnifiedDiff(text);
  const added = parsed.filter((l) => l.type === "add").length;
  const removed = parsed.filter((l) => l.type === "del").length;
  const sign = { add: "+", del: "−", ctx: " ", hunk: "", meta: "" };
  const rows = parsed
    .filter((l) => l.type !== "meta")
    .map((l) =>
      l.type === "hunk"
        ? h("tr", { class: "diff-hunk" }, h("td", { colspan: "4" }, l.text))
        : h("tr", { class: `diff-${l.type}` },
          h("td", { class: "ln" }, l.oldNo ?? ""),
          h("td", { class: "ln" }, l.newNo ?? ""),
          h("td", { class: "sign", "aria-hidden": "true" }, sign[l.type]),
          h("td", { class: "code" }, l.text)),
    );
  return h("div", { class: "diff" },
    h("p", { class: "diff-stats" },
      h("span", { class: "stat-add" }, `+${added} added`), " ",
      h("span", { class: "stat-del" }, `−${removed} removed`)),
    h("table", { class: "diff-table" }, h("tbody", {}, rows)));
}
