// Create/edit form generated from a job type's JSON schema, with a schedule picker
// and inline validation messages from the API's 422 details.

import { append, h } from "./dom.js";
import { CRON_HORIZON_YEARS, describeSchedule, formatDateTime, nextCronFire, nextRun } from "./schedule.js";

/** Fields every job has; the form renders them itself. */
const BASE_FIELDS = new Set([
  "job_id", "owner_id", "job_type", "name", "schedule", "policy", "enabled",
  "created_at", "updated_at", "version",
]);
const SCHEDULE_KINDS = new Set(["rate", "cron", "at"]);
const ACRONYMS = { url: "URL", css: "CSS", xpath: "XPath", id: "ID", http: "HTTP", html: "HTML" };

/** "html_monitor_job" -> "HTML monitor". */
export function typeLabel(jobType) {
  const words = String(jobType).replace(/_job$/, "").split("_");
  const text = words.map((w) => ACRONYMS[w] || w).join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function labelFor(name, hint = {}) {
  if (hint.label) return hint.label;
  let words = name.split("_");
  let suffix = "";
  if (words.length > 1 && words[words.length - 1] === "s") {
    words = words.slice(0, -1);
    suffix = " (seconds)";
  }
  const text = words.map((w) => ACRONYMS[w] || w).join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1) + suffix;
}

function resolve(schema, root) {
  let node = schema || {};
  let optional = false;
  for (let i = 0; i < 5; i += 1) {
    if (node.$ref) {
      node = { ...(root.$defs || {})[node.$ref.split("/").pop()], ...node, $ref: undefined };
    } else if (Array.isArray(node.anyOf)) {
      const rest = node.anyOf.filter((o) => o.type !== "null");
      optional = optional || rest.length < node.anyOf.length;
      const { anyOf, ...outer } = node;
      node = rest.length === 1 ? { ...rest[0], ...outer } : { ...outer, type: "json" };
    } else break;
  }
  return { node, optional };
}

function isoToLocalInput(value) {
  if (!value) return "";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return "";
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

function browserTimezone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

/** One generated control: returns {row, read()}; read() gives {value} or {} to omit. */
function control(name, prop, root, value, hint, required) {
  const { node, optional } = resolve(prop, root);
  const id = `f-${name}`;
  const describedBy = `${id}-help`;
  const common = { id, name, "aria-describedby": describedBy, "data-field": name };
  let input;
  let read;
  const type = Array.isArray(node.type) ? node.type[0] : node.type;
  if (Array.isArray(node.enum)) {
    input = h("select", common,
      optional ? h("option", { value: "" }, "—") : null,
      node.enum.map((v) => h("option", { value: String(v) }, String(v))));
    input.value = value ?? node.default ?? (optional ? "" : String(node.enum[0]));
    read = () => (input.value === "" ? { value: null } : { value: input.value });
  } else if (type === "boolean") {
    input = h("input", { ...common, type: "checkbox" });
    input.checked = Boolean(value ?? node.default);
    read = () => ({ value: input.checked });
  } else if (type === "integer" || type === "number") {
    input = h("input", { ...common, type: "number", min: node.minimum, max: node.maximum, step: type === "integer" ? 1 : "any" });
    input.value = value ?? node.default ?? "";
    read = () => (input.value === "" ? (optional ? { value: null } : {}) : { value: Number(input.value) });
  } else if (type === "array") {
    const items = resolve(node.items, root).node;
    const numeric = items.type === "integer" || items.type === "number";
    input = h("textarea", { ...common, rows: 3, placeholder: hint.placeholder || (numeric ? "comma-separated numbers" : "one per line") });
    input.value = (value ?? node.default ?? []).join(numeric ? ", " : "\n");
    read = () => {
      const parts = input.value.split(numeric ? /[,\s]+/ : "\n").map((s) => s.trim()).filter(Boolean);
      return { value: numeric ? parts.map(Number) : parts };
    };
  } else if (type === "object" && node.additionalProperties && node.additionalProperties.type === "string") {
    input = h("textarea", { ...common, rows: 3, placeholder: hint.placeholder || "Name: value (one per line)" });
    input.value = Object.entries(value ?? node.default ?? {}).map(([k, v]) => `${k}: ${v}`).join("\n");
    read = () => {
      const out = {};
      const bad = [];
      input.value.split("\n").forEach((line, i) => {
        if (!line.trim()) return;
        const at = line.indexOf(":");
        const key = at > 0 ? line.slice(0, at).trim() : "";
        if (key) out[key] = line.slice(at + 1).trim();
        else bad.push(i + 1);
      });
      if (bad.length) {
        const lines = bad.length === 1 ? `line ${bad[0]} is` : `lines ${bad.join(", ")} are`;
        return { error: `${lines} not in the form “Name: value”` };
      }
      return { value: out };
    };
  } else if (type === "string" && node.format === "date-time") {
    input = h("input", { ...common, type: "datetime-local" });
    input.value = isoToLocalInput(value ?? node.default);
    read = () => (input.value ? { value: new Date(input.value).toISOString() } : optional ? { value: null } : {});
  } else if (type === "string") {
    const long = hint.widget === "textarea" || (node.maxLength || 0) > 1000;
    const inputType = node.format === "uri" ? "url" : "text";
    input = long
      ? h("textarea", { ...common, rows: 4, placeholder: hint.placeholder })
      : h("input", { ...common, type: inputType, placeholder: hint.placeholder || (inputType === "url" ? "https://" : undefined) });
    input.value = value ?? node.default ?? "";
    read = () => (input.value === "" ? (optional ? { value: null } : required ? { value: "" } : {}) : { value: input.value });
  } else {
    input = h("textarea", { ...common, rows: 3, placeholder: "JSON" });
    input.value = value === undefined ? "" : JSON.stringify(value, null, 2);
    read = () => {
      if (!input.value.trim()) return optional ? { value: null } : {};
      try {
        return { value: JSON.parse(input.value) };
      } catch {
        return { error: "not valid JSON" };
      }
    };
  }
  if (required) input.required = true;
  const isCheckbox = input.type === "checkbox";
  const label = h("label", { for: id }, labelFor(name, hint), required ? h("span", { class: "req", title: "required" }, " *") : null);
  const row = h("div", { class: `field${isCheckbox ? " checkbox" : ""}`, dataset: { path: name } },
    isCheckbox ? [input, label] : [label, input],
    h("small", { id: describedBy, class: "help" }, hint.help || node.description || ""),
    h("div", { class: "error", role: "alert" }));
  return { row, read };
}

/**
 * The job form. `jobTypes` is GET /job_types' items; `job` is the job to edit or null.
 * Returns {element, collect(), showErrors(detail)}.
 */
export function jobForm({ jobTypes, job, onSubmit, onCancel }) {
  const editing = Boolean(job);
  const types = jobTypes.map((t) => t.job_type);
  let currentType = job ? job.job_type : types.includes("html_monitor_job") ? "html_monitor_job" : types[0];
  const summary = h("div", { class: "form-errors", role: "alert", hidden: true });

  const typeSelect = h("select", { id: "f-job_type", name: "job_type", disabled: editing },
    jobTypes.map((t) => h("option", { value: t.job_type, title: t.description || "" }, typeLabel(t.job_type))));
  typeSelect.value = currentType;
  const nameInput = h("input", { id: "f-name", name: "name", type: "text", required: true, maxlength: 200, placeholder: "e.g. Pricing page" });
  nameInput.value = job ? job.name : "";
  const enabledInput = h("input", { id: "f-enabled", name: "enabled", type: "checkbox" });
  enabledInput.checked = job ? job.enabled !== false : true;

  // -- schedule picker ------------------------------------------------------------
  const schedule = job ? job.schedule : { kind: "rate", every: 30, unit: "minutes" };
  const kindRadios = ["rate", "cron", "at"].map((kind) =>
    h("label", { class: "radio" },
      h("input", { type: "radio", name: "schedule-kind", value: kind, checked: schedule.kind === kind }),
      { rate: " Every…", cron: " Cron", at: " Once" }[kind]));
  const every = h("input", { id: "f-schedule-every", type: "number", min: 1, value: schedule.every ?? 30, "aria-label": "every" });
  const unit = h("select", { id: "f-schedule-unit", "aria-label": "unit" },
    ["minutes", "hours", "days"].map((u) => h("option", { value: u }, u)));
  unit.value = schedule.unit || "minutes";
  const expression = h("input", { id: "f-schedule-expression", type: "text", placeholder: "0 9 * * 1-5", value: schedule.expression || "0 9 * * 1-5", "aria-label": "cron expression" });
  const zoneList = h("datalist", { id: "timezones" },
    (Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : ["UTC"]).map((z) => h("option", { value: z })));
  const timezone = h("input", { id: "f-schedule-timezone", type: "text", list: "timezones", value: schedule.timezone || browserTimezone(), "aria-label": "timezone" });
  const at = h("input", { id: "f-schedule-at", type: "datetime-local", "aria-label": "date and time" });
  at.value = isoToLocalInput(schedule.at);
  const panes = {
    rate: h("div", { class: "pane inline" }, "every ", every, " ", unit),
    cron: h("div", { class: "pane inline" }, expression, " in ", timezone, zoneList,
      h("small", { class: "help" }, "minute hour day-of-month month day-of-week")),
    at: h("div", { class: "pane inline" }, at, h("small", { class: "help" }, "in your browser's timezone")),
  };
  const preview = h("p", { class: "schedule-preview muted", id: "schedule-preview" });
  const scheduleErrors = h("div", { class: "error", role: "alert" });
  const scheduleBox = h("fieldset", { class: "field schedule", dataset: { path: "schedule" } },
    h("legend", {}, "Schedule"), h("div", { class: "radios" }, kindRadios),
    Object.values(panes), preview, scheduleErrors);

  function kind() {
    return kindRadios.map((l) => l.querySelector("input")).find((i) => i.checked).value;
  }
  function readSchedule() {
    const k = kind();
    const keep = {};
    for (const key of ["start_at", "end_at", "jitter_s"]) {
      if (schedule.kind === k && schedule[key] !== undefined && schedule[key] !== null) keep[key] = schedule[key];
    }
    if (k === "rate") return { kind: k, every: Number(every.value), unit: unit.value, ...keep };
    if (k === "cron") return { kind: k, expression: expression.value.trim(), timezone: timezone.value.trim() || "UTC", ...keep };
    return { kind: k, at: at.value ? new Date(at.value).toISOString() : "" };
  }
  function refreshSchedule() {
    const k = kind();
    for (const [name, pane] of Object.entries(panes)) pane.hidden = name !== k;
    const s = readSchedule();
    // Checked here, not only on submit: the preview must not search for the next fire
    // of an expression that has none, and says at once which field is wrong.
    const cron = s.kind === "cron" ? nextCronFire(s.expression, s.timezone, new Date()) : {};
    preview.classList.toggle("preview-error", Boolean(cron.problem));
    preview.classList.toggle("muted", !cron.problem);
    if (cron.problem) {
      preview.textContent = `Invalid cron expression: ${cron.problem}`;
      return;
    }
    const next = nextRun({ schedule: s, enabled: true, created_at: new Date().toISOString() });
    const when = next ? ` · next: ${formatDateTime(next)}`
      : cron.none ? ` · no fire time found in the next ${CRON_HORIZON_YEARS} years` : "";
    preview.textContent = `Runs ${describeSchedule(s)}${when}`;
  }
  scheduleBox.addEventListener("input", refreshSchedule);
  scheduleBox.addEventListener("change", refreshSchedule);
  refreshSchedule();

  // -- generated fields -------------------------------------------------------------
  const typeFields = h("div", { class: "type-fields" });
  const policyFields = h("div", { class: "policy-fields" });
  let controls = {};
  let policyControls = {};

  function renderTypeFields() {
    const entry = jobTypes.find((t) => t.job_type === currentType) || { schema: { properties: {} } };
    const root = entry.schema || {};
    const hints = entry.ui_hints || entry.ui || {};
    const required = new Set(root.required || []);
    controls = {};
    const rows = [];
    for (const [name, prop] of Object.entries(root.properties || {})) {
      if (BASE_FIELDS.has(name)) continue;
      const c = control(name, prop, root, job ? job[name] : undefined, hints[name] || {}, required.has(name));
      controls[name] = c;
      rows.push(c.row);
    }
    typeFields.replaceChildren(...rows);
    const policySchema = resolve((root.properties || {}).policy || {}, root).node;
    policyControls = {};
    const policyRows = [];
    for (const [name, prop] of Object.entries(policySchema.properties || {})) {
      const c = control(`policy.${name}`, prop, root, job && job.policy ? job.policy[name] : undefined, {}, false);
      c.row.querySelector("label").textContent = labelFor(name);
      policyControls[name] = c;
      policyRows.push(c.row);
    }
    policyFields.replaceChildren(...policyRows);
  }
  typeSelect.addEventListener("change", () => {
    currentType = typeSelect.value;
    renderTypeFields();
  });
  renderTypeFields();

  const submit = h("button", { type: "submit", class: "primary", id: "save" }, editing ? "Save changes" : "Create monitor");
  const form = h("form", { class: "job-form", novalidate: true },
    summary,
    h("div", { class: "field", dataset: { path: "job_type" } }, h("label", { for: "f-job_type" }, "Type"), typeSelect,
      h("div", { class: "error", role: "alert" })),
    h("div", { class: "field", dataset: { path: "name" } }, h("label", { for: "f-name" }, "Name", h("span", { class: "req" }, " *")), nameInput,
      h("div", { class: "error", role: "alert" })),
    typeFields,
    scheduleBox,
    h("div", { class: "field checkbox", dataset: { path: "enabled" } }, enabledInput, h("label", { for: "f-enabled" }, "Enabled"),
      h("div", { class: "error", role: "alert" })),
    h("details", { class: "advanced" }, h("summary", {}, "Advanced: overlap, catch-up, auto-pause"), policyFields),
    h("div", { class: "actions" },
      h("button", { type: "button", onclick: () => onCancel && onCancel() }, "Cancel"), submit));

  function collect() {
    const body = { job_type: currentType, name: nameInput.value.trim(), schedule: readSchedule(), enabled: enabledInput.checked };
    const local = [];
    for (const [name, c] of Object.entries(controls)) {
      const result = c.read();
      if (result.error) local.push({ loc: [name], msg: result.error });
      else if ("value" in result) body[name] = result.value;
    }
    const policy = {};
    for (const [name, c] of Object.entries(policyControls)) {
      const result = c.read();
      if ("value" in result && result.value !== null) policy[name] = result.value;
    }
    if (Object.keys(policy).length) body.policy = policy;
    return { body, local };
  }

  function clearErrors() {
    summary.hidden = true;
    summary.replaceChildren();
    for (const el of form.querySelectorAll(".error")) el.replaceChildren();
    for (const el of form.querySelectorAll(".invalid")) el.classList.remove("invalid");
  }

  /** Put FastAPI 422 details next to their fields; the rest goes in the summary. */
  function showErrors(detail) {
    clearErrors();
    const items = Array.isArray(detail) ? detail : [{ loc: [], msg: String(detail || "The request failed.") }];
    const rest = [];
    for (const item of items) {
      let loc = (item.loc || []).map(String);
      if (loc[0] === "body") loc = loc.slice(1);
      if (loc[0] === currentType) loc = loc.slice(1);
      if (loc[0] === "schedule" && SCHEDULE_KINDS.has(loc[1])) loc = [loc[0], ...loc.slice(2)];
      const message = String(item.msg || "invalid value").replace(/^Value error, /, "");
      let target = null;
      for (let n = loc.length; n > 0 && !target; n -= 1) {
        target = form.querySelector(`[data-path="${CSS.escape(loc.slice(0, n).join("."))}"]`);
      }
      if (!target) {
        rest.push(loc.length ? `${loc.join(".")}: ${message}` : message);
        continue;
      }
      const field = loc.slice(1).filter((p) => !/^\d+$/.test(p)).join(".");
      const errorBox = target.querySelector(":scope > .error");
      errorBox.append(h("div", {}, target.dataset.path === "schedule" && field ? `${field}: ${message}` : message));
      target.classList.add("invalid");
    }
    if (rest.length || items.length) {
      summary.hidden = false;
      append(summary, [h("strong", {}, "Please fix the highlighted fields."), rest.length ? h("ul", {}, rest.map((r) => h("li", {}, r))) : null]);
    }
    const first = form.querySelector(".invalid input, .invalid select, .invalid textarea");
    if (first) first.focus();
  }

  // A field's message goes away as soon as it is edited.
  form.addEventListener("input", (event) => {
    const row = event.target.closest(".invalid");
    if (!row) return;
    row.classList.remove("invalid");
    row.querySelector(":scope > .error").replaceChildren();
    if (!form.querySelector(".invalid")) summary.hidden = true;
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const { body, local } = collect();
    if (local.length) {
      showErrors(local);
      return;
    }
    submit.disabled = true;
    try {
      await onSubmit(body);
    } catch (error) {
      showErrors(error.detail ?? error.message);
    } finally {
      submit.disabled = false;
    }
  });

  return { element: form, collect, showErrors };
}
