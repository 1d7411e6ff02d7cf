// ragd's console: plain JavaScript over the same API the SDKs use, served from the binary.
// The key is kept in sessionStorage and sent as the Bearer header; nothing else is stored.
// Text from the server is always set as text (never as HTML), so a file's name or content
// cannot inject markup.

const KEY = "ragd.key";
const PAGE = 50;
const main = document.getElementById("main");
const state = { key: sessionStorage.getItem(KEY), project: null, timer: null, storesCache: null };

// ---- small helpers

/** An element with attributes (on* are listeners) and children (strings become text). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
  }
}

async function api(path, { method = "GET", body, raw = false } = {}) {
  const headers = { authorization: `Bearer ${state.key}` };
  if (body !== undefined && !(body instanceof FormData)) headers["content-type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined || body instanceof FormData ? body : JSON.stringify(body) });
  // A key revoked while signed in: back to the sign-in form (during sign-in, the form says so).
  if (res.status === 401 && state.project) {
    signOut("Your key was refused; sign in again.");
    throw new ApiError(401, await res.json().catch(() => null));
  }
  if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
  return raw ? res : res.json();
}

function toast(message, bad = false) {
  const t = document.getElementById("toast");
  t.textContent = message;
  t.className = bad ? "bad" : "";
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.hidden = true), 4000);
}

const fail = (e) => toast(e.message, true);

function bytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n;
  let u = -1;
  do {
    v /= 1024;
    u++;
  } while (v >= 1024 && u < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

// Dates and counts are formatted by hand: the first Intl call of a page loads locale data,
// which costs more than drawing the whole first page.
const pad = (n) => String(n).padStart(2, "0");
function date(s) {
  if (!s) return "";
  const d = new Date(s * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
const thousands = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");

/** Where a chunk came from, as search results and the chunk view show it. */
function where(loc) {
  if (!loc) return "";
  const parts = [];
  if (loc.attachment) parts.push(`attachment ${loc.attachment}`);
  if (loc.pages) parts.push(`pages ${loc.pages[0]}–${loc.pages[1]}`);
  else if (loc.page !== undefined) parts.push(`page ${loc.page}`);
  if (loc.slide !== undefined) parts.push(`slide ${loc.slide}`);
  if (loc.sheet) parts.push(`sheet ${loc.sheet}${loc.rows ? `, rows ${loc.rows[0]}–${loc.rows[1]}` : ""}`);
  if (loc.lines) parts.push(`lines ${loc.lines[0]}–${loc.lines[1]}`);
  if (loc.chapter) parts.push(loc.chapter);
  if (loc.headings && loc.headings.length) parts.push(loc.headings.join(" › "));
  if (loc.time) parts.push(`${loc.time[0]}–${loc.time[1]}`);
  return parts.join(" · ");
}

/** The text with the query's words marked, built as nodes (no HTML from the server). */
function highlighted(text, query) {
  const words = [...new Set(query.toLowerCase().match(/[\p{L}\p{N}]{2,}/gu) ?? [])].sort((a, b) => b.length - a.length);
  if (!words.length) return [text];
  const re = new RegExp(`(${words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")})`, "giu");
  return text.split(re).map((part, i) => (i % 2 ? h("mark", {}, part) : part));
}

function every(ms, fn) {
  stopPolling();
  state.timer = setInterval(fn, ms);
}
function stopPolling() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
}

// ---- sign-in

function signOut(message) {
  sessionStorage.removeItem(KEY);
  state.key = null;
  state.project = null;
  stopPolling();
  renderSignIn(message);
}

function renderSignIn(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("who").replaceChildren();
  const input = h("input", { type: "password", placeholder: "sk-…", autocomplete: "off", "aria-label": "API key", id: "key" });
  const err = h("p", { class: "error" }, message ?? "");
  const form = h(
    "form",
    {
      class: "card signin",
      onsubmit: async (e) => {
        e.preventDefault();
        state.key = input.value.trim();
        try {
          await start();
          sessionStorage.setItem(KEY, state.key);
        } catch (x) {
          state.key = null;
          err.textContent = x.status === 401 ? "That key was refused." : x.message;
        }
      },
    },
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "Paste an API key (ragd keys create --project NAME). It stays in this tab only."),
    input,
    h("button", { class: "primary", type: "submit" }, "Sign in"),
    err,
  );
  main.replaceChildren(form);
  input.focus();
}

async function start() {
  const me = await api("/ragd/whoami");
  state.project = me.project;
  document.getElementById("nav").hidden = false;
  document.getElementById("who").replaceChildren(
    h("span", { id: "project" }, `project ${me.project.name}`),
    h("button", { onclick: () => signOut() }, "Sign out"),
  );
  if (!location.hash) location.hash = "#files";
  else route();
}

// ---- routing

function route() {
  if (!state.project) return;
  stopPolling();
  const [view, arg] = location.hash.slice(1).split("/");
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.view === (view === "file" ? "files" : view));
  const views = { files: filesView, file: () => fileView(decodeURIComponent(arg ?? "")), search: searchView, stores: storesView };
  (views[view] ?? filesView)().catch(fail);
}
window.addEventListener("hashchange", route);

// ---- files

const filesState = { offset: 0 };

async function filesView() {
  const purpose = h(
    "select",
    { id: "purpose", "aria-label": "purpose" },
    ["knowledge_base", "assistants", "user_data", "batch", "fine-tune", "vision", "evals"].map((p) => h("option", { value: p }, p)),
  );
  const picker = h("input", { type: "file", multiple: true, hidden: true, id: "picker", onchange: () => upload([...picker.files], purpose.value).finally(() => (picker.value = "")) });
  const drop = h(
    "div",
    {
      class: "drop",
      id: "drop",
      ondragover: (e) => {
        e.preventDefault();
        drop.classList.add("over");
      },
      ondragleave: () => drop.classList.remove("over"),
      ondrop: (e) => {
        e.preventDefault();
        drop.classList.remove("over");
        upload([...e.dataTransfer.files], purpose.value);
      },
    },
    "Drop files here, or ",
    h("button", { type: "button", class: "primary", onclick: () => picker.click() }, "choose files"),
    " ",
    h("span", { class: "muted" }, "as "),
    purpose,
  );
  const uploads = h("div", { class: "uploads", id: "uploads" });
  const table = h("div", { id: "files" });
  main.replaceChildren(h("h1", {}, "Files"), h("div", { class: "card" }, drop, picker, uploads), table);

  async function upload(files, purposeValue) {
    await Promise.all(files.map((f) => uploadOne(f, purposeValue, uploads)));
    filesState.offset = 0;
    await refresh();
  }

  async function refresh() {
    // Marks for bench/console.ts: when a page was asked for, and when it was drawn.
    performance.mark("ragd:files-requested");
    const url = `/v1/files?limit=${PAGE}&offset=${filesState.offset}&order=desc`;
    const early = state.prefetch?.url === url ? state.prefetch.page : null;
    state.prefetch = null;
    const page = await (early ?? api(url));
    table.replaceChildren(filesTable(page, refresh));
    performance.mark("ragd:files-drawn");
    if (page.data.some((f) => f.status === "uploaded")) every(1500, () => refresh().catch(fail));
    else stopPolling();
  }
  await refresh();
}

function uploadOne(file, purpose, into) {
  const bar = h("progress", { max: 100, value: 0 });
  const label = h("span", { class: "muted" }, "0%");
  const row = h("div", { class: "upload" }, h("span", {}, file.name), bar, label);
  into.append(row);
  return new Promise((resolve) => {
    const form = new FormData();
    form.append("purpose", purpose);
    form.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/files");
    xhr.setRequestHeader("authorization", `Bearer ${state.key}`);
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      bar.value = Math.round((e.loaded / e.total) * 100);
      label.textContent = `${bar.value}%`;
    };
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {}
      if (xhr.status === 200) {
        bar.value = 100;
        label.textContent = "uploaded";
        setTimeout(() => row.remove(), 2500);
      } else {
        label.textContent = "failed";
        label.className = "error";
        row.title = body?.error?.message ?? `HTTP ${xhr.status}`;
        toast(`${file.name}: ${row.title}`, true);
      }
      resolve();
    };
    xhr.onerror = () => {
      label.textContent = "failed";
      label.className = "error";
      resolve();
    };
    xhr.send(form);
  });
}

function filesTable(page, refresh) {
  const total = page.total ?? page.data.length;
  const rows = page.data.map((f) =>
    h(
      "tr",
      { dataset: { id: f.id, status: f.status } },
      h("td", {}, h("a", { href: `#file/${encodeURIComponent(f.id)}` }, f.filename)),
      h("td", {}, h("span", { class: `badge ${f.status}` }, f.status), f.status_details ? h("div", { class: "detail" }, f.status_details) : null),
      h("td", {}, f.purpose),
      h("td", { class: "num" }, bytes(f.bytes)),
      h("td", {}, date(f.created_at)),
      h(
        "td",
        { class: "actions" },
        h("button", { onclick: () => download(f).catch(fail) }, "Download"),
        " ",
        h(
          "button",
          {
            class: "danger",
            onclick: async () => {
              if (!confirm(`Delete ${f.filename}?`)) return;
              await api(`/v1/files/${f.id}`, { method: "DELETE" }).catch(fail);
              await refresh();
            },
          },
          "Delete",
        ),
      ),
    ),
  );
  const first = total ? filesState.offset + 1 : 0;
  const last = filesState.offset + page.data.length;
  const pager = h(
    "div",
    { class: "pager" },
    h("span", { class: "muted", id: "range" }, `${first}–${last} of ${thousands(total)}`),
    h("button", { disabled: filesState.offset === 0, onclick: () => ((filesState.offset = Math.max(0, filesState.offset - PAGE)), refresh()) }, "Previous"),
    h("button", { disabled: !page.has_more, onclick: () => ((filesState.offset += PAGE), refresh()) }, "Next"),
  );
  return h(
    "div",
    {},
    h("table", {}, h("thead", {}, h("tr", {}, ["Name", "Status", "Purpose", "Size", "Created", ""].map((t) => h("th", {}, t)))), h("tbody", {}, rows)),
    page.data.length ? null : h("p", { class: "muted" }, "No files yet."),
    pager,
  );
}

async function download(f) {
  const res = await api(`/v1/files/${f.id}/content`, { raw: true });
  const url = URL.createObjectURL(await res.blob());
  h("a", { href: url, download: f.filename }).click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function fileView(id) {
  const f = await api(`/v1/files/${encodeURIComponent(id)}`);
  const chunks = h("div", { id: "chunks" });
  let offset = 0;
  const more = h("button", { onclick: () => load().catch(fail) }, "More");
  async function load() {
    const page = await api(`/ragd/files/${encodeURIComponent(id)}/chunks?offset=${offset}&limit=${PAGE}`);
    for (const c of page.data)
      chunks.append(h("div", { class: "chunk" }, h("div", { class: "meta" }, `#${c.index + 1}`, where(c.location) ? ` · ${where(c.location)}` : "", ` · ${c.tokens} tokens`), h("div", { class: "text" }, c.text)));
    offset += page.data.length;
    more.hidden = offset >= page.total;
    count.textContent = `${page.total} chunks`;
  }
  const count = h("span", { class: "muted" });
  const facts = [
    ["id", f.id],
    ["status", h("span", { class: `badge ${f.status}` }, f.status)],
    ["details", f.status_details ?? "—"],
    ["purpose", f.purpose],
    ["size", bytes(f.bytes)],
    ["created", date(f.created_at)],
  ];
  main.replaceChildren(
    h("p", {}, h("a", { href: "#files" }, "← Files")),
    h("h1", {}, f.filename),
    h("div", { class: "card" }, h("dl", { class: "kv" }, facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))),
    h("h2", {}, "Chunks ", count),
    chunks,
    more,
  );
  if (f.status === "processed") await load();
  else {
    count.textContent = f.status === "uploaded" ? "(not yet: still processing)" : "";
    more.hidden = true;
  }
}

// ---- search

async function stores() {
  const page = await api("/v1/vector_stores?limit=100");
  state.storesCache = page.data;
  return page.data;
}

async function searchView() {
  const list = await stores();
  const store = h("select", { id: "store", "aria-label": "vector store" }, list.map((s) => h("option", { value: s.id }, s.name || s.id)));
  const query = h("input", { type: "text", id: "query", placeholder: "Ask your documents…", size: 48 });
  const max = h("input", { type: "number", id: "max", min: 1, max: 50, value: 10, class: "narrow", "aria-label": "results" });
  const weight = h("input", { type: "range", id: "weight", min: 0, max: 1, step: 0.05, value: 0.4 });
  const weightLabel = h("span", { class: "muted" });
  const showWeight = () => (weightLabel.textContent = `embedding ${Number(weight.value).toFixed(2)} · keywords ${(1 - Number(weight.value)).toFixed(2)}`);
  weight.addEventListener("input", showWeight);
  showWeight();
  const fKey = h("input", { type: "text", id: "filter-key", placeholder: "attribute", size: 12 });
  const fOp = h("select", { id: "filter-op" }, ["eq", "ne", "gt", "gte", "lt", "lte"].map((o) => h("option", { value: o }, o)));
  const fValue = h("input", { type: "text", id: "filter-value", placeholder: "value", size: 12 });
  const results = h("div", { id: "results", class: "card" }, h("p", { class: "muted" }, "Results appear here."));
  const run = async (e) => {
    e?.preventDefault();
    if (!query.value.trim()) return;
    const body = {
      query: query.value,
      max_num_results: Number(max.value) || 10,
      ranking_options: { hybrid_search: { embedding_weight: Number(weight.value), text_weight: 1 - Number(weight.value) } },
    };
    if (fKey.value.trim()) {
      const raw = fValue.value.trim();
      const value = raw === "true" ? true : raw === "false" ? false : raw !== "" && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
      body.filters = { type: fOp.value, key: fKey.value.trim(), value };
    }
    const t0 = performance.now();
    try {
      const page = await api(`/v1/vector_stores/${store.value}/search`, { method: "POST", body });
      const ms = Math.round(performance.now() - t0);
      results.replaceChildren(
        h("p", { class: "muted" }, `${page.data.length} results in ${ms} ms`),
        ...page.data.map((hit, i) =>
          h(
            "div",
            { class: "hit" },
            h("div", { class: "meta" }, h("span", { class: "score" }, hit.score.toFixed(3)), `#${i + 1}`, h("span", {}, hit.filename), where(hit.location) ? h("span", {}, where(hit.location)) : null),
            h("div", { class: "text" }, highlighted(hit.content.map((c) => c.text).join("\n"), query.value)),
          ),
        ),
      );
    } catch (x) {
      results.replaceChildren(h("p", { class: "error" }, x.message));
    }
  };
  main.replaceChildren(
    h("h1", {}, "Search"),
    h(
      "form",
      { class: "card", onsubmit: run },
      h("div", { class: "row" }, store, query, max, h("button", { class: "primary", type: "submit" }, "Search")),
      h("div", { class: "row spaced" }, h("div", { class: "weights" }, "weights", weight, weightLabel), h("span", { class: "muted" }, "filter:"), fKey, fOp, fValue),
    ),
    results,
  );
  if (!list.length) results.replaceChildren(h("p", { class: "muted" }, "No vector stores yet."));
  query.focus();
}

// ---- vector stores

async function storesView() {
  const name = h("input", { type: "text", id: "store-name", placeholder: "name of a new store" });
  const table = h("div", { id: "stores" });
  const panel = h("div", { id: "attach" });
  main.replaceChildren(
    h("h1", {}, "Vector stores"),
    h(
      "form",
      {
        class: "card row",
        onsubmit: async (e) => {
          e.preventDefault();
          await api("/v1/vector_stores", { method: "POST", body: { name: name.value.trim() || undefined } }).catch(fail);
          name.value = "";
          await refresh();
        },
      },
      name,
      h("button", { class: "primary", type: "submit" }, "Create"),
    ),
    panel,
    table,
  );
  async function refresh() {
    const list = await stores();
    table.replaceChildren(
      h(
        "table",
        {},
        h("thead", {}, h("tr", {}, ["Name", "Status", "Files", "Size", "Created", ""].map((t) => h("th", {}, t)))),
        h(
          "tbody",
          {},
          list.map((s) =>
            h(
              "tr",
              { dataset: { id: s.id } },
              h("td", {}, s.name || h("span", { class: "muted" }, "(unnamed)"), h("div", { class: "detail" }, s.id)),
              h("td", {}, h("span", { class: `badge ${s.status}` }, s.status)),
              h("td", { class: "counts" }, `${s.file_counts.completed} of ${s.file_counts.total} ready`, s.file_counts.in_progress ? ` · ${s.file_counts.in_progress} in progress` : "", s.file_counts.failed ? ` · ${s.file_counts.failed} failed` : ""),
              h("td", { class: "num" }, bytes(s.usage_bytes)),
              h("td", {}, date(s.created_at)),
              h(
                "td",
                { class: "actions" },
                h("button", { onclick: () => attach(s).catch(fail) }, "Add files"),
                " ",
                h(
                  "button",
                  {
                    onclick: async () => {
                      const n = prompt("New name", s.name ?? "");
                      if (n === null) return;
                      await api(`/v1/vector_stores/${s.id}`, { method: "POST", body: { name: n } }).catch(fail);
                      await refresh();
                    },
                  },
                  "Rename",
                ),
                " ",
                h(
                  "button",
                  {
                    class: "danger",
                    onclick: async () => {
                      if (!confirm(`Delete the store ${s.name || s.id}? Its files stay.`)) return;
                      await api(`/v1/vector_stores/${s.id}`, { method: "DELETE" }).catch(fail);
                      await refresh();
                    },
                  },
                  "Delete",
                ),
              ),
            ),
          ),
        ),
      ),
    );
    if (list.some((s) => s.file_counts.in_progress > 0)) every(2000, () => refresh().catch(fail));
    else stopPolling();
  }
  async function attach(s) {
    const files = (await api("/v1/files?limit=100&order=desc")).data.filter((f) => f.status !== "error");
    const boxes = files.map((f) => h("label", {}, h("input", { type: "checkbox", value: f.id }), " ", f.filename, h("span", { class: "muted" }, ` · ${f.status}`)));
    panel.replaceChildren(
      h(
        "div",
        { class: "card" },
        h("h2", {}, `Add files to ${s.name || s.id}`),
        files.length ? h("div", { class: "pick" }, boxes) : h("p", { class: "muted" }, "No files to add."),
        h(
          "div",
          { class: "row spaced" },
          h(
            "button",
            {
              class: "primary",
              onclick: async () => {
                const ids = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
                if (ids.length) await api(`/v1/vector_stores/${s.id}/file_batches`, { method: "POST", body: { file_ids: ids } }).catch(fail);
                panel.replaceChildren();
                await refresh();
              },
            },
            "Add selected",
          ),
          h("button", { onclick: () => panel.replaceChildren() }, "Cancel"),
        ),
      ),
    );
  }
  await refresh();
}

// ---- start

if (state.key) {
  // The first page of files is asked for beside the sign-in check, not after it.
  if (!location.hash || location.hash === "#files") {
    const url = `/v1/files?limit=${PAGE}&offset=0&order=desc`;
    state.prefetch = { url, page: api(url) };
    state.prefetch.page.catch(() => {});
  }
  start().catch(() => signOut());
} else renderSignIn();
