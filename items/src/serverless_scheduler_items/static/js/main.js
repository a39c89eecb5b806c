// The single-page app: hash routes for sign-in, list, form and detail views.

import { api, ApiError } from "./api.js";
import {
  finishCognitoSignIn, getToken, loadConfig, setToken, signOut, startCognitoSignIn,
  takeTokenFromFragment, usesCognito,
} from "./auth.js";
import { durationChart, formatDuration, runDurationMs } from "./chart.js";
import { renderDiff } from "./diff.js";
import { externalLink, h, mount } from "./dom.js";
import { jobForm, typeLabel } from "./form.js";
import { describeSchedule, formatDateTime, nextRun, relativeTime } from "./schedule.js";

const app = document.getElementById("app");
const flashBox = document.getElementById("flash");
let timers = [];
let renderSeq = 0;

// -- helpers -------------------------------------------------------------------------
function flash(message, kind = "info") {
  const note = h("div", { class: `flash flash-${kind}` }, message,
    h("button", { type: "button", class: "link", "aria-label": "dismiss", onclick: () => note.remove() }, "×"));
  flashBox.replaceChildren(note);
  if (kind !== "error") setTimeout(() => note.remove(), 6000);
}

function later(fn, ms) {
  timers.push(setTimeout(fn, ms));
}

function statusBadge(status) {
  return h("span", { class: `badge status-${status || "none"}` }, status || "never run");
}

function enabledPill(job) {
  return job.enabled === false
    ? h("span", { class: "pill paused" }, "paused")
    : h("span", { class: "pill active" }, "active");
}

function when(value, prefix = "") {
  if (!value) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: new Date(value).toISOString(), title: formatDateTime(value) }, prefix + relativeTime(value));
}

// The changes a job's plugin keeps (they outlive the run history, and include changes
// whose run ended in an error), or null when its type keeps none or the deployment cannot
// read them: the caller then falls back to the `changed` runs.
async function changeHistory(jobId, limit) {
  try {
    const page = await api.changes(jobId, limit);
    return page && page.supported ? page.items || [] : null;
  } catch (err) {
    if (err instanceof ApiError && err.status !== 401) return null;
    throw err;
  }
}

// `changed` runs in the shape of the change history.
function changesFromRuns(runs) {
  return runs.filter((r) => r.status === "changed").map((run) => ({
    at: run.finished_at || run.started_at, fire_id: run.fire_id, summary: run.summary || "", diff: run.detail || "",
  }));
}

function errorView(error) {
  return h("div", { class: "panel error-panel", role: "alert" },
    h("h2", {}, "Something went wrong"), h("p", {}, error.message || String(error)),
    h("p", {}, h("a", { href: "#/" }, "Back to monitors")));
}

function editableBody(job) {
  const body = { ...job };
  for (const key of ["job_id", "owner_id", "created_at", "updated_at", "version"]) delete body[key];
  for (const key of Object.keys(body)) if (key.startsWith("_") || key === "last_run") delete body[key];
  return body;
}

function confirmDialog(text, okLabel) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = okLabel;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

// -- sign-in -------------------------------------------------------------------------
function signInView(message) {
  document.getElementById("nav").hidden = true;
  if (usesCognito()) {
    return h("section", { class: "panel signin" },
      h("h1", {}, "Sign in"),
      message ? h("p", { class: "error" }, message) : null,
      h("p", {}, "Sign in with your account to manage your monitors."),
      h("button", { type: "button", class: "primary", onclick: () => startCognitoSignIn() }, "Sign in"));
  }
  const input = h("input", { id: "token", type: "password", autocomplete: "off", required: true, placeholder: "paste your API token" });
  const error = h("p", { class: "error", role: "alert" }, message || "");
  const form = h("form", { class: "panel signin" },
    h("h1", {}, "Sign in"),
    h("p", {}, "Paste the API token that ", h("code", {}, "serverless-scheduler serve"),
      " printed on its first start, or create one with ", h("code", {}, "serverless-scheduler token create --user NAME"), "."),
    h("label", { for: "token" }, "API token"), input, error,
    h("p", { class: "muted" }, "The token is kept in this browser tab only (session storage)."),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", id: "signin" }, "Sign in")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setToken(input.value.trim());
    try {
      await api.checkToken();
      if (location.hash === "#/") render();
      else location.hash = "#/";
    } catch (err) {
      error.textContent = err instanceof ApiError && err.status === 401 ? "That token was not accepted." : err.message;
      mount(app, form);
      input.focus();
    }
  });
  return form;
}

// -- list ----------------------------------------------------------------------------
async function listView(seq) {
  const [jobs, types] = await Promise.all([api.listJobs(), api.jobTypes()]);
  if (seq !== renderSeq) return null;
  if (!jobs.length) {
    return h("section", { class: "panel empty" },
      h("h1", {}, "No monitors yet"),
      h("p", {}, "A monitor checks a web page on a schedule and shows you what changed. ",
        "Start by adding the address of a page you want to watch."),
      h("p", {}, h("a", { href: "#/new", class: "button primary", id: "empty-new" }, "Add your first monitor")));
  }
  const query = h("input", { id: "filter", type: "search", placeholder: "Filter by name or URL", "aria-label": "filter" });
  const typeFilter = h("select", { id: "type-filter", "aria-label": "type" },
    h("option", { value: "" }, "All types"),
    (types.items || []).map((t) => h("option", { value: t.job_type }, typeLabel(t.job_type))));
  const rows = jobs.map((job) => {
    const lastRun = h("td", { class: "last-run" }, h("span", { class: "muted" }, "…"));
    const lastChange = h("td", { class: "last-change" }, h("span", { class: "muted" }, "…"));
    const next = nextRun(job);
    const row = h("tr", { dataset: { jobId: job.job_id, jobType: job.job_type } },
      h("td", {}, h("a", { href: `#/jobs/${encodeURIComponent(job.job_id)}`, class: "job-name" }, job.name)),
      h("td", {}, typeLabel(job.job_type)),
      h("td", { class: "url-cell" }, job.url ? externalLink(job.url) : h("span", { class: "muted" }, "—")),
      h("td", {}, describeSchedule(job.schedule)),
      h("td", {}, enabledPill(job)),
      lastRun, lastChange,
      h("td", {}, next ? when(next) : h("span", { class: "muted" }, "—")));
    row.searchText = `${job.name} ${job.url || ""} ${job.job_type}`.toLowerCase();
    const history = changeHistory(job.job_id, 1).catch(() => null);
    api.runs(job.job_id, 20).then(async (page) => {
      const runs = page.items || [];
      const last = runs[0];
      mount(lastRun, last ? [statusBadge(last.status), " ", when(last.finished_at || last.started_at)] : statusBadge(null));
      const change = (await history ?? changesFromRuns(runs))[0];
      mount(lastChange, change ? when(change.at) : h("span", { class: "muted" }, "—"));
    }).catch(() => mount(lastRun, h("span", { class: "muted" }, "unavailable")));
    return row;
  });
  const tbody = h("tbody", {}, rows);
  const none = h("p", { class: "muted", hidden: true, id: "no-match" }, "No monitors match the filter.");
  const applyFilter = () => {
    const text = query.value.trim().toLowerCase();
    let shown = 0;
    for (const row of rows) {
      const ok = (!text || row.searchText.includes(text)) && (!typeFilter.value || row.dataset.jobType === typeFilter.value);
      row.hidden = !ok;
      shown += ok ? 1 : 0;
    }
    none.hidden = shown > 0;
  };
  query.addEventListener("input", applyFilter);
  typeFilter.addEventListener("change", applyFilter);
  later(() => { if (seq === renderSeq && !query.value && !typeFilter.value) render(); }, 30_000);
  return h("section", {},
    h("div", { class: "toolbar" }, h("h1", {}, "Monitors ", h("span", { class: "count" }, String(jobs.length))), query, typeFilter),
    h("div", { class: "table-wrap" }, h("table", { class: "jobs" },
      h("thead", {}, h("tr", {}, ["Name", "Type", "URL", "Schedule", "State", "Last run", "Last change", "Next run"].map((c) => h("th", {}, c)))),
      tbody)),
    none);
}

// -- form ----------------------------------------------------------------------------
async function formView(seq, jobId) {
  const [types, job] = await Promise.all([api.jobTypes(), jobId ? api.getJob(jobId) : null]);
  if (seq !== renderSeq) return null;
  const form = jobForm({
    jobTypes: types.items || [],
    job,
    onCancel: () => { location.hash = job ? `#/jobs/${encodeURIComponent(job.job_id)}` : "#/"; },
    onSubmit: async (body) => {
      const saved = job ? await api.updateJob(job.job_id, body, job.version) : await api.createJob(body);
      flash(job ? "Changes saved." : "Monitor created.", "ok");
      location.hash = `#/jobs/${encodeURIComponent(saved.job_id)}`;
    },
  });
  return h("section", { class: "panel form-panel" }, h("h1", {}, job ? `Edit “${job.name}”` : "New monitor"), form.element);
}

// -- detail --------------------------------------------------------------------------
async function detailView(seq, jobId) {
  const [job, page, history] = await Promise.all([api.getJob(jobId), api.runs(jobId, 100), changeHistory(jobId, 50)]);
  if (seq !== renderSeq) return null;
  const runs = page.items || [];
  const changes = history ?? changesFromRuns(runs);
  // The newest run of each fire (runs come newest first).
  const runOfFire = new Map(runs.slice().reverse().map((r) => [r.fire_id, r]));
  const runButton = h("button", { type: "button", class: "primary", id: "run-now" }, "Run now");
  const toggle = h("button", { type: "button", id: "toggle" }, job.enabled === false ? "Resume" : "Pause");
  const remove = h("button", { type: "button", class: "danger", id: "delete" }, "Delete");

  runButton.addEventListener("click", async () => {
    runButton.disabled = true;
    runButton.textContent = "Running…";
    const known = new Set(runs.map((r) => r.run_id));
    try {
      await api.runNow(job.job_id);
      flash("Run requested; waiting for it to finish…");
      const deadline = Date.now() + 120_000;
      while (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 700));
        if (seq !== renderSeq) return;
        const fresh = (await api.runs(job.job_id, 10)).items || [];
        const done = fresh.find((r) => !known.has(r.run_id) && r.finished_at);
        if (done) {
          flash(`Run finished: ${done.status}${done.summary ? ` — ${done.summary}` : ""}`, done.status === "error" ? "error" : "ok");
          render();
          return;
        }
      }
      flash("The run has not finished yet; refresh later to see it.");
    } catch (err) {
      flash(err.message, "error");
    }
    runButton.disabled = false;
    runButton.textContent = "Run now";
  });
  toggle.addEventListener("click", async () => {
    toggle.disabled = true;
    try {
      await api.updateJob(job.job_id, { ...editableBody(job), enabled: job.enabled === false }, job.version);
      flash(job.enabled === false ? "Monitor resumed." : "Monitor paused.", "ok");
      render();
    } catch (err) {
      flash(err.message, "error");
      toggle.disabled = false;
    }
  });
  remove.addEventListener("click", async () => {
    if (!(await confirmDialog(`Delete “${job.name}” and stop checking it? This cannot be undone.`, "Delete"))) return;
    try {
      await api.deleteJob(job.job_id);
      flash(`Deleted “${job.name}”.`, "ok");
      location.hash = "#/";
    } catch (err) {
      flash(err.message, "error");
    }
  });

  const next = nextRun(job);
  const header = h("section", { class: "panel job-header" },
    h("div", { class: "title-row" }, h("h1", { id: "job-title" }, job.name), enabledPill(job)),
    h("dl", { class: "facts" },
      h("dt", {}, "Type"), h("dd", {}, typeLabel(job.job_type)),
      job.url ? [h("dt", {}, "URL"), h("dd", {}, externalLink(job.url))] : null,
      h("dt", {}, "Schedule"), h("dd", { id: "schedule-words" }, describeSchedule(job.schedule)),
      job.schedule && (job.schedule.start_at || job.schedule.end_at)
        ? [h("dt", {}, "Active"), h("dd", { id: "schedule-window" },
          job.schedule.start_at ? `from ${formatDateTime(job.schedule.start_at)}` : "",
          job.schedule.start_at && job.schedule.end_at ? " " : "",
          job.schedule.end_at ? `until ${formatDateTime(job.schedule.end_at)}` : "")]
        : null,
      h("dt", {}, "Next run"), h("dd", { id: "next-run" }, next ? [formatDateTime(next), " (", relativeTime(next), ")"]
        : job.schedule && job.schedule.end_at && new Date(job.schedule.end_at) < new Date() ? "— (the schedule has ended)" : "—"),
      h("dt", {}, "Last change"), h("dd", {}, changes.length ? when(changes[0].at) : "—")),
    h("div", { class: "actions" }, runButton, toggle,
      h("a", { class: "button", href: `#/jobs/${encodeURIComponent(job.job_id)}/edit`, id: "edit" }, "Edit"), remove));

  const sections = [header];
  if (changes.length || job.job_type === "html_monitor_job") {
    const diffBox = h("div", { class: "diff-box", id: "diff" });
    const list = h("ol", { class: "changes" });
    const select = (change, item) => {
      for (const li of list.children) li.classList.remove("selected");
      item.classList.add("selected");
      mount(diffBox,
        h("p", { class: "muted" }, `Change detected ${formatDateTime(change.at)}`, change.summary ? ` — ${change.summary}` : ""),
        change.diff ? renderDiff(change.diff) : h("p", { class: "muted" }, "No diff was recorded for this change."));
    };
    for (const change of changes) {
      // The run that found the change failed after it (its notification could not be
      // sent, say): the change is real, the run history says what went wrong.
      const failed = Boolean(change.fire_id) && runOfFire.get(change.fire_id)?.status === "error";
      const item = h("li", { dataset: { fireId: change.fire_id || "" } },
        h("button", { type: "button", class: "link" }, formatDateTime(change.at)),
        " ", h("span", { class: "muted" }, change.summary || ""),
        failed ? [" ", h("span", { class: "badge status-error", title: "The run that found this change ended in an error; see the run history." }, "run failed")] : null);
      item.querySelector("button").addEventListener("click", () => select(change, item));
      list.append(item);
    }
    if (changes.length) select(changes[0], list.children[0]);
    sections.push(h("section", { class: "panel" }, h("h2", {}, "Changes"),
      changes.length
        ? h("div", { class: "changes-layout" }, list, diffBox)
        : h("p", { class: "muted" }, "No changes seen yet. The first check records the page; later checks show what changed.")));
  }
  sections.push(h("section", { class: "panel" }, h("h2", {}, "Check durations"), durationChart(runs)));
  const rows = runs.map((run) => {
    const detail = run.detail && run.status !== "changed"
      ? h("details", {}, h("summary", {}, "detail"), h("pre", { class: "detail" }, run.detail)) : null;
    return h("tr", { dataset: { runId: run.run_id, status: run.status } },
      h("td", {}, statusBadge(run.status)),
      h("td", {}, when(run.started_at)),
      h("td", {}, formatDuration(runDurationMs(run))),
      h("td", { class: "summary" }, run.summary || "", detail));
  });
  sections.push(h("section", { class: "panel" }, h("h2", {}, "Run history"),
    runs.length
      ? h("table", { class: "runs" }, h("thead", {}, h("tr", {}, ["Status", "Started", "Duration", "Summary"].map((c) => h("th", {}, c)))), h("tbody", {}, rows))
      : h("p", { class: "muted" }, "No runs yet. Use “Run now” to check it immediately.")));
  return h("div", { class: "detail-view" }, sections);
}

// -- router --------------------------------------------------------------------------
async function render() {
  renderSeq += 1;
  const seq = renderSeq;
  for (const t of timers) clearTimeout(t);
  timers = [];
  const route = location.hash.replace(/^#/, "") || "/";
  if (route === "/signin" || !getToken()) {
    mount(app, signInView());
    return;
  }
  document.getElementById("nav").hidden = false;
  let match;
  try {
    let view;
    if (route === "/") view = await listView(seq);
    else if (route === "/new") view = await formView(seq);
    else if ((match = /^\/jobs\/([^/]+)\/edit$/.exec(route))) view = await formView(seq, decodeURIComponent(match[1]));
    else if ((match = /^\/jobs\/([^/]+)$/.exec(route))) view = await detailView(seq, decodeURIComponent(match[1]));
    else view = errorView(new Error("There is no such page."));
    if (view && seq === renderSeq) mount(app, view);
  } catch (error) {
    if (seq !== renderSeq) return;
    if (error instanceof ApiError && error.status === 401) mount(app, signInView(error.message));
    else mount(app, errorView(error));
  }
}

async function boot() {
  await loadConfig();
  takeTokenFromFragment();
  let message = "";
  try {
    await finishCognitoSignIn();
  } catch (error) {
    message = error.message;
  }
  document.getElementById("signout").addEventListener("click", () => signOut());
  // A sign-in link pasted into a tab that shows the UI changes only the fragment:
  // take the token then too, as on load.
  window.addEventListener("hashchange", () => {
    takeTokenFromFragment();
    render();
  });
  if (message) mount(app, signInView(message));
  else await render();
}

boot();
