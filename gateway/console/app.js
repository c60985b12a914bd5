// pushgate web console. Plain browser JavaScript, no build step.
//
// Every call goes through the public /v1 API with the operator's bearer API
// key, kept in sessionStorage only. The test device speaks the device
// protocol (CONTRACT.md section 3) over a browser WebSocket with MessagePack.
(function () {
  "use strict";

  const SESSION_KEY = "pushgate.console";
  const PAGE_SIZE = 20;
  const POLL_MS = 3000;
  const DELIVERY_LABELS = {
    user: "User dimension",
    android: "Device ID_Android",
    ios: "Device ID_iOS",
  };
  const CHANNEL_LABELS = {
    common: "Common",
    apns: "Apple Push",
    huawei: "Huawei Push",
    xiaomi: "MiPush",
    oppo: "OPPO Push",
    vivo: "vivo Push",
    fcm: "FCM",
  };

  const $ = (id) => document.getElementById(id);

  // --- small DOM helpers ----------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function showError(node, message) {
    node.textContent = message || "";
    show(node, Boolean(message));
  }

  // "2026-11-22T09:30:00.000Z" -> "2026-11-22 09:30:00" (the API speaks UTC).
  function toSecond(iso) {
    if (!iso) return "–";
    return String(iso).slice(0, 19).replace("T", " ");
  }

  function timeCell(iso) {
    return el("time", { datetime: iso, title: iso }, toSecond(iso));
  }

  // --- the API ----------------------------------------------------------------

  class ApiFailure extends Error {
    constructor(status, code, message, field) {
      super(message);
      this.status = status;
      this.code = code;
      this.field = field;
    }

    describe() {
      if (this.status === 0) return this.message;
      const field = this.field ? ` (field ${this.field})` : "";
      return `${this.message}${field} — HTTP ${this.status} ${this.code}`;
    }
  }

  const state = {
    appId: null,
    apiKey: null,
    nextCursor: null,
    known: new Map(), // message_id -> list item, in the table now
    expanded: new Set(), // message_ids whose details are open
    searching: false,
    codes: null,
    pollTimer: null,
    polling: false,
  };

  async function api(path, { method = "GET", body, key } = {}) {
    const headers = { Authorization: `Bearer ${key || state.apiKey}` };
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      throw new ApiFailure(0, "network", `The gateway did not answer (${err.message}).`);
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new ApiFailure(
        response.status,
        error.code || "http_error",
        error.message || response.statusText || "request failed",
        error.field,
      );
    }
    return data;
  }

  // A call made while signed in: a 401 means the key no longer works.
  async function call(path, options) {
    try {
      return await api(path, options);
    } catch (err) {
      if (err instanceof ApiFailure && err.status === 401 && state.apiKey) {
        signOut("The gateway refused the API key (HTTP 401 unauthorized). Sign in again.");
      }
      throw err;
    }
  }

  function itemsOf(answer) {
    if (Array.isArray(answer)) return { items: answer, next: null };
    if (answer && Array.isArray(answer.items)) {
      return { items: answer.items, next: answer.next_cursor || null };
    }
    if (answer && answer.message_id) return { items: [answer], next: null };
    return { items: [], next: null };
  }

  // --- sign in / out ----------------------------------------------------------

  async function signIn(appId, apiKey) {
    let stats;
    try {
      stats = await api("/v1/stats", { key: apiKey });
    } catch (err) {
      if (err instanceof ApiFailure && err.status === 401) {
        throw new Error(
          "Sign-in failed: the gateway refused this API key (HTTP 401 unauthorized). " +
            "Check the app ID and API key.",
        );
      }
      throw new Error(`Sign-in failed: ${err.describe ? err.describe() : err.message}`);
    }
    if (stats.app_id && stats.app_id !== appId) {
      throw new Error(
        `Sign-in failed: this API key belongs to app “${stats.app_id}”, not “${appId}”.`,
      );
    }
    state.appId = appId;
    state.apiKey = apiKey;
    sessionStorage.setItem(SESSION_KEY, JSON.stringify({ app_id: appId, api_key: apiKey }));
    renderStats(stats);
    enterConsole();
  }

  function signOut(message) {
    sessionStorage.removeItem(SESSION_KEY);
    state.appId = null;
    state.apiKey = null;
    stopPolling();
    device.disconnect("signed out");
    clearList();
    state.codes = null;
    $("codes-body").replaceChildren();
    show($("console"), false);
    show($("live"), false);
    show($("session"), false);
    show($("signin"), true);
    $("signin-key").value = "";
    showError($("signin-error"), message || "");
    $("signin-app").focus();
  }

  function enterConsole() {
    $("session-app").textContent = state.appId;
    show($("signin"), false);
    showError($("signin-error"), "");
    show($("console"), true);
    show($("live"), true);
    show($("session"), true);
    if (!$("dev-id").value) $("dev-id").value = `console-${randomHex(4)}`;
    selectTab(tabFromHash() || "messages", false);
    loadConsoleConfig();
    reloadList();
    startPolling();
  }

  // --- live numbers and polling -----------------------------------------------

  function renderStats(stats) {
    $("stat-online").textContent = String(stats.devices_online ?? "–");
    $("stat-today").textContent = String(stats.pushes_today ?? "–");
    const share = stats.acked_share;
    $("stat-acked").textContent =
      share === null || share === undefined ? "–" : `${(share * 100).toFixed(1)}%`;
  }

  function refreshStats() {
    if (state.apiKey) call("/v1/stats").then(renderStats, () => {});
  }

  function startPolling() {
    stopPolling();
    state.pollTimer = setInterval(poll, POLL_MS);
  }

  function stopPolling() {
    if (state.pollTimer !== null) clearInterval(state.pollTimer);
    state.pollTimer = null;
  }

  async function poll() {
    if (state.polling || !state.apiKey || document.hidden) return;
    state.polling = true;
    try {
      renderStats(await call("/v1/stats"));
      if (!state.searching) await refreshFirstPage();
      for (const id of state.expanded) await loadDetails(id);
    } catch (err) {
      // Shown by the next explicit action; polling stays quiet.
    } finally {
      state.polling = false;
    }
  }

  // --- the message list -------------------------------------------------------

  function clearList() {
    state.known.clear();
    state.expanded.clear();
    state.nextCursor = null;
    $("messages-body").replaceChildren();
    show($("load-more"), false);
    show($("list-empty"), false);
  }

  async function reloadList() {
    state.searching = false;
    show($("search-banner"), false);
    showError($("list-error"), "");
    try {
      const page = itemsOf(await call(`/v1/messages?limit=${PAGE_SIZE}`));
      const wasOpen = new Set(state.expanded);
      clearList();
      appendRows(page.items);
      state.nextCursor = page.next;
      updateListFoot();
      for (const id of wasOpen) if (state.known.has(id)) toggleDetails(id, true);
    } catch (err) {
      showError($("list-error"), `Could not load the message list: ${err.describe()}`);
    }
  }

  async function loadMore() {
    if (!state.nextCursor) return;
    const button = $("load-more");
    button.disabled = true;
    try {
      const cursor = encodeURIComponent(state.nextCursor);
      const page = itemsOf(await call(`/v1/messages?limit=${PAGE_SIZE}&cursor=${cursor}`));
      appendRows(page.items.filter((item) => !state.known.has(item.message_id)));
      state.nextCursor = page.next;
      updateListFoot();
    } catch (err) {
      showError($("list-error"), `Could not load more messages: ${err.describe()}`);
    } finally {
      button.disabled = false;
    }
  }

  // New messages appear on top without losing the operator's place.
  async function refreshFirstPage() {
    const page = itemsOf(await call(`/v1/messages?limit=${PAGE_SIZE}`));
    if (state.searching) return;
    const fresh = page.items.filter((item) => !state.known.has(item.message_id));
    if (fresh.length === 0) return;
    if (fresh.length === page.items.length && state.known.size > 0) {
      await reloadList(); // more new messages than a page: start over
      return;
    }
    const body = $("messages-body");
    const anchor = body.firstChild;
    for (const item of fresh) {
      state.known.set(item.message_id, item);
      for (const row of rowsFor(item)) body.insertBefore(row, anchor);
    }
    updateListFoot();
  }

  function appendRows(items) {
    const body = $("messages-body");
    for (const item of items) {
      state.known.set(item.message_id, item);
      body.append(...rowsFor(item));
    }
  }

  function updateListFoot() {
    show($("load-more"), Boolean(state.nextCursor) && !state.searching);
    show($("list-empty"), state.known.size === 0 && !state.searching);
  }

  function rowsFor(item) {
    const id = item.message_id;
    const detailsId = `details-${id}`;
    const button = el(
      "button",
      {
        type: "button",
        class: "expand",
        "aria-expanded": "false",
        "aria-controls": detailsId,
        "aria-label": `Show push details of ${item.msg_key}`,
        title: "Push details",
        onclick: () => toggleDetails(id),
      },
      el("span", { class: "chevron", "aria-hidden": "true" }),
    );
    const kind = item.push_type && item.push_type !== "simple" && item.push_type !== "template"
      ? el("span", { class: "badge" }, `${item.push_type} push`)
      : null;
    const row = el(
      "tr",
      { class: "row", "data-message-id": id, "data-msg-key": item.msg_key },
      el("td", { class: "col-expand" }, button),
      el("td", { "data-label": "Customer message ID", class: "mono" }, item.msg_key, kind && " ", kind),
      el(
        "td",
        { "data-label": "Push type" },
        DELIVERY_LABELS[item.delivery_type] || item.delivery_type,
      ),
      el("td", { "data-label": "Target ID", class: "mono" }, item.target_id),
      el("td", { "data-label": "Message title", class: "title" }, item.title),
      el("td", { "data-label": "Creation time" }, timeCell(item.created_at)),
    );
    const details = el(
      "tr",
      { class: "details-row", id: detailsId, "data-message-id": id, hidden: true },
      el("td", { colspan: "6" }, el("div", { class: "details", "aria-live": "polite" })),
    );
    return [row, details];
  }

  function rowParts(id) {
    const body = $("messages-body");
    for (const row of body.querySelectorAll("tr.row")) {
      if (row.dataset.messageId === id) {
        return { row, details: row.nextElementSibling, button: row.querySelector(".expand") };
      }
    }
    return null;
  }

  async function toggleDetails(id, open) {
    const parts = rowParts(id);
    if (!parts) return;
    const opening = open === undefined ? parts.details.hidden : open;
    parts.details.hidden = !opening;
    parts.button.setAttribute("aria-expanded", String(opening));
    parts.row.classList.toggle("open", opening);
    const key = state.known.get(id)?.msg_key || id;
    parts.button.setAttribute(
      "aria-label",
      `${opening ? "Hide" : "Show"} push details of ${key}`,
    );
    if (opening) {
      state.expanded.add(id);
      const box = parts.details.querySelector(".details");
      if (!box.dataset.loaded) box.replaceChildren(el("p", { class: "hint" }, "Loading…"));
      await loadDetails(id);
    } else {
      state.expanded.delete(id);
    }
  }

  async function loadDetails(id) {
    const parts = rowParts(id);
    if (!parts) return;
    const box = parts.details.querySelector(".details");
    try {
      const details = await call(`/v1/messages/${encodeURIComponent(id)}`);
      renderDetails(box, details);
    } catch (err) {
      box.replaceChildren(
        el("p", { class: "error", role: "alert" }, `Could not load push details: ${err.describe()}`),
      );
    }
  }

  function renderDetails(box, d) {
    const status = el(
      "span",
      { class: `status status-${statusClass(d.status)}`, "data-status": d.status },
      String(d.status),
    );
    const fields = [
      ["Message ID", el("span", { class: "mono", "data-field": "message_id" }, d.message_id)],
      [
        "Push status",
        el(
          "span",
          { "data-field": "status" },
          status,
          " ",
          el("strong", { "data-field": "status_name" }, d.status_name || ""),
          el("span", { class: "status-desc" }, d.status_description || ""),
        ),
      ],
      ["Expiry time", el("span", { "data-field": "expires_at" }, timeCell(d.expires_at))],
      ["Modification time", el("span", { "data-field": "modified_at" }, timeCell(d.modified_at))],
      ["Push kind", `${d.push_type || "–"}`],
      ["Content", el("span", { class: "content" }, d.content ?? "")],
    ];
    if (d.verification) fields.push(["Verification", String(d.verification)]);
    if (d.revoked) fields.push(["Revoked", "yes: undelivered copies are never sent"]);
    if (d.ext && Object.keys(d.ext).length) {
      fields.push([
        "Extra (ext)",
        el("span", { class: "mono" }, Object.entries(d.ext).map(([k, v]) => `${k}=${v}`).join(", ")),
      ]);
    }
    // Which channel delivered (self or a vendor) and the vendor's code, per delivery.
    const channels = (d.deliveries || []).map((v) => channelText(v));
    if (channels.length) {
      fields.push(["Channel", el("span", { "data-field": "channel" }, channels.join(", "))]);
    }
    const list = el(
      "dl",
      { class: "details-grid" },
      fields.map(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]),
    );
    const parts = [list];
    if (d.delivery_type === "user") {
      const deliveries = d.deliveries || [];
      parts.push(el("h3", {}, "Deliveries to the user's devices"));
      if (deliveries.length === 0) {
        parts.push(el("p", { class: "hint" }, "No bound device yet."));
      } else {
        parts.push(
          el(
            "table",
            { class: "deliveries" },
            el("caption", { class: "sr-only" }, "Deliveries"),
            el(
              "thead",
              {},
              el(
                "tr",
                {},
                el("th", { scope: "col" }, "Device ID"),
                el("th", { scope: "col" }, "Status"),
                el("th", { scope: "col" }, "Channel"),
                el("th", { scope: "col" }, "Modification time"),
              ),
            ),
            el(
              "tbody",
              {},
              deliveries.map((v) =>
                el(
                  "tr",
                  { "data-device-id": v.device_id },
                  el("td", { class: "mono", "data-label": "Device ID" }, v.device_id),
                  el(
                    "td",
                    { "data-label": "Status" },
                    el(
                      "span",
                      { class: `status status-${statusClass(v.status)}`, "data-status": v.status },
                      String(v.status),
                    ),
                    " ",
                    COMMON_NAMES[String(v.status)] || "",
                  ),
                  el("td", { "data-label": "Channel" }, channelText(v)),
                  el("td", { "data-label": "Modification time" }, timeCell(v.modified_at)),
                ),
              ),
            ),
          ),
        );
      }
    }
    box.replaceChildren(...parts);
    box.dataset.loaded = "1";
  }

  // "self", or the vendor with its code when it refused: "fcm 90000003 NotRegistered".
  function channelText(v) {
    const channel = v.channel || "self";
    if (channel === "self" || v.code == null || v.code === 2) return channel;
    return `${channel} ${v.code}${v.code_name ? " " + v.code_name : ""}`;
  }

  // The common codes (CONTRACT.md section 2), to name a delivery's status.
  const COMMON_NAMES = {
    "-1": "WaitingForVerify",
    0: "DeviceNotOnlineOrNoResponse",
    1: "NoBindInfo",
    2: "Acked",
    99999999: "NONE",
  };

  function statusClass(code) {
    return { "-1": "waiting", 0: "pending", 1: "nobind", 2: "acked" }[String(code)] || "other";
  }

  // --- search -----------------------------------------------------------------

  async function search(targetId, msgKey) {
    showError($("list-error"), "");
    const query = `target_id=${encodeURIComponent(targetId)}&msg_key=${encodeURIComponent(msgKey)}`;
    let items = [];
    try {
      items = itemsOf(await call(`/v1/messages?${query}`)).items;
    } catch (err) {
      if (!(err instanceof ApiFailure && err.status === 404)) {
        showError($("list-error"), `Search failed: ${err.describe()}`);
        return;
      }
    }
    state.searching = true;
    clearList();
    appendRows(items);
    updateListFoot();
    $("search-summary").textContent = items.length
      ? `Search result for target ID “${targetId}” and customer message ID “${msgKey}”.`
      : `No message with target ID “${targetId}” and customer message ID “${msgKey}” ` +
        "in the last 30 days.";
    show($("search-banner"), true);
    if (items.length === 1) toggleDetails(items[0].message_id, true);
  }

  // --- status codes -----------------------------------------------------------

  async function loadCodes() {
    if (state.codes) return;
    showError($("codes-error"), "");
    try {
      const all = [];
      let cursor = null;
      for (let pages = 0; pages < 50; pages++) {
        const suffix = cursor ? `?cursor=${encodeURIComponent(cursor)}` : "";
        const page = itemsOf(await call(`/v1/status-codes${suffix}`));
        all.push(...page.items);
        cursor = page.next;
        if (!cursor) break;
      }
      state.codes = all;
    } catch (err) {
      showError($("codes-error"), `Could not load the status codes: ${err.describe()}`);
      return;
    }
    const select = $("codes-channel");
    const current = select.value;
    select.replaceChildren(el("option", { value: "" }, "All channels"));
    for (const channel of [...new Set(state.codes.map((c) => c.channel))]) {
      select.append(el("option", { value: channel }, CHANNEL_LABELS[channel] || channel));
    }
    select.value = current;
    renderCodes();
  }

  function renderCodes() {
    if (!state.codes) return;
    const channel = $("codes-channel").value;
    const needle = $("codes-filter").value.trim().toLowerCase();
    const rows = state.codes.filter(
      (c) =>
        (!channel || c.channel === channel) &&
        (!needle ||
          `${c.code} ${c.name} ${c.description}`.toLowerCase().includes(needle)),
    );
    $("codes-body").replaceChildren(
      ...rows.map((c) =>
        el(
          "tr",
          { "data-channel": c.channel, "data-code": c.code },
          el("td", { "data-label": "Channel" }, CHANNEL_LABELS[c.channel] || c.channel),
          el("td", { "data-label": "Status code", class: "mono" }, String(c.code)),
          el("td", { "data-label": "Message" }, c.name || "—"),
          el("td", { "data-label": "Description", class: "desc" }, c.description),
        ),
      ),
    );
    $("codes-count").textContent = `${rows.length} of ${state.codes.length} codes`;
  }

  // --- test push --------------------------------------------------------------

  async function sendTestPush() {
    const result = $("push-result");
    result.className = "result";
    result.textContent = "Sending…";
    const body = {
      delivery_type: $("push-delivery").value,
      target_id: $("push-target").value.trim(),
      title: $("push-title").value,
      content: $("push-content").value,
      expired_seconds: Number($("push-expiry").value),
    };
    const key = $("push-key").value.trim();
    if (key) body.msg_key = key;
    try {
      const answer = await call("/v1/push/simple", { method: "POST", body });
      result.classList.add("ok");
      result.replaceChildren(
        answer.duplicate ? "Already pushed (duplicate): " : "Pushed: ",
        "message ID ",
        el("code", { "data-field": "message_id" }, answer.message_id),
        ", customer message ID ",
        el("code", { "data-field": "msg_key" }, answer.msg_key),
        ", status ",
        el("code", { "data-field": "status" }, String(answer.status)),
        ".",
      );
      if (!state.searching) refreshFirstPage().catch(() => {});
    } catch (err) {
      result.classList.add("error");
      result.textContent = `Push failed: ${err.describe()}`;
    }
  }

  // --- the test device --------------------------------------------------------

  function randomHex(bytes) {
    const data = new Uint8Array(bytes);
    crypto.getRandomValues(data);
    return Array.from(data, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function hmacHex(secret, message) {
    if (!window.crypto || !crypto.subtle) {
      throw new Error(
        "WebCrypto is unavailable: open the console over https, or at http://127.0.0.1 / " +
          "http://localhost, to compute device tokens in the browser.",
      );
    }
    const encoder = new TextEncoder();
    const key = await crypto.subtle.importKey(
      "raw",
      encoder.encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(message));
    return Array.from(new Uint8Array(mac), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function loadConsoleConfig() {
    const input = $("dev-ws");
    if (input.value) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    input.value = `${scheme}//${location.hostname}:8081/v1/connect`;
    try {
      const response = await fetch("/v1/console-config", { cache: "no-store" });
      const config = await response.json();
      if (config.ws_url) input.value = config.ws_url;
    } catch (err) {
      // keep the default derived from the page's host
    }
  }

  const device = {
    ws: null,
    pingTimer: null,
    seen: new Map(), // message id -> list item element
    app: null,
    id: null,
    secret: null,

    setState(kind, text) {
      const node = $("dev-state");
      node.dataset.state = kind;
      node.textContent = text;
      const live = kind === "connecting" || kind === "online";
      $("dev-connect").disabled = live;
      $("dev-disconnect").disabled = !live;
      $("dev-bind").disabled = kind !== "online";
      $("dev-unbind").disabled = kind !== "online";
    },

    async connect() {
      if (!window.MessagePack) {
        this.setState("error", "The MessagePack library did not load (vendor/msgpack.min.js).");
        return;
      }
      const url = $("dev-ws").value.trim();
      const deviceId = $("dev-id").value.trim();
      const platform = $("dev-platform").value;
      const secret = $("dev-secret").value;
      let token;
      try {
        token = await hmacHex(secret, `device:${state.appId}:${deviceId}`);
      } catch (err) {
        this.setState("error", err.message);
        return;
      }
      this.disconnect();
      this.app = state.appId;
      this.id = deviceId;
      this.secret = secret;
      this.setState("connecting", `Connecting to ${url} …`);
      let ws;
      try {
        ws = new WebSocket(url);
      } catch (err) {
        this.setState("error", `Cannot open ${url}: ${err.message}`);
        return;
      }
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      ws.addEventListener("open", () => {
        this.send({ t: "hello", v: 1, app: this.app, device: deviceId, platform, token });
      });
      ws.addEventListener("message", (event) => {
        if (ws !== this.ws) return;
        if (typeof event.data === "string") {
          this.setState("error", "The gateway sent a text frame; expected binary MessagePack.");
          return;
        }
        let frame;
        try {
          frame = MessagePack.decode(new Uint8Array(event.data));
        } catch (err) {
          this.setState("error", `Undecodable frame from the gateway: ${err.message}`);
          return;
        }
        this.handle(frame);
      });
      ws.addEventListener("close", (event) => {
        if (ws !== this.ws) return;
        this.stopPing();
        this.ws = null;
        setTimeout(refreshStats, 300);
        const node = $("dev-state");
        if (node.dataset.state === "error" || node.dataset.state === "closed") return;
        const why = event.reason ? `: ${event.reason}` : "";
        this.setState("closed", `Disconnected (WebSocket close ${event.code}${why}).`);
      });
    },

    send(frame) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) {
        this.ws.send(MessagePack.encode(frame));
      }
    },

    handle(frame) {
      switch (frame && frame.t) {
        case "welcome": {
          const beat = Number(frame.heartbeat) || 30;
          this.setState(
            "online",
            `Online as ${this.id} (session ${frame.session}, heartbeat ${beat} s).`,
          );
          this.stopPing();
          refreshStats();
          this.pingTimer = setInterval(() => this.send({ t: "ping" }), Math.max(1, beat / 2) * 1000);
          break;
        }
        case "push":
          this.received(frame);
          break;
        case "bound":
          this.setState("online", `Online as ${this.id}, bound to user ${frame.user}.`);
          break;
        case "unbound":
          this.setState("online", `Online as ${this.id}, not bound to a user.`);
          break;
        case "error":
          this.setState("error", `The gateway answered an error: ${frame.code} — ${frame.message}`);
          break;
        case "bye":
          this.setState("closed", `The gateway closed the connection: ${frame.reason}.`);
          break;
        default:
          break; // pong and anything newer
      }
    },

    received(frame) {
      const id = frame.id;
      const known = this.seen.get(id);
      if (known) {
        // Sent again (at-least-once): the ack may have been lost; acks are idempotent.
        if (known.dataset.acked === "true") this.send({ t: "ack", ids: [id] });
        return;
      }
      const ackButton = el(
        "button",
        {
          type: "button",
          class: "quiet",
          "aria-label": `Acknowledge push ${frame.msg_key}`,
          onclick: () => this.ack(id),
        },
        "Ack",
      );
      const item = el(
        "li",
        { "data-id": id, "data-msg-key": frame.msg_key, "data-acked": "false" },
        el("p", { class: "push-title" }, frame.title || "(no title)"),
        el("p", { class: "push-content" }, frame.content || ""),
        el(
          "p",
          { class: "push-meta" },
          el("span", {}, "Message ID ", el("code", {}, id)),
          el("span", {}, "Customer message ID ", el("code", {}, frame.msg_key)),
          el("span", {}, `${frame.push_type} push`),
          el("span", {}, `received ${toSecond(new Date().toISOString())} UTC`),
        ),
        el("p", { class: "push-ack" }, el("span", { class: "ack-state" }, "Not acked"), ackButton),
      );
      this.seen.set(id, item);
      $("dev-pushes").prepend(item);
      show($("dev-empty"), false);
      if ($("dev-autoack").checked) this.ack(id);
    },

    ack(id) {
      const item = this.seen.get(id);
      if (!this.ws || !item) return;
      this.send({ t: "ack", ids: [id] });
      item.dataset.acked = "true";
      item.querySelector(".ack-state").textContent = "Acked";
      item.querySelector(".push-ack button").remove();
      // The row's status in the list changes once the gateway stored the ack.
      for (const delay of [300, 1200]) {
        setTimeout(() => {
          if (state.expanded.has(id)) loadDetails(id);
          refreshStats();
        }, delay);
      }
    },

    async bind(user) {
      try {
        // CONTRACT §3: newline separators (IDs may hold ":", never a newline).
        const sig = await hmacHex(this.secret, `bind\n${this.app}\n${this.id}\n${user}`);
        this.send({ t: "bind", user, sig });
      } catch (err) {
        this.setState("error", err.message);
      }
    },

    unbind() {
      this.send({ t: "unbind" });
    },

    stopPing() {
      if (this.pingTimer !== null) clearInterval(this.pingTimer);
      this.pingTimer = null;
    },

    disconnect(reason) {
      this.stopPing();
      const ws = this.ws;
      this.ws = null;
      if (ws) ws.close(1000, reason || "closed by the operator");
      this.setState("disconnected", "Not connected.");
    },
  };

  // --- tabs -------------------------------------------------------------------

  const TABS = ["messages", "codes", "test"];

  function tabFromHash() {
    const name = location.hash.replace(/^#/, "");
    return TABS.includes(name) ? name : null;
  }

  function selectTab(name, focus) {
    for (const tab of TABS) {
      const selected = tab === name;
      const button = $(`tab-${tab}`);
      button.setAttribute("aria-selected", String(selected));
      button.tabIndex = selected ? 0 : -1;
      show($(`panel-${tab}`), selected);
      if (selected && focus) button.focus();
    }
    if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
    if (name === "codes") loadCodes();
  }

  // --- wiring -----------------------------------------------------------------

  function wire() {
    $("signin-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const appId = $("signin-app").value.trim();
      const apiKey = $("signin-key").value.trim();
      if (!appId || !apiKey) {
        showError($("signin-error"), "Enter both the app ID and the API key.");
        return;
      }
      const button = $("signin-submit");
      button.disabled = true;
      showError($("signin-error"), "");
      try {
        await signIn(appId, apiKey);
      } catch (err) {
        showError($("signin-error"), err.message);
      } finally {
        button.disabled = false;
      }
    });
    $("sign-out").addEventListener("click", () => signOut());

    for (const tab of TABS) {
      $(`tab-${tab}`).addEventListener("click", () => selectTab(tab, false));
      $(`tab-${tab}`).addEventListener("keydown", (event) => {
        const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        if (!step) return;
        const next = TABS[(TABS.indexOf(tab) + step + TABS.length) % TABS.length];
        selectTab(next, true);
      });
    }

    $("search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const target = $("search-target").value.trim();
      const key = $("search-key").value.trim();
      if (!target || !key) {
        showError(
          $("list-error"),
          "Search needs a complete target ID and customer message ID.",
        );
        return;
      }
      search(target, key);
    });
    $("search-clear").addEventListener("click", () => {
      $("search-target").value = "";
      $("search-key").value = "";
      reloadList();
    });
    $("load-more").addEventListener("click", loadMore);
    $("refresh").addEventListener("click", () => (state.searching ? null : reloadList()));

    $("codes-channel").addEventListener("change", renderCodes);
    $("codes-filter").addEventListener("input", renderCodes);

    $("push-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sendTestPush();
    });
    $("push-use-device").addEventListener("click", () => {
      $("push-delivery").value = $("dev-platform").value;
      $("push-target").value = $("dev-id").value.trim();
    });

    $("device-form").addEventListener("submit", (event) => {
      event.preventDefault();
      device.connect();
    });
    $("dev-disconnect").addEventListener("click", () => device.disconnect());
    $("bind-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const user = $("dev-user").value.trim();
      if (user) device.bind(user);
    });
    $("dev-unbind").addEventListener("click", () => device.unbind());
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) poll();
    });
  }

  async function start() {
    wire();
    let saved = null;
    try {
      saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    } catch (err) {
      saved = null;
    }
    if (saved && saved.app_id && saved.api_key) {
      $("signin-app").value = saved.app_id;
      try {
        await signIn(saved.app_id, saved.api_key);
        return;
      } catch (err) {
        signOut(err.message);
        return;
      }
    }
    show($("signin"), true);
  }

  start();
})();
