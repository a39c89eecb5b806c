// The JSON API client: bearer token, JSON bodies, errors as ApiError.

import { clearToken, getConfig, getToken } from "./auth.js";

export class ApiError extends Error {
  constructor(status, detail) {
    super(describeDetail(status, detail));
    this.status = status;
    this.detail = detail;
  }
}

function describeDetail(status, detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`).join("; ");
  }
  return `request failed (HTTP ${status})`;
}

export async function request(method, path, body, headers = {}, { redirectOn401 = true } = {}) {
  const token = getToken();
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`${getConfig().api_base_url}/api/v1${path}`, init);
  if (response.status === 401) {
    clearToken();
    if (redirectOn401) location.hash = "#/signin";
    throw new ApiError(401, "Your session has ended: sign in again.");
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text };
    }
  }
  if (!response.ok) throw new ApiError(response.status, data && data.detail);
  return data;
}

const enc = encodeURIComponent;

export const api = {
  jobTypes: () => request("GET", "/job_types"),
  checkToken: () => request("GET", "/job_types", undefined, {}, { redirectOn401: false }),
  async listJobs() {
    const items = [];
    let cursor = null;
    for (let page = 0; page < 50; page += 1) {
      const query = cursor ? `?limit=100&cursor=${enc(cursor)}` : "?limit=100";
      const data = await request("GET", `/jobs${query}`);
      items.push(...(data.items || []));
      cursor = data.next_cursor;
      if (!cursor) break;
    }
    return items;
  },
  getJob: (id) => request("GET", `/jobs/${enc(id)}`),
  createJob: (body) => request("POST", "/jobs", body),
  updateJob: (id, body, version) =>
    request("PUT", `/jobs/${enc(id)}`, body, version === undefined ? {} : { "If-Match": `"${version}"` }),
  deleteJob: (id) => request("DELETE", `/jobs/${enc(id)}`),
  runNow: (id) => request("POST", `/jobs/${enc(id)}/run`),
  runs: (id, limit = 50) => request("GET", `/jobs/${enc(id)}/runs?limit=${limit}`),
  changes: (id, limit = 50) => request("GET", `/jobs/${enc(id)}/changes?limit=${limit}`),
};
