// Pressroom web page: one module, no build step, nothing from another origin.
//
// Live updates come over the WebSocket /v1/ws (docs/protocol.md); artifacts, edits, regeneration, history
// and exports over the REST API. Untrusted text is only ever set with textContent; the one exception is
// blog.html, which the server sanitises.
//
// Resilience: the last event sequence seen per job is kept in sessionStorage, with the timeline and the
// text streamed so far, so a reload (or a dropped connection) resumes with subscribe {job_id, after_seq}
// and receives exactly what was missed.

const STAGES = ["research", "blog", "social", "image", "job"];
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const STATUS_RANK = { "": 0, requested: 1, running: 2, completed: 3, failed: 3, cancelled: 3 };
const PING_INTERVAL_MS = 20000;
const PONG_TIMEOUT_MS = 10000;
const BACKOFF_MAX_MS = 15000;
const START_TIMEOUT_MS = 15000;
const MAX_MESSAGES_PER_STAGE = 50;
const TOKEN_KEY = "pressroom-token";
const AUTH_ERRORS = new Set(["unauthenticated", "unauthorized", "invalid_token"]);
const CURRENT_KEY = "pressroom:job";
const seqKey = (job) => `pressroom:seq:${job}`;
const viewKey = (job) => `pressroom:view:${job}`;

const $ = (id) => document.getElementById(id);

// ---- the API key --------------------------------------------------------------------------------------

function metaToken() {
  const value = document.querySelector('meta[name="pressroom-token"]')?.getAttribute("content") || "";
  return value.startsWith("{{") ? "" : value.trim();
}

// A key given on the page (kept in localStorage) wins over the gateway's page key; a kept key the gateway
// refuses gives way to the page key before the page asks for another.
let token = localStorage.getItem(TOKEN_KEY) || metaToken() || "";
let waitingForKey = false;

function keyRefused(used, reason) {
  if (used !== token) return; // an answer to a key already replaced
  const kept = localStorage.getItem(TOKEN_KEY);
  if (used === kept && metaToken() && metaToken() !== used) {
    localStorage.removeItem(TOKEN_KEY);
    token = metaToken();
    socket.reconnectNow();
    loadHistory();
    return;
  }
  askForKey(reason || "The gateway did not accept the API key.");
}

function askForKey(reason) {
  waitingForKey = true;
  $("key-panel").hidden = false;
  const error = $("key-error");
  error.hidden = !reason;
  error.textContent = reason || "";
  $("key-input").focus();
}

function useKey(value) {
  token = value.trim();
  if (token) localStorage.setItem(TOKEN_KEY, token);
  waitingForKey = false;
  $("key-panel").hidden = true;
  socket.reconnectNow();
  loadHistory();
  if (state.jobId) refreshSnapshot();
}

// ---- REST ---------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function describeError(data, fallback) {
  const detail = data?.detail ?? data?.error ?? data?.message ?? data;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((item) => (item?.loc ? `${item.loc.filter((p) => p !== "body").join(".")}: ${item.msg}` : String(item?.msg ?? item)))
      .join("; ");
  }
  if (detail && typeof detail.message === "string") return detail.message;
  return fallback;
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const used = token;
  if (used) headers.Authorization = `Bearer ${used}`;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "the gateway cannot be reached");
  }
  if (response.status === 401) {
    keyRefused(used, "The gateway did not accept the API key.");
    throw new ApiError(401, "the API key was refused");
  }
  if (!response.ok) {
    let data = null;
    try {
      data = await response.json();
    } catch {
      /* not JSON */
    }
    throw new ApiError(response.status, describeError(data, `${response.status} ${response.statusText}`));
  }
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

async function download(path, filename) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const response = await fetch(path, { headers });
  if (!response.ok) throw new ApiError(response.status, `export failed: ${response.status} ${response.statusText}`);
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// ---- job state ----------------------------------------------------------------------------------------

function emptyStages() {
  return Object.fromEntries(STAGES.map((name) => [name, { state: "pending", messages: [] }]));
}

const state = {
  jobId: null,
  seq: 0,
  status: "",
  topic: "",
  request: null,
  stages: emptyStages(),
  socialDone: [],
  usage: {}, // call -> cost_usd, from usage.recorded events
  stream: { base: 0, text: "", active: false }, // the blog as it is written
  expect: { blog: 0, image: 0, social: {} }, // versions announced by events; the snapshot catches up
  snapshot: null,
  activeTab: null,
  error: "",
  checks: { blog: null, social: {} }, // what the checks before publishing found, from the events
};

function resetState(jobId) {
  Object.assign(state, {
    jobId,
    seq: 0,
    status: "",
    topic: "",
    request: null,
    stages: emptyStages(),
    socialDone: [],
    usage: {},
    stream: { base: 0, text: "", active: false },
    expect: { blog: 0, image: 0, social: {} },
    snapshot: null,
    activeTab: null,
    error: "",
    checks: { blog: null, social: {} },
  });
}

// The view and the sequence it reflects are saved together, synchronously after every event: a reload
// then resumes after exactly what is on screen. Deltas (many, and not replayable anyway) are saved
// at most every 300 ms.
let saveTimer = null;

function saveNow() {
  clearTimeout(saveTimer);
  saveTimer = null;
  if (!state.jobId) return;
  const view = {
    seq: state.seq,
    status: state.status,
    topic: state.topic,
    request: state.request,
    stages: state.stages,
    socialDone: state.socialDone,
    usage: state.usage,
    stream: state.stream,
    expect: state.expect,
    checks: state.checks,
  };
  try {
    sessionStorage.setItem(viewKey(state.jobId), JSON.stringify(view));
    sessionStorage.setItem(seqKey(state.jobId), String(state.seq));
  } catch {
    /* storage full: the REST snapshot still restores the artifacts */
  }
}

function saveSoon() {
  if (!saveTimer) saveTimer = setTimeout(saveNow, 300);
}

function restoreView(jobId) {
  let view = null;
  try {
    view = JSON.parse(sessionStorage.getItem(viewKey(jobId)) || "null");
  } catch {
    view = null;
  }
  // Without the view that goes with it, a sequence is useless: replay the whole job instead.
  if (view && Number.isInteger(view.seq)) Object.assign(state, { checks: { blog: null, social: {} } }, view);
}

function setStatus(status) {
  if ((STATUS_RANK[status] ?? 0) >= (STATUS_RANK[state.status] ?? 0)) state.status = status;
}

function stageNote(name, message, stageState) {
  const stage = state.stages[name] || (state.stages[name] = { state: "pending", messages: [] });
  if (stageState) stage.state = stageState;
  if (message) {
    stage.messages.push(message);
    if (stage.messages.length > MAX_MESSAGES_PER_STAGE) stage.messages.splice(0, stage.messages.length - MAX_MESSAGES_PER_STAGE);
  }
}

function money(value) {
  return `$${Number(value || 0).toFixed(4)}`;
}

// One stored event of the job, in stream order.
function applyEvent(event) {
  const data = event.data || {};
  switch (event.type) {
    case "job.requested":
      state.request = data.request || null;
      state.topic = data.request?.topic || state.topic;
      setStatus("requested");
      stageNote("job", "Job accepted", "running");
      if (state.request && state.request.image === false) stageNote("image", "No illustration asked for", "skipped");
      break;
    case "stage.progress": {
      setStatus("running");
      // A stage that finished may still report (e.g. "stored"); only a regeneration makes it run again.
      const current = state.stages[data.stage]?.state;
      const finished = current === "done" || current === "failed" || data.stage === "job";
      stageNote(data.stage, data.message, finished ? null : "running");
      if (data.stage === "blog" && !finished && !state.stream.active) state.stream = { base: 0, text: "", active: true };
      break;
    }
    case "research.completed": {
      const count = (data.sources || []).length;
      const note = data.skipped
        ? `Skipped${data.reason ? `: ${data.reason}` : ""}`
        : `${count} source${count === 1 ? "" : "s"} from ${data.provider}${data.reason ? ` (${data.reason})` : ""}`;
      stageNote("research", note, "done");
      break;
    }
    case "blog.completed":
      state.checks.blog = data.checks || null;
      state.stream.active = false;
      state.expect.blog = Math.max(state.expect.blog, data.version || 1);
      stageNote("blog", `${data.regenerated ? "Regenerated" : "Written"}: “${data.title}” (${data.word_count} words, v${data.version || 1})`, "done");
      refreshSnapshot();
      break;
    case "blog.edited":
      state.expect.blog = Math.max(state.expect.blog, data.version);
      stageNote("blog", `Edited: version ${data.version}`, "done");
      refreshSnapshot();
      break;
    case "social.completed":
    case "social.edited": {
      const platform = data.platform;
      state.checks.social[platform] = event.type === "social.completed" ? data.checks || null : null;
      state.expect.social[platform] = Math.max(state.expect.social[platform] || 0, data.version || 1);
      if (!state.socialDone.includes(platform)) state.socialDone.push(platform);
      const verb = event.type === "social.edited" ? "edited" : data.version > 1 ? "regenerated" : "ready";
      const wanted = state.request?.platforms || [];
      const done = wanted.length && wanted.every((p) => state.socialDone.includes(p));
      stageNote("social", `${platform} ${verb}: ${data.characters} / ${data.limit} characters`, done ? "done" : "running");
      refreshSnapshot();
      break;
    }
    case "image.completed":
      state.expect.image = Math.max(state.expect.image, data.version || 1);
      stageNote("image", `Illustration ${data.width}×${data.height} by ${data.provider}`, "done");
      refreshSnapshot();
      break;
    case "regenerate.requested": {
      const what = data.platform ? `${data.stage} (${data.platform})` : data.stage;
      stageNote(data.stage, `Regenerating ${what}…`, "running");
      if (data.stage === "blog") state.stream = { base: 0, text: "", active: true };
      break;
    }
    case "cancel.requested":
      stageNote("job", `Cancel requested: ${data.reason || ""}`);
      break;
    case "usage.recorded":
      state.usage[data.call || event.id] = Number(data.cost_usd || 0);
      break;
    case "stage.failed":
      stageNote(
        data.stage,
        `${data.retryable ? "Attempt failed, retrying" : "Failed"} (${data.code}): ${data.message}`,
        data.retryable ? null : "failed",
      );
      break;
    case "job.completed":
      setStatus("completed");
      stageNote("job", "Completed", "done");
      finishRunningStages();
      refreshSnapshot();
      loadHistory();
      break;
    case "job.failed":
      setStatus("failed");
      state.error = `${data.stage}: ${data.code}: ${data.message}`;
      stageNote(data.stage, `Failed (${data.code}): ${data.message}`, "failed");
      stageNote("job", "Failed", "failed");
      state.stream.active = false;
      refreshSnapshot();
      loadHistory();
      break;
    case "job.cancelled":
      setStatus("cancelled");
      stageNote("job", `Cancelled${data.reason ? `: ${data.reason}` : ""}`, "done");
      state.stream.active = false;
      refreshSnapshot();
      loadHistory();
      break;
    default:
      break;
  }
}

function finishRunningStages() {
  for (const name of STAGES) {
    if (state.stages[name].state === "running") state.stages[name].state = "done";
  }
}

// A piece of the blog as the writer produces it (not stored: nothing to replay after a reload).
function applyDelta(frame) {
  if (frame.stage !== "blog") return;
  const stream = state.stream;
  const end = stream.base + stream.text.length;
  if (!stream.active || frame.offset < stream.base) {
    Object.assign(stream, { base: frame.offset, text: frame.text, active: true });
  } else if (frame.offset <= end) {
    stream.text = stream.text.slice(0, frame.offset - stream.base) + frame.text;
  } else {
    // A gap (we reconnected mid-stream): show what we have from here on.
    Object.assign(stream, { base: frame.offset, text: frame.text });
  }
}

// ---- REST snapshot of the job -------------------------------------------------------------------------

let snapshotTimer = null;
let snapshotTries = 0;

function snapshotIsBehind(snap) {
  if (!snap) return true;
  if (state.expect.blog && (snap.blog?.version || 0) < state.expect.blog) return true;
  if (state.expect.image && state.request?.image !== false && (imageOf(snap)?.version || 0) < state.expect.image) return true;
  for (const [platform, version] of Object.entries(state.expect.social)) {
    if ((snap.social?.[platform]?.version || 0) < version) return true;
  }
  if (TERMINAL.has(state.status) && !TERMINAL.has(snap.job?.status)) return true;
  return false;
}

function refreshSnapshot(delay = 150) {
  snapshotTries = 0;
  scheduleSnapshot(delay);
}

function scheduleSnapshot(delay) {
  clearTimeout(snapshotTimer);
  snapshotTimer = setTimeout(loadSnapshot, delay);
}

async function loadSnapshot() {
  const jobId = state.jobId;
  if (!jobId) return;
  let snap = null;
  try {
    snap = await api("GET", `/v1/jobs/${encodeURIComponent(jobId)}`);
  } catch (err) {
    if (err.status !== 404 && err.status !== 401) showJobError(err.message);
  }
  if (jobId !== state.jobId) return;
  if (snap) {
    state.snapshot = snap;
    const job = snap.job || snap;
    if (job.topic) state.topic = job.topic;
    if (job.request && !state.request) state.request = job.request;
    if (job.status) setStatus(job.status);
    if (job.failure && !state.error) state.error = `${job.failure.stage}: ${job.failure.code}: ${job.failure.message}`;
    render();
  }
  // Persistence records an event a moment after it is published: try again until it caught up.
  if (snapshotIsBehind(snap) && snapshotTries++ < 40) scheduleSnapshot(Math.min(250 * snapshotTries, 2000));
}

function imageOf(snap) {
  return snap?.image || snap?.images || null;
}

function imageUrl(image) {
  const url = image?.url || image?.presigned_url || "";
  if (!url) return "";
  try {
    const parsed = new URL(url, location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : "";
  } catch {
    return "";
  }
}

function costOf(snap) {
  const fromSnap = snap?.usage_total?.cost_usd ?? snap?.cost?.cost_usd ?? snap?.cost_usd ?? snap?.job?.cost_usd ?? 0;
  const live = Object.values(state.usage).reduce((sum, value) => sum + value, 0);
  return Math.max(Number(fromSnap) || 0, live);
}

// ---- rendering ----------------------------------------------------------------------------------------

function render() {
  const show = Boolean(state.jobId);
  $("job").hidden = !show;
  $("welcome").hidden = show;
  if (!show) return;
  const snap = state.snapshot;
  $("job-topic").textContent = state.topic || snap?.job?.topic || "…";
  $("job-id").textContent = state.jobId;
  const status = state.status || "requested";
  $("job-status").textContent = status;
  $("job-status").dataset.status = status;
  $("job-cost").textContent = money(costOf(snap));
  const budget = snap?.job?.budget_usd ?? state.request?.budget_usd;
  $("job-budget").textContent = budget ? ` of ${money(budget)} budget` : "";
  const error = $("job-error");
  error.hidden = !state.error;
  error.textContent = state.error;
  const done = TERMINAL.has(status);
  $("cancel-button").disabled = done;
  $("regen-blog").disabled = !snap?.blog || status !== "completed";
  $("regen-image").disabled = !imageOf(snap) || status !== "completed";
  $("export-md").disabled = !snap?.blog;
  $("export-zip").disabled = !snap?.blog;
  renderTimeline();
  renderBlog();
  renderSocial();
  renderImage();
  markCurrentInHistory();
}

function renderTimeline() {
  const list = $("timeline");
  const items = [];
  for (const name of STAGES) {
    const stage = state.stages[name];
    if (name === "image" && state.request?.image === false && stage.messages.length <= 1) continue;
    const li = document.createElement("li");
    li.dataset.stage = name;
    li.dataset.state = stage.state;
    const title = document.createElement("span");
    title.className = "stage-name";
    title.textContent = name === "blog" ? "writing" : name;
    const note = document.createElement("span");
    note.className = "stage-state";
    note.textContent = stage.state;
    li.append(title, note);
    if (stage.messages.length) {
      const ul = document.createElement("ul");
      for (const message of stage.messages) {
        const item = document.createElement("li");
        item.textContent = message;
        ul.append(item);
      }
      li.append(ul);
    }
    items.push(li);
  }
  list.replaceChildren(...items);
}

function renderBlog() {
  const blog = state.snapshot?.blog;
  const stream = state.stream;
  const streaming = stream.active && (stream.text.length > 0 || !blog);
  const editing = !$("blog-editor").hidden;
  $("blog-stream").hidden = !streaming || editing;
  if (streaming) {
    $("blog-stream").textContent = (stream.base > 0 ? "… " : "") + stream.text;
  }
  const article = $("blog-html");
  article.hidden = streaming || !blog || editing;
  if (blog && !streaming) {
    const key = `${state.jobId}:${blog.version}`;
    if (article.dataset.key !== key) {
      article.dataset.key = key;
      if (typeof blog.html === "string") {
        article.innerHTML = blog.html; // sanitised by the gateway (nh3)
      } else {
        const pre = document.createElement("pre");
        pre.className = "post";
        pre.textContent = blog.markdown || "";
        article.replaceChildren(pre);
      }
    }
  }
  $("blog-empty").hidden = Boolean(streaming || blog || editing);
  showChecks($("blog-checks"), blog && !streaming && !editing && blog.origin !== "edited" ? state.checks.blog : null);
  const versions = blog?.versions?.length || 0;
  const label = blog ? `v${blog.version}${blog.origin && blog.origin !== "generated" ? ` · ${blog.origin}` : ""}${versions > 1 ? ` · ${versions} versions` : ""}` : "";
  $("blog-version").textContent = label;
  $("blog-version").dataset.version = blog ? String(blog.version) : "";
  $("blog-edit").disabled = !blog || streaming || !TERMINAL.has(state.status);
}

// What the checks before publishing found (blog.completed / social.completed carry it).
function describeChecks(checks) {
  const found = [];
  if (checks.html_tags?.length) found.push(`HTML converted (${checks.html_tags.join(", ")})`);
  if (checks.removed_links?.length) found.push(`${checks.removed_links.length} link(s) not from research removed`);
  if (checks.removed_citations?.length) found.push(`citation(s) ${checks.removed_citations.map((n) => `[${n}]`).join(" ")} removed`);
  if (checks.copied_passages?.length) found.push(`${checks.copied_passages.length} copied passage(s) quoted`);
  if (checks.language_matches === false) found.push(`written in '${checks.detected_language}', not '${checks.language}'`);
  else if (checks.detected_language) found.push(`language ${checks.detected_language} ✓`);
  if (checks.rewritten_for_language) found.push("rewritten once for the language");
  return found.length ? `Checks: ${found.join(" · ")}` : "Checks: nothing to fix";
}

function showChecks(element, checks) {
  element.hidden = !checks;
  if (checks) {
    element.textContent = describeChecks(checks);
    element.classList.toggle("warning", checks.language_matches === false);
  }
}

// ---- brand voice ----------------------------------------------------------------------------------------

const listOf = (text) => text.split(",").map((w) => w.trim()).filter(Boolean);

async function loadVoice() {
  try {
    const profile = await api("GET", "/v1/profile");
    const voice = profile.voice || {};
    $("voice-description").value = voice.description || "";
    $("voice-use").value = (voice.use_words || []).join(", ");
    $("voice-avoid").value = (voice.avoid_words || []).join(", ");
    $("voice-examples").value = (voice.examples || []).join("\n---\n");
    $("voice-link").value = profile.link_template || "";
    const edits = voice.edits?.length || 0;
    $("voice-edits").textContent = edits ? `${edits} of your edits are kept as examples too.` : "";
  } catch (err) {
    $("voice-status").textContent = `Voice unavailable: ${err.message}`;
  }
}

async function saveVoice(event) {
  event.preventDefault();
  const examples = $("voice-examples").value.split(/\n-{3,}\n/).map((e) => e.trim()).filter(Boolean);
  const body = {
    voice: {
      description: $("voice-description").value.trim(),
      use_words: listOf($("voice-use").value),
      avoid_words: listOf($("voice-avoid").value),
      examples,
    },
    link_template: $("voice-link").value.trim() || null,
  };
  try {
    await api("PUT", "/v1/profile", body);
    $("voice-status").textContent = "Saved: your next jobs are written in this voice.";
  } catch (err) {
    $("voice-status").textContent = `Not saved: ${err.message}`;
  }
}

function platforms() {
  const list = [...(state.request?.platforms || [])];
  for (const platform of Object.keys(state.snapshot?.social || {})) if (!list.includes(platform)) list.push(platform);
  return list;
}

const PLATFORM_NAMES = { linkedin: "LinkedIn", x: "X", threads: "Threads", facebook: "Facebook", instagram: "Instagram" };

function renderSocial() {
  const social = state.snapshot?.social || {};
  const names = platforms();
  if (!state.activeTab || !names.includes(state.activeTab)) state.activeTab = names[0] || null;
  const tabs = names.map((platform) => {
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("role", "tab");
    button.dataset.platform = platform;
    button.setAttribute("aria-selected", String(platform === state.activeTab));
    button.textContent = PLATFORM_NAMES[platform] || platform;
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = social[platform] ? "✓" : "…";
    button.append(badge);
    button.addEventListener("click", () => {
      state.activeTab = platform;
      closeSocialEditor();
      renderSocial();
    });
    return button;
  });
  $("social-tabs").replaceChildren(...tabs);
  const post = state.activeTab ? social[state.activeTab] : null;
  const editing = !$("social-editor").hidden;
  $("social-empty").hidden = Boolean(post) || editing;
  $("social-view").hidden = !post || editing;
  if (post) {
    $("social-text").textContent = post.text;
    const count = $("social-count");
    const parts = post.parts?.length || 0;
    count.textContent = `${post.characters} / ${post.limit} characters${parts > 1 ? ` (longest of ${parts} posts)` : ""}`;
    count.classList.toggle("over", post.characters > post.limit);
    const checks = state.checks.social[state.activeTab];
    if (checks) count.textContent += ` · ${describeChecks(checks)}`;
    const versions = post.versions?.length || 0;
    $("social-version").textContent = `v${post.version}${post.origin && post.origin !== "generated" ? ` · ${post.origin}` : ""}${versions > 1 ? ` · ${versions} versions` : ""}`;
    $("social-version").dataset.version = String(post.version);
    $("social-regen").disabled = state.status !== "completed";
    $("social-edit").disabled = !TERMINAL.has(state.status);
  }
}

function renderImage() {
  const image = imageOf(state.snapshot);
  const url = imageUrl(image);
  const figure = $("image-figure");
  figure.hidden = !url;
  $("image-empty").hidden = Boolean(url);
  $("image-empty").textContent = state.request?.image === false ? "No illustration asked for." : "Waiting for the illustrator…";
  if (url) {
    const img = $("image");
    if (img.dataset.key !== `${state.jobId}:${image.version}`) {
      img.dataset.key = `${state.jobId}:${image.version}`;
      img.src = url;
    }
    img.alt = image.prompt || "Illustration";
    $("image-caption").textContent = `${image.width}×${image.height} · ${image.provider} · v${image.version}${image.prompt ? ` · “${image.prompt}”` : ""}`;
  }
}

function showJobError(message) {
  state.error = message;
  const error = $("job-error");
  error.hidden = !message;
  error.textContent = message;
}

function setConnection(connectionState, text) {
  const badge = $("connection");
  badge.dataset.state = connectionState;
  badge.textContent = text || connectionState;
}

// ---- the WebSocket ------------------------------------------------------------------------------------

let refCounter = 0;
const pending = new Map(); // ref -> {resolve, reject, timer}

const socket = {
  ws: null,
  attempt: 0,
  retryTimer: null,
  pingTimer: null,
  pongTimer: null,

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/v1/ws`;
  },

  connect() {
    clearTimeout(this.retryTimer);
    if (waitingForKey && !token) return;
    setConnection("connecting", this.attempt ? `reconnecting (${this.attempt})` : "connecting");
    const ws = new WebSocket(this.url());
    const used = token;
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (this.ws !== ws) return;
      this.attempt = 0;
      setConnection("online");
      if (used) this.send({ type: "auth", token: used });
      if (state.jobId) this.send({ type: "subscribe", job_id: state.jobId, after_seq: state.seq });
      this.startPing();
    });
    ws.addEventListener("message", (message) => {
      if (this.ws !== ws) return;
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      if (frame.type === "error" && AUTH_ERRORS.has(frame.code)) {
        keyRefused(used, frame.message);
        return;
      }
      onFrame(frame);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.stopPing();
      for (const [ref, waiter] of pending) {
        clearTimeout(waiter.timer);
        waiter.reject(new Error("the connection to the gateway was lost"));
        pending.delete(ref);
      }
      if (event.code === 4401 || event.code === 4403 || event.code === 1008) {
        setConnection("offline", "key refused");
        keyRefused(used, "The gateway did not accept the API key.");
        return;
      }
      setConnection("offline");
      this.scheduleReconnect();
    });
  },

  scheduleReconnect() {
    clearTimeout(this.retryTimer);
    const delay = Math.min(BACKOFF_MAX_MS, 500 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
    this.attempt += 1;
    setConnection("offline", `offline, retrying in ${Math.ceil(delay / 1000)} s`);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  },

  reconnectNow() {
    const old = this.ws;
    this.ws = null;
    this.stopPing();
    if (old) old.close();
    this.attempt = 0;
    this.connect();
  },

  get open() {
    return this.ws?.readyState === WebSocket.OPEN;
  },

  send(frame) {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  },

  request(frame, timeout = START_TIMEOUT_MS) {
    const ref = `p${++refCounter}`;
    return new Promise((resolve, reject) => {
      if (!this.send({ ...frame, ref })) {
        reject(new Error("not connected to the gateway"));
        return;
      }
      const timer = setTimeout(() => {
        pending.delete(ref);
        reject(new Error("the gateway did not answer"));
      }, timeout);
      pending.set(ref, { resolve, reject, timer });
    });
  },

  startPing() {
    this.stopPing();
    this.pingTimer = setInterval(() => {
      if (!this.send({ type: "ping" })) return;
      clearTimeout(this.pongTimer);
      // No pong in time: the network dropped without a close; reconnect and resume.
      this.pongTimer = setTimeout(() => this.ws?.close(4000, "no pong"), PONG_TIMEOUT_MS);
    }, PING_INTERVAL_MS);
  },

  stopPing() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
  },
};

function settle(ref, error, value) {
  const waiter = ref && pending.get(ref);
  if (!waiter) return false;
  pending.delete(ref);
  clearTimeout(waiter.timer);
  if (error) waiter.reject(error);
  else waiter.resolve(value);
  return true;
}

let renderQueued = false;

function renderSoon() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

function onFrame(frame) {
  switch (frame.type) {
    case "accepted":
      settle(frame.ref, null, frame);
      break;
    case "event":
      if (frame.job_id !== state.jobId || frame.seq <= state.seq) return; // another job, or seen already
      state.seq = frame.seq;
      applyEvent(frame.event || {});
      saveNow();
      renderSoon();
      break;
    case "delta":
      if (frame.job_id !== state.jobId) return;
      applyDelta(frame);
      saveSoon();
      renderSoon();
      break;
    case "resync": {
      // History no longer covers what we missed: rebuild from the job's remaining events.
      if (frame.job_id !== state.jobId) return;
      const keep = { topic: state.topic, request: state.request };
      resetState(frame.job_id);
      Object.assign(state, keep);
      for (const event of frame.state?.events || []) applyEvent(event);
      state.seq = frame.seq;
      saveNow();
      refreshSnapshot();
      renderSoon();
      break;
    }
    case "error": {
      const error = new Error(frame.message || frame.code);
      error.code = frame.code;
      if (settle(frame.ref, error)) return;
      if (state.jobId) {
        showJobError(frame.message || frame.code);
      }
      break;
    }
    case "pong":
      clearTimeout(socket.pongTimer);
      break;
    default:
      break;
  }
}

// ---- actions ------------------------------------------------------------------------------------------

function openJob(jobId, { fresh = false } = {}) {
  if (state.jobId && state.jobId !== jobId) socket.send({ type: "unsubscribe", job_id: state.jobId });
  closeBlogEditor();
  closeSocialEditor();
  resetState(jobId);
  sessionStorage.setItem(CURRENT_KEY, jobId);
  if (!fresh) {
    restoreView(jobId);
    socket.send({ type: "subscribe", job_id: jobId, after_seq: state.seq });
  }
  $("blog-html").dataset.key = "";
  $("image").dataset.key = "";
  render();
  refreshSnapshot(0);
}

function readForm() {
  const value = (id) => $(id).value.trim(); // by id: form.elements.length is the number of controls
  const request = {
    topic: value("topic"),
    research: $("research").checked,
    platforms: [...$("job-form").querySelectorAll('input[name="platforms"]:checked')].map((input) => input.value),
    length: value("length"),
    image: $("image-option").checked,
    x_thread: $("x_thread").checked,
  };
  for (const name of ["tone", "audience", "language"]) if (value(name)) request[name] = value(name);
  if (value("budget")) request.budget_usd = Number(value("budget"));
  if (request.topic.length < 3) throw new Error("topic: write at least 3 characters");
  if (!request.platforms.length) throw new Error("platforms: choose at least one platform");
  return request;
}

async function startJob(event) {
  event.preventDefault();
  const error = $("form-error");
  error.hidden = true;
  let request;
  try {
    request = readForm();
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
    return;
  }
  const button = $("start-button");
  button.disabled = true;
  try {
    let jobId;
    if (socket.open) {
      // The gateway subscribes this connection to the new job from its first event.
      const accepted = await socket.request({ type: "start", request });
      jobId = accepted.job_id;
      openJob(jobId, { fresh: true });
    } else {
      const created = await api("POST", "/v1/jobs", request);
      jobId = created.job_id || created.id;
      openJob(jobId, { fresh: false });
    }
    setTimeout(loadHistory, 500);
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
}

async function jobAction(method, suffix, body) {
  showJobError("");
  try {
    return await api(method, `/v1/jobs/${encodeURIComponent(state.jobId)}${suffix}`, body);
  } catch (err) {
    showJobError(err.message);
    return null;
  }
}

async function cancelJob() {
  $("cancel-button").disabled = true;
  // job.cancelled arrives as an event once it takes effect; on a refusal the button comes back.
  if ((await jobAction("POST", "/cancel", { reason: "cancelled from the web page" })) === null && state.error) {
    $("cancel-button").disabled = TERMINAL.has(state.status);
  }
}

async function regenerate(stage, platform) {
  const body = platform ? { stage, platform } : { stage };
  const answer = await jobAction("POST", "/regenerate", body);
  if (answer !== null || !state.error) {
    stageNote(stage, `Regeneration of ${platform ? `${stage} (${platform})` : stage} requested`, "running");
    if (stage === "blog") state.stream = { base: 0, text: "", active: true };
    render();
  }
}

function openBlogEditor() {
  const blog = state.snapshot?.blog;
  if (!blog) return;
  $("blog-title").value = blog.title || "";
  $("blog-markdown").value = blog.markdown || "";
  $("blog-editor").hidden = false;
  render();
  $("blog-markdown").focus();
}

function closeBlogEditor() {
  $("blog-editor").hidden = true;
}

async function saveBlog(event) {
  event.preventDefault();
  const title = $("blog-title").value.trim();
  const markdown = $("blog-markdown").value;
  const answer = await jobAction("PUT", "/blog", { title, markdown });
  if (answer === null && state.error) return;
  const version = answer?.version || answer?.blog?.version || (state.snapshot?.blog?.version || 0) + 1;
  state.expect.blog = Math.max(state.expect.blog, version);
  closeBlogEditor();
  refreshSnapshot(0);
  render();
  setTimeout(loadHistory, 1000); // the title may have changed
}

function openSocialEditor() {
  const post = state.snapshot?.social?.[state.activeTab];
  if (!post) return;
  $("social-textarea").value = post.text;
  $("social-editor").hidden = false;
  updateEditCount();
  render();
  $("social-textarea").focus();
}

function closeSocialEditor() {
  $("social-editor").hidden = true;
}

function updateEditCount() {
  const post = state.snapshot?.social?.[state.activeTab];
  const length = [...$("social-textarea").value].length;
  const count = $("social-edit-count");
  count.textContent = post ? `≈${length} / ${post.limit} characters` : `${length} characters`;
  count.classList.toggle("over", Boolean(post) && length > post.limit);
}

async function saveSocial(event) {
  event.preventDefault();
  const platform = state.activeTab;
  const answer = await jobAction("PUT", `/social/${encodeURIComponent(platform)}`, { text: $("social-textarea").value });
  if (answer === null && state.error) return;
  const current = state.snapshot?.social?.[platform]?.version || 0;
  state.expect.social[platform] = Math.max(state.expect.social[platform] || 0, answer?.version || current + 1);
  closeSocialEditor();
  refreshSnapshot(0);
  render();
}

async function exportJob(format) {
  showJobError("");
  try {
    await download(`/v1/jobs/${encodeURIComponent(state.jobId)}/export.${format}`, `pressroom-${state.jobId}.${format}`);
  } catch (err) {
    showJobError(err.message);
  }
}

// ---- history ------------------------------------------------------------------------------------------

let historyCursor = null;
let historyLoading = false;

async function loadHistory(more = false) {
  if (historyLoading) return;
  historyLoading = true;
  try {
    const query = new URLSearchParams({ limit: "20" });
    if (more && historyCursor) query.set("cursor", historyCursor);
    const page = await api("GET", `/v1/jobs?${query}`);
    const jobs = page?.jobs || page?.items || [];
    historyCursor = page?.next_cursor || null;
    const items = jobs.map(historyItem);
    if (more) $("history-list").append(...items);
    else $("history-list").replaceChildren(...items);
    $("history-more").hidden = !historyCursor;
    $("history-empty").hidden = $("history-list").children.length > 0;
    markCurrentInHistory();
  } catch (err) {
    if (err.status !== 401) {
      $("history-empty").hidden = false;
      $("history-empty").textContent = `History unavailable: ${err.message}`;
    }
  } finally {
    historyLoading = false;
  }
}

function historyItem(job) {
  const li = document.createElement("li");
  li.dataset.jobId = job.id;
  const button = document.createElement("button");
  button.type = "button";
  const title = document.createElement("span");
  title.className = "title";
  title.textContent = job.title || job.topic;
  const sub = document.createElement("span");
  sub.className = "sub";
  const when = job.created_at ? new Date(job.created_at).toLocaleString() : "";
  sub.textContent = `${job.status} · ${when} · ${money(job.cost_usd)}`;
  button.append(title, sub);
  button.addEventListener("click", () => openJob(job.id));
  li.append(button);
  return li;
}

function markCurrentInHistory() {
  for (const li of $("history-list").children) li.classList.toggle("current", li.dataset.jobId === state.jobId);
}

// ---- start --------------------------------------------------------------------------------------------

function wire() {
  $("job-form").addEventListener("submit", startJob);
  $("cancel-button").addEventListener("click", cancelJob);
  $("regen-blog").addEventListener("click", () => regenerate("blog"));
  $("regen-image").addEventListener("click", () => regenerate("image"));
  $("export-md").addEventListener("click", () => exportJob("md"));
  $("export-zip").addEventListener("click", () => exportJob("zip"));
  $("blog-edit").addEventListener("click", openBlogEditor);
  $("blog-cancel-edit").addEventListener("click", () => {
    closeBlogEditor();
    render();
  });
  $("blog-editor").addEventListener("submit", saveBlog);
  $("social-edit").addEventListener("click", openSocialEditor);
  $("social-regen").addEventListener("click", () => regenerate("social", state.activeTab));
  $("social-cancel-edit").addEventListener("click", () => {
    closeSocialEditor();
    render();
  });
  $("social-editor").addEventListener("submit", saveSocial);
  $("voice-form").addEventListener("submit", saveVoice);
  $("voice-card").addEventListener("toggle", () => $("voice-card").open && loadVoice());
  $("social-textarea").addEventListener("input", updateEditCount);
  $("history-refresh").addEventListener("click", () => loadHistory());
  $("history-more").addEventListener("click", () => loadHistory(true));
  $("key-button").addEventListener("click", () => askForKey(""));
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    useKey($("key-input").value);
  });
  $("key-forget").addEventListener("click", () => {
    localStorage.removeItem(TOKEN_KEY);
    token = metaToken();
    $("key-input").value = "";
    if (!token) askForKey("");
  });
  window.addEventListener("pagehide", saveNow);
  window.addEventListener("online", () => {
    if (!socket.open) socket.reconnectNow();
  });
}

function main() {
  wire();
  if (!token) askForKey("");
  const current = sessionStorage.getItem(CURRENT_KEY);
  if (current) {
    resetState(current);
    restoreView(current);
    render();
    refreshSnapshot(0);
  }
  socket.connect(); // subscribes to the current job, after its last seen sequence, once open
  loadHistory();
}

main();
