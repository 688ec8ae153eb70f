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
  inputs: [],                  // input images of the form: {file, url} or {id, url}, the first is edited
};
const IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp"];

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
  const form = options.body instanceof FormData;  // the browser sets the multipart boundary
  if (options.body !== undefined && !form) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method: options.method || "GET",
      headers,
      body: options.body === undefined ? undefined : form ? options.body : JSON.stringify(options.body),
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

// What imagen changed on the way (a mask scaled to the image): the answer's warnings.
function showNotice(lines) {
  $("notice-text").textContent = lines.join("\n");
  $("notice").hidden = false;
}

function clearNotice() {
  $("notice").hidden = true;
  $("notice-text").textContent = "";
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
  updateEstimate();
}

// ------------------------------------------------------------------ estimate

function formatPrice(estimate) {
  if (!estimate || estimate.usd === null || estimate.usd === undefined) return "price unknown";
  if (estimate.usd === 0) return "free";
  return `≈ ${formatCost(estimate.usd)} per image`;
}

let estimateTimer = null;
let estimateAsked = 0;

// The price of what the form would run, before a click: the backend's own
// estimate for this size (POST /v1/estimate), shown next to Generate.
function updateEstimate() {
  clearTimeout(estimateTimer);
  estimateTimer = setTimeout(async () => {
    const asked = ++estimateAsked;
    const [width, height] = $("size").value.split("x").map(Number);
    const body = { prompt: $("prompt").value.trim() || "price", backend: $("backend").value || null, width, height };
    if ($("style").value) body.style = $("style").value;
    const out = $("estimate");
    try {
      const found = await api("/v1/estimate", { method: "POST", body });
      if (asked !== estimateAsked) return;  // an answer to an older form
      out.textContent = formatPrice(found);
      out.title = found.source || found.basis;
    } catch (err) {
      if (asked !== estimateAsked) return;
      out.textContent = "";
      out.title = err.message;
    }
  }, 250);
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
  const fields = { prompt, backend: $("backend").value || null, width, height, seed };
  if ($("style").value) fields.style = $("style").value;
  const strength = $("strength").value;
  if (strength !== "") fields.strength = Number(strength);
  const mask = $("mask-file").files[0];
  if ((mask || strength !== "") && !state.inputs.length) {
    showError("images: a mask or a strength needs an input image: add one");
    return;
  }
  await submitJob(state.inputs.length ? inputForm(fields, state.inputs, mask) : fields);
}

// Images go as a multipart form: files as `image`, gallery images as `image_id`, in order.
function inputForm(fields, inputs, mask) {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    if (value !== null && value !== undefined) form.append(name, String(value));
  }
  for (const input of inputs) {
    if (input.file) form.append("image", input.file, input.file.name || "pasted.png");
    else form.append("image_id", input.id);
  }
  if (mask) form.append("mask", mask, mask.name);
  return form;
}

async function submitJob(body) {
  const button = $("submit");
  button.disabled = true;
  clearNotice();
  try {
    const job = await api("/v1/jobs", { method: "POST", body });
    if (job.warnings && job.warnings.length) showNotice(job.warnings);
    state.jobs.set(job.id, job);
    renderJobs();
    schedule(0);
  } catch (err) {
    showError(err.message);
  } finally {
    button.disabled = false;
  }
}

// ------------------------------------------------------------------ input images

function addFiles(files) {
  let added = 0;
  for (const file of files) {
    if (!IMAGE_TYPES.includes(file.type)) {
      showError(`${file.name || "that file"}: not a PNG, JPEG or WebP image`);
      continue;
    }
    state.inputs.push({ file, url: URL.createObjectURL(file) });
    added += 1;
  }
  if (added) renderInputs();
}

function setInputs(inputs) {
  for (const input of state.inputs) if (input.file) URL.revokeObjectURL(input.url);
  state.inputs = inputs;
  $("mask-file").value = "";
  $("strength").value = "";
  renderInputs();
}

function renderInputs() {
  const list = $("input-list");
  list.replaceChildren();
  state.inputs.forEach((input, index) => {
    const item = el("li", { "data-input": input.id || input.file.name || "pasted" });
    item.append(el("img", { src: input.url, alt: "" }));
    item.append(el("span", {}, index === 0 ? "to edit" : "reference"));
    const remove = el("button", { type: "button", "aria-label": "Remove" }, "Remove");
    remove.addEventListener("click", () => {
      const [gone] = state.inputs.splice(index, 1);
      if (gone.file) URL.revokeObjectURL(gone.url);
      renderInputs();
    });
    item.append(remove);
    list.append(item);
  });
  $("input-options").hidden = state.inputs.length === 0;
}

function imageFiles(transfer) {
  if (!transfer) return [];
  const files = [...(transfer.files || [])];
  if (files.length) return files;
  return [...(transfer.items || [])].filter((item) => item.kind === "file").map((item) => item.getAsFile()).filter(Boolean);
}

function watchInputs() {
  $("image-file").addEventListener("change", (event) => {
    addFiles([...event.target.files]);
    event.target.value = "";
  });
  $("clear-inputs").addEventListener("click", () => setInputs([]));
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    addFiles(imageFiles(event.dataTransfer));
  });
  // Pasting an image anywhere on the page adds it (text pastes into the prompt as usual).
  document.addEventListener("paste", (event) => {
    const files = imageFiles(event.clipboardData).filter((file) => IMAGE_TYPES.includes(file.type));
    if (!files.length) return;
    event.preventDefault();
    addFiles(files);
  });
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
  if (entry.kind === "compare" || entry.kind === "grid") figure.append(el("span", { class: "badge" }, entry.kind));
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
  image.dataset.id = entry.id;
  image.alt = entry.prompt;
  $("detail-prompt").textContent = entry.prompt;
  const fields = [
    ["kind", entry.kind === "image" ? "image" : `${entry.kind} run`],
    ["axes", entry.axes ? entry.axes.join(", ") : null],
    ["backend", entry.backend],
    ["model", entry.model],
    ["seed", entry.seed],
    ["size", entry.width && entry.height ? `${entry.width} × ${entry.height}` : null],
    ["steps", entry.steps || null],
    ["style", entry.style],
    ["negative", entry.negative],
    [entry.kind === "image" ? "latency" : "latency (all)", formatLatency(entry.latency_s)],
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
  if (entry.page) {
    const item = el("dd");
    item.append(el("a", { href: entry.page, target: "_blank", rel: "noopener" }, "open the grid page"));
    list.append(el("dt", {}, "page"), item);
  }
  const made = $("detail-inputs");
  made.replaceChildren();
  for (const input of entry.inputs || []) {
    const figure = el("figure", { "data-sha256": input.sha256 || "" });
    const caption = `${input.role}${input.width ? ` · ${input.width} × ${input.height}` : ""}`;
    if (input.url) {
      const link = el("a", { href: input.url, target: "_blank", rel: "noopener" });
      link.append(el("img", { src: input.url, alt: input.role || "input", loading: "lazy" }));
      figure.append(link);
    }
    figure.append(el("figcaption", {}, input.url ? caption : `${caption} (not in the gallery)`));
    made.append(figure);
  }
  const single = entry.kind === "image";
  $("detail-actions").hidden = !single;
  $("detail-edit").onclick = () => editImage(entry);
  $("detail-variations").onclick = () => variations(entry);
  $("detail-again").onclick = () => runAgain({ id: entry.id }, $("detail"));
  $("detail-copy").onclick = () => copyParameters($("detail-parameters"), $("detail-copied"));
  $("detail-parameters").hidden = true;
  $("detail-copied").textContent = "";
  $("detail-copy").disabled = true;
  $("detail-again").disabled = true;
  if (single) showParameters(entry);
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

// The parameters as the file holds them (what `imagen info` reads), for Copy parameters.
async function showParameters(entry) {
  try {
    const found = await api(`/v1/info?id=${encodeURIComponent(entry.id)}`);
    if ($("detail-image").dataset.id !== entry.id) return;  // another image opened since
    const text = $("detail-parameters");
    text.value = found.parameters_text || found.report;
    text.hidden = false;
    $("detail-copy").disabled = !found.parameters_text;
    $("detail-again").disabled = !found.again;
    $("detail-again").title = found.again_error || "The recorded request again: same seed, backend and inputs";
  } catch (err) {
    $("detail-copied").textContent = err.message;
  }
}

// The clipboard when the browser lets the page write it; the text stays
// selected in its box either way, for Ctrl-C.
async function copyParameters(box, status) {
  box.hidden = false;
  box.focus();
  box.select();
  try {
    await navigator.clipboard.writeText(box.value);
    status.textContent = "Copied";
  } catch (err) {
    status.textContent = "Selected: press Ctrl-C to copy";
  }
}

// Run again: the recorded request (same seed, backend, inputs) as a new job.
// `source` is {id} for a gallery image, or a File dropped onto the page.
async function runAgain(source, dialog) {
  clearError();
  let body;
  if (source instanceof File) {
    body = new FormData();
    body.append("file", source, source.name || "dropped.png");
  } else {
    body = { id: source.id };
  }
  try {
    const job = await api("/v1/again", { method: "POST", body });
    state.jobs.set(job.id, job);
    dialog.close();
    renderJobs();
    schedule(0);
  } catch (err) {
    showError(err.message);
  }
}

// ------------------------------------------------------------------ dropped files

// Any image dropped onto the page (not onto the form's input images): what
// `imagen info` says about it, and Run again.
async function showInfo(file) {
  clearError();
  const body = new FormData();
  body.append("file", file, file.name || "dropped.png");
  let found;
  try {
    found = await api("/v1/info", { method: "POST", body });
  } catch (err) {
    showError(err.message);
    return;
  }
  $("info-name").textContent = found.name;
  $("info-report").textContent = found.report;
  const text = $("info-parameters");
  text.value = found.parameters_text || "";
  text.hidden = !found.parameters_text;
  $("info-problem").textContent = found.again_error || "";
  $("info-problem").hidden = !found.again_error;
  $("info-again").hidden = !found.again;
  $("info-again").onclick = () => runAgain(file, $("info"));
  $("info").showModal();
}

function watchPageDrops() {
  const cover = $("page-drop");
  const outside = (event) => !$("drop").contains(event.target);
  document.addEventListener("dragover", (event) => {
    if (!outside(event)) return;
    event.preventDefault();
    cover.hidden = false;
  });
  document.addEventListener("dragleave", (event) => {
    if (event.relatedTarget === null) cover.hidden = true;
  });
  document.addEventListener("drop", (event) => {
    cover.hidden = true;
    if (!outside(event)) return;
    event.preventDefault();
    const [file] = imageFiles(event.dataTransfer);
    if (file) showInfo(file);
  });
}

// ------------------------------------------------------------------ usage

const PALETTE = ["#2f6fdf", "#e07b24", "#2a9d63", "#b8439a", "#c9a400", "#5b6bd6", "#d2453d", "#3aa6b9"];
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

async function toggleUsage() {
  const section = $("usage");
  section.hidden = !section.hidden;
  $("usage-toggle").setAttribute("aria-expanded", String(!section.hidden));
  if (!section.hidden) await loadUsage().catch((err) => showError(err.message));
}

async function loadUsage() {
  const [usage, budgets] = await Promise.all([api("/v1/usage"), api("/v1/budgets")]);
  drawSpend(usage.weeks);
  renderBudgets(budgets.budgets);
}

// Spend per ISO week, one bar per week, one segment per backend: an inline SVG
// drawn here (no chart library, nothing fetched).
function drawSpend(groups) {
  const weeks = [...new Set(groups.map((group) => group.week))].sort();
  const backends = [...new Set(groups.map((group) => group.backend))].sort();
  const spend = new Map();  // week -> backend -> usd
  for (const group of groups) {
    const perWeek = spend.get(group.week) || new Map();
    perWeek.set(group.backend, (perWeek.get(group.backend) || 0) + (group.cost_usd || 0));
    spend.set(group.week, perWeek);
  }
  const totals = weeks.map((week) => [...spend.get(week).values()].reduce((a, b) => a + b, 0));
  const top = Math.max(...totals, 0);
  const chart = $("usage-chart");
  chart.replaceChildren();
  $("usage-empty").hidden = weeks.length > 0;
  chart.hidden = weeks.length === 0;
  const width = 900, height = 240, left = 56, bottom = 22, topPad = 12;
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const plot = height - bottom - topPad;
  const scale = top > 0 ? plot / top : 0;
  for (const fraction of [0, 0.5, 1]) {
    const y = topPad + plot - fraction * plot;
    chart.append(svg("line", { x1: left, x2: width, y1: y, y2: y }));
    chart.append(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, "$" + (top * fraction).toFixed(2)));
  }
  const slot = (width - left) / Math.max(weeks.length, 1);
  const barWidth = Math.min(60, slot * 0.7);
  weeks.forEach((week, index) => {
    const bar = svg("g", { class: "week", "data-week": week });
    const x = left + index * slot + (slot - barWidth) / 2;
    let y = topPad + plot;
    for (const backend of backends) {
      const usd = spend.get(week).get(backend);
      if (usd === undefined) continue;
      const tall = usd * scale;
      y -= tall;
      const segment = svg("rect", {
        x, y, width: barWidth, height: Math.max(tall, 0), "data-backend": backend, "data-usd": usd,
        fill: PALETTE[backends.indexOf(backend) % PALETTE.length],
      });
      segment.append(svg("title", {}, `${week} · ${backend}: ${formatCost(usd)}`));
      bar.append(segment);
    }
    bar.append(svg("text", { x: x + barWidth / 2, y: height - 6, "text-anchor": "middle" }, week));
    bar.append(svg("title", {}, `${week}: ${formatCost(totals[index])}`));
    chart.append(bar);
  });
  const legend = $("usage-legend");
  legend.replaceChildren();
  backends.forEach((backend, index) => {
    const swatch = svg("svg", { viewBox: "0 0 10 10", "aria-hidden": "true" });
    swatch.append(svg("rect", { width: 10, height: 10, fill: PALETTE[index % PALETTE.length] }));
    const item = el("li", { "data-backend": backend });
    item.append(swatch, document.createTextNode(backend));
    legend.append(item);
  });
}

// Dollars as an amount (a budget's spend, what is left): $0.00, never "free".
function money(usd) {
  return "$" + usd.toFixed(usd > 0 && usd < 0.01 ? 4 : 2);
}

function renderBudgets(budgets) {
  const list = $("budgets");
  list.replaceChildren();
  $("budgets-empty").hidden = budgets.length > 0;
  for (const budget of budgets) {
    const scope = [budget.backend && `backend ${budget.backend}`, budget.caller && `caller ${budget.caller}`]
      .filter(Boolean).join(", ") || "everything";
    const item = el("li", { "data-period": budget.period });
    const period = { day: "daily", week: "weekly", month: "monthly" }[budget.period] || budget.period;
    item.append(el("span", {}, `${period} · ${scope}: ${money(budget.spent_usd)} of ${money(budget.limit_usd)} spent`));
    const used = budget.spent_usd + budget.reserved_usd;
    item.append(el("progress", { max: budget.limit_usd, value: Math.min(used, budget.limit_usd) }));
    const left = el("span", { class: budget.remaining_usd > 0 ? "left" : "left over" },
                    `${money(budget.remaining_usd)} left · resets ${budget.resets.replace("T", " ").replace("+00:00", " UTC")}`);
    item.append(left);
    list.append(item);
  }
}

// Edit: the form, with this image as its input (the prompt is the new instruction).
function editImage(entry) {
  $("detail").close();
  setInputs([{ id: entry.id, url: entry.url }]);
  selectSize(entry.width, entry.height);
  $("prompt").value = "";
  $("prompt").focus();
  $("prompt").scrollIntoView({ block: "center" });
}

function selectSize(width, height) {
  if (!width || !height) return;
  const size = $("size");
  const value = `${width}x${height}`;
  if (![...size.options].some((option) => option.value === value)) {
    size.append(el("option", { value }, `${width} × ${height}`));
  }
  size.value = value;
}

// Variations: the same request again (same inputs, by their gallery ids), on a new seed.
async function variations(entry) {
  clearError();
  const inputs = entry.inputs || [];
  const missing = inputs.find((input) => !input.id);
  if (missing) {
    showError(`images: an input of this image (${missing.role}) is not in the gallery; use Edit instead`);
    return;
  }
  const body = { prompt: entry.prompt, backend: entry.backend, width: entry.width || 1024,
                 height: entry.height || 1024, seed: 0 };
  if (entry.steps) body.steps = entry.steps;
  if (entry.style) body.style = entry.style;
  if (entry.negative) body.negative = entry.negative;
  if (entry.strength !== null && entry.strength !== undefined) body.strength = entry.strength;
  const images = inputs.filter((input) => input.role !== "mask").map((input) => ({ id: input.id }));
  const mask = inputs.find((input) => input.role === "mask");
  if (images.length) body.images = images;
  if (mask) body.mask = { id: mask.id };
  $("detail").close();
  await submitJob(body);
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
  watchInputs();
  watchPageDrops();
  $("usage-toggle").addEventListener("click", toggleUsage);
  for (const id of ["backend", "size", "style"]) $(id).addEventListener("change", updateEstimate);
  $("more").addEventListener("click", () => loadOlder().catch((err) => showError(err.message)));
  $("error-close").addEventListener("click", clearError);
  $("notice-close").addEventListener("click", clearNotice);
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
