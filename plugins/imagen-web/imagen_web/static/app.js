// The imagen gallery: plain JS, no build step. Talks only to the /v1 API.
// Everything from the server is put in the page with textContent, never as HTML.
"use strict";

const POLL_MS = 1000;          // pending jobs, and the newest images while jobs run
const IDLE_POLL_EVERY = 5;     // ... and every 5th tick when nothing is pending
const PAGE = 50;
const KEEP_FINISHED = 5;       // finished jobs still listed under the form

const $ = (id) => document.getElementById(id);
const state = {
  token: null,
  shown: new Set(),            // ids of the cards in the grid
  cursor: undefined,           // next_cursor of the oldest page loaded (null: no more)
  jobs: new Map(),             // id -> job, as the API last reported it
  ticks: 0,
};

// ------------------------------------------------------------------ token

// The token as written after ?token=: URLSearchParams would read the "+" of a
// base64 token (`openssl rand -base64 24`) as a space.
function tokenInUrl() {
  for (const part of location.search.slice(1).split("&")) {
    const at = part.indexOf("=");
    if (at < 0 || part.slice(0, at) !== "token") continue;
    const raw = part.slice(at + 1);
    try {
      return decodeURIComponent(raw);
    } catch (err) {
      return raw;  // a stray "%": the token as typed
    }
  }
  return null;
}

function readToken() {
  const params = new URLSearchParams(location.search);
  const fromUrl = tokenInUrl();
  if (fromUrl) {
    localStorage.setItem("imagen.token", fromUrl);
    params.delete("token");
    // Out of the address bar (and the history) as soon as it is stored.
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : ""));
  }
  setToken(localStorage.getItem("imagen.token"));
}

function setToken(token) {
  state.token = token || null;
  if (state.token) {
    localStorage.setItem("imagen.token", state.token);
    // <img> cannot send a header: /images/ also reads this cookie, which no other site can make us send.
    // URL-encoded (a cookie value cannot hold every character); the server decodes it.
    document.cookie = `imagen_token=${encodeURIComponent(state.token)}; path=/images; SameSite=Strict`;
  }
}

// ------------------------------------------------------------------ API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method: options.method || "GET",
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
  } catch (err) {
    setStatus("server unreachable");
    throw new ApiError(0, "unreachable", "the imagen server does not answer (is `imagen serve` running?)");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    if (response.status === 401) $("token-form").hidden = false;
    throw new ApiError(response.status, error.code || "http_" + response.status,
                       error.message || `${response.status} ${response.statusText}`);
  }
  setStatus("");
  return data;
}

// ------------------------------------------------------------------ messages

function showError(message) {
  $("error-text").textContent = message;
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error-text").textContent = "";
}

function setStatus(text) {
  $("server-status").textContent = text;
}

function formatCost(cost) {
  if (cost === null || cost === undefined) return "cost unknown";
  if (cost === 0) return "free";
  return "$" + cost.toFixed(cost < 0.01 ? 4 : 2);
}

function formatLatency(seconds) {
  return seconds === null || seconds === undefined ? "–" : seconds.toFixed(2) + " s";
}

function el(tag, attributes = {}, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// ------------------------------------------------------------------ backends

async function loadBackends() {
  const data = await api("/v1/backends");
  const backend = $("backend");
  backend.replaceChildren();
  for (const item of data.backends) {
    const option = el("option", { value: item.name }, item.name + (item.type !== item.name ? ` (${item.type})` : ""));
    if (!item.available) option.disabled = true;
    if (item.default) option.selected = true;
    backend.append(option);
  }
  const style = $("style");
  style.replaceChildren(el("option", { value: "" }, "none"));
  for (const name of data.styles) style.append(el("option", { value: name }, name));
}

// ------------------------------------------------------------------ jobs

async function submitPrompt(event) {
  event.preventDefault();
  clearError();
  const prompt = $("prompt").value.trim();
  if (!prompt) {
    showError("prompt: describe the image");
    return;
  }
  const [width, height] = $("size").value.split("x").map(Number);
  const seed = Number($("seed").value || 0);
  if (!Number.isInteger(seed) || seed < 0) {
    showError("seed: a whole number, 0 or more (0 picks one)");
    return;
  }
  const body = { prompt, backend: $("backend").value || null, width, height, seed };
  if ($("style").value) body.style = $("style").value;
  const button = $("submit");
  button.disabled = true;
  try {
    const job = await api("/v1/jobs", { method: "POST", body });
    state.jobs.set(job.id, job);
    renderJobs();
    schedule(0);
  } catch (err) {
    showError(err.message);
  } finally {
    button.disabled = false;
  }
}

function pending() {
  return [...state.jobs.values()].filter((job) => job.status === "queued" || job.status === "running");
}

// Jobs queued elsewhere (`imagen submit`, a script, another tab) are listed too,
// so the page shows what the workers are busy with; oldest first into the Map,
// which renderJobs shows newest first.
async function discoverJobs() {
  for (const status of ["queued", "running"]) {
    const answer = await api(`/v1/jobs?status=${status}&limit=20`);
    for (const job of [...answer.jobs].reverse()) {
      if (!state.jobs.has(job.id)) state.jobs.set(job.id, job);
    }
  }
  renderJobs();
}

async function pollJobs() {
  let finished = false;
  await Promise.all(pending().map(async (job) => {
    try {
      const now = await api(`/v1/jobs/${encodeURIComponent(job.id)}`);
      if (now.status !== job.status && (now.status === "done" || now.status === "failed" || now.status === "canceled")) {
        finished = true;
        if (now.status === "failed") showError(`job ${now.id.slice(0, 8)} failed: ${now.error || "no reason given"}`);
      }
      state.jobs.set(now.id, now);
    } catch (err) {
      if (err.status === 404) state.jobs.delete(job.id);
      else throw err;
    }
  }));
  renderJobs();
  return finished;
}

async function cancelJob(id) {
  try {
    state.jobs.set(id, await api(`/v1/jobs/${encodeURIComponent(id)}`, { method: "DELETE" }));
  } catch (err) {
    showError(err.message);
  }
  renderJobs();
}

function renderJobs() {
  const live = pending();
  const finished = [...state.jobs.values()].filter((job) => !live.includes(job));
  for (const old of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) state.jobs.delete(old.id);
  const list = $("jobs");
  list.replaceChildren();
  for (const job of [...state.jobs.values()].reverse()) {
    const item = el("li", { class: job.status, "data-job": job.id });
    item.append(el("span", { class: "status" }, job.status));
    item.append(el("span", { class: "prompt", title: job.prompt }, job.prompt));
    let detail = job.backend;
    if (job.status === "done") detail += ` · seed ${job.seed} · ${formatLatency(job.latency_s)} · ${formatCost(job.cost_usd)}`;
    if (job.status === "failed" && job.error) detail += ` · ${job.error}`;
    item.append(el("span", { class: "muted" }, detail));
    if (job.status === "queued" || job.status === "running") {
      const cancel = el("button", { type: "button" }, "Cancel");
      cancel.addEventListener("click", () => cancelJob(job.id));
      item.append(cancel);
    }
    list.append(item);
  }
}

// ------------------------------------------------------------------ images

function card(entry) {
  const figure = el("figure", { class: `card ${entry.kind}`, tabindex: "0", "data-id": entry.id });
  const image = el("img", { alt: entry.prompt, loading: "lazy", decoding: "async" });
  if (entry.url) image.src = entry.url;
  // The whole image, scaled into a square frame: never cropped.
  const frame = el("div", { class: "thumb" });
  frame.append(image);
  figure.append(frame);
  if (entry.kind === "compare") figure.append(el("span", { class: "badge" }, "compare"));
  const meta = [entry.backend, entry.seed !== null ? `seed ${entry.seed}` : null,
                formatLatency(entry.latency_s), formatCost(entry.cost_usd)].filter(Boolean).join(" · ");
  figure.append(el("div", { class: "meta" }, meta));
  figure.append(el("figcaption", { title: entry.prompt }, entry.prompt));
  const open = () => showDetail(entry);
  figure.addEventListener("click", open);
  figure.addEventListener("keydown", (event) => { if (event.key === "Enter") open(); });
  return figure;
}

async function refreshNewest() {
  const data = await api(`/v1/images?limit=${PAGE}`);
  const grid = $("grid");
  if (state.cursor === undefined) state.cursor = data.next_cursor;
  // Newest first: walking the page backwards and prepending keeps the order.
  for (const entry of [...data.images].reverse()) {
    if (state.shown.has(entry.id)) continue;
    state.shown.add(entry.id);
    grid.prepend(card(entry));
  }
  renderFooter();
}

async function loadOlder() {
  if (!state.cursor) return;
  const data = await api(`/v1/images?limit=${PAGE}&cursor=${encodeURIComponent(state.cursor)}`);
  for (const entry of data.images) {
    if (state.shown.has(entry.id)) continue;
    state.shown.add(entry.id);
    $("grid").append(card(entry));
  }
  state.cursor = data.next_cursor;
  renderFooter();
}

function renderFooter() {
  $("empty").hidden = state.shown.size > 0;
  $("more").hidden = !state.cursor;
}

function showDetail(entry) {
  const dialog = $("detail");
  const image = $("detail-image");
  image.src = entry.url || "";
  image.alt = entry.prompt;
  $("detail-prompt").textContent = entry.prompt;
  const fields = [
    ["kind", entry.kind === "compare" ? "compare run" : "image"],
    ["backend", entry.backend],
    ["model", entry.model],
    ["seed", entry.seed],
    ["size", entry.width && entry.height ? `${entry.width} × ${entry.height}` : null],
    ["steps", entry.steps || null],
    ["style", entry.style],
    ["negative", entry.negative],
    [entry.kind === "compare" ? "latency (all)" : "latency", formatLatency(entry.latency_s)],
    ["cost", formatCost(entry.cost_usd)],
    ["created", entry.created],
    ["job", entry.job],
    ["file", entry.id],
  ];
  const list = $("detail-fields");
  list.replaceChildren();
  for (const [name, value] of fields) {
    if (value === null || value === undefined || value === "") continue;
    list.append(el("dt", {}, name), el("dd", {}, String(value)));
  }
  const tiles = $("detail-tiles");
  tiles.replaceChildren();
  for (const tile of entry.tiles || []) {
    const figure = el("figure");
    if (tile.url) figure.append(el("img", { src: tile.url, alt: tile.backend || "", loading: "lazy" }));
    const line = tile.status === "ok"
      ? `${tile.backend} · ${tile.model} · seed ${tile.seed} · ${formatLatency(tile.latency_s)} · ${formatCost(tile.cost_usd)}`
      : `${tile.backend}: failed${tile.error ? " — " + tile.error : ""}`;
    figure.append(el("figcaption", {}, line));
    tiles.append(figure);
  }
  dialog.showModal();
}

// ------------------------------------------------------------------ loop

let timer = null;

function schedule(delay) {
  clearTimeout(timer);
  timer = setTimeout(tick, delay);
}

async function tick() {
  state.ticks += 1;
  try {
    if (state.ticks % IDLE_POLL_EVERY === 1) await discoverJobs();
    const busy = pending().length > 0;
    const finished = busy ? await pollJobs() : false;
    if (busy || finished || state.ticks % IDLE_POLL_EVERY === 0) await refreshNewest();
  } catch (err) {
    if (err.status !== 401) showError(err.message);
  }
  schedule(POLL_MS);
}

async function start() {
  readToken();
  $("prompt-form").addEventListener("submit", submitPrompt);
  $("more").addEventListener("click", () => loadOlder().catch((err) => showError(err.message)));
  $("error-close").addEventListener("click", clearError);
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setToken($("token-input").value.trim());
    $("token-form").hidden = true;
    clearError();
    startLoading();
  });
  startLoading();
}

async function startLoading() {
  try {
    await loadBackends();
    await discoverJobs();
    await refreshNewest();
  } catch (err) {
    if (err.status !== 401) showError(err.message);
  }
  schedule(POLL_MS);
}

start();
