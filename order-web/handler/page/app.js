// The buyer's page of secbuy: the commodities on sale or coming up, their units left live
// (Server-Sent Events from /page/stream), a countdown by the server's clock, Buy, and the
// buyer's own orders with Pay. Plain JavaScript, no build step.
"use strict";

// The page's own words; the words of a refusal come from the server (its reasons).
const TEXT = {
  zh: {
    title: "秒杀", signin: "登录", devName: "用户名（开发用）", signinBtn: "登录",
    tokenLabel: "登录凭证（Bearer 令牌）", useToken: "使用", signedInAs: "已登录：", signout: "退出",
    onSale: "正在秒杀与即将开始", myOrders: "我的订单", newer: "较新", older: "较早",
    unitsLeft: "剩余", of: "共 {n} 件", soldOut: "已售罄", buy: "立即抢购", startsIn: "距开始 {t}",
    notStartedBtn: "未开始", endedBtn: "已结束", onSaleNow: "抢购中", window: "{from} 至 {to}", open: "不限",
    signinFirst: "请先登录", yours: "抢到了！订单 #{id}", pending: "订单处理中…", busy: "系统繁忙，正在重试…",
    network: "网络错误，正在重试…", gaveUp: "未能完成，请再试一次", needHttps: "购买此商品需要通过 https 打开本页", none: "暂无商品",
    loadFailed: "加载失败，正在重试…", noOrders: "还没有订单",
    pay: "支付", paying: "支付中…", paid: "已支付", expired: "已超时，该商品已重新开售",
    unpaid: "待支付", preparing: "支付单生成中…", orderPending: "处理中", orderFailed: "失败：{r}",
    badName: "用户名为 1 至 32 个字母、数字、_ 或 -", devOff: "此环境未开启开发登录",
    order: "订单 #{id}",
  },
  en: {
    title: "Flash sale", signin: "Sign in", devName: "User name (development)", signinBtn: "Sign in",
    tokenLabel: "Token (bearer)", useToken: "Use", signedInAs: "Signed in as", signout: "Sign out",
    onSale: "On sale and coming up", myOrders: "My orders", newer: "Newer", older: "Older",
    unitsLeft: "Units left", of: "of {n}", soldOut: "sold out", buy: "Buy now", startsIn: "Starts in {t}",
    notStartedBtn: "Not started", endedBtn: "Ended", onSaleNow: "On sale", window: "{from} to {to}", open: "open",
    signinFirst: "Sign in first", yours: "Yours! Order #{id}", pending: "Order being made…", busy: "Busy, retrying…",
    network: "Network error, retrying…", gaveUp: "Could not finish; press again", needHttps: "Buying this needs the page opened over https", none: "Nothing on sale",
    loadFailed: "Could not load, retrying…", noOrders: "No orders yet",
    pay: "Pay", paying: "Paying…", paid: "paid", expired: "expired, the unit went back on sale",
    unpaid: "unpaid", preparing: "payment being prepared…", orderPending: "pending", orderFailed: "failed: {r}",
    badName: "A user name is 1 to 32 letters, digits, _ or -", devOff: "Development sign-in is off here",
    order: "Order #{id}",
  },
};

const $ = (sel, root = document) => root.querySelector(sel);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const state = {
  lang: "zh",
  words: {},          // reason name → [en, zh]
  offset: 0,          // server clock − browser clock, ms
  payURL: "",
  token: "",
  user: "",
  only: 0,            // /c/{id}: the one commodity shown
  items: new Map(),   // id → {c, li}
  pressing: new Set(),// commodity ids with a press in flight: a double-click makes one press
  ordersOffset: 0,
  ordersMore: false,
};

function t(key, vars) {
  let s = (TEXT[state.lang] || TEXT.en)[key] || key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace("{" + k + "}", v);
  return s;
}

// reasonText is the server's words for a refusal, in the page's language.
function reasonText(body) {
  const e = body && body.error;
  if (!e) return t("gaveUp");
  const w = state.words[e.reason];
  if (w && (e.reason !== "INVALID_INPUT" || !e.detail)) return state.lang === "zh" ? w[1] : w[0];
  return e.detail || t("gaveUp");
}

const serverNow = () => Date.now() + state.offset;

function applyLang() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  document.title = "secbuy · " + t("title");
  for (const el of document.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
  $("#lang").textContent = state.lang === "zh" ? "English" : "中文";
  for (const it of state.items.values()) render(it);
  renderOrders();
}

// ---- sign-in ----------------------------------------------------------------------------

function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return "";
}

// subOf reads a token's user (its sub) for display; the server checks the token.
function subOf(token) {
  try {
    const p = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return String(p.sub || "");
  } catch { return ""; }
}

function signedIn(token, name) {
  signIns++;
  state.token = token;
  state.user = name || subOf(token);
  sessionStorage.setItem("secbuy_token", token);
  sessionStorage.setItem("secbuy_user", state.user);
  $("#signin").hidden = true;
  $("#who").hidden = false;
  $("#who-name").textContent = state.user;
  $("#orders-sec").hidden = false;
  state.ordersOffset = 0;
  loadOrders();
}

function signOut() {
  signIns++;
  state.token = state.user = "";
  sessionStorage.removeItem("secbuy_token");
  sessionStorage.removeItem("secbuy_user");
  $("#signin").hidden = false;
  $("#who").hidden = true;
  $("#orders-sec").hidden = true;
  orders = [];
}

async function devSignIn(ev) {
  ev.preventDefault();
  const name = $("#dev-name").value.trim();
  const msg = $("#signin-msg");
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(name)) { msg.textContent = t("badName"); return; }
  try {
    const res = await fetch("/page/devtoken", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name }) });
    const body = await res.json();
    if (!res.ok) { msg.textContent = res.status === 404 || res.status === 405 ? t("devOff") : reasonText(body); return; }
    msg.textContent = "";
    signedIn(body.token, name);
  } catch { msg.textContent = t("network"); }
}

function tokenSignIn(ev) {
  ev.preventDefault();
  const token = $("#token").value.trim().replace(/^Bearer\s+/i, "");
  if (token) { $("#token").value = ""; signedIn(token); }
}

// ---- commodities ------------------------------------------------------------------------

function fmtTime(sec) {
  if (!sec) return t("open");
  return new Date(sec * 1000).toLocaleString(state.lang === "zh" ? "zh-CN" : "en-GB", { hour12: false });
}

function fmtLeft(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60, x = s % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return (d ? d + "d " : "") + pad(h) + ":" + pad(m) + ":" + pad(x);
}

// phase is where commodity c's sale window is now, by the server's clock.
function phase(c) {
  const now = serverNow();
  if (c.startTime && now < c.startTime * 1000) return "before";
  if (c.endTime && now >= c.endTime * 1000) return "ended";
  return "on";
}

function render(it) {
  const { c, li } = it;
  for (const el of li.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
  $(".name", li).textContent = c.name;
  const left = $(".left", li);
  left.textContent = c.left > 0 ? String(c.left) : "0 · " + t("soldOut");
  li.dataset.left = String(c.left);
  $(".of", li).textContent = t("of", { n: c.count });
  $(".window", li).textContent = t("window", { from: fmtTime(c.startTime), to: fmtTime(c.endTime) });
  showResult(it);
  tick(it);
}

// tick updates the countdown and the button; the button enables at the start instant.
function tick(it) {
  const { c, li } = it;
  const p = phase(c);
  const btn = $(".buy", li);
  li.dataset.phase = p;
  const cd = $(".countdown", li);
  if (p === "before") cd.textContent = t("startsIn", { t: fmtLeft(c.startTime * 1000 - serverNow()) });
  else cd.textContent = p === "ended" ? t("endedBtn") : t("onSaleNow");
  btn.textContent = p === "before" ? t("notStartedBtn") : p === "ended" ? t("endedBtn") : t("buy");
  btn.disabled = p !== "on" || state.pressing.has(c.id);
}

// show puts an outcome on a card: the words of key (with vars) or of a refusal (body), in
// the page's language, again when the language changes.
function show(it, key, vars, kind, body) {
  it.shown = { key, vars, kind, body };
  showResult(it);
}

function showResult(it) {
  const r = $(".result", it.li);
  if (!it.shown) { r.textContent = ""; return; }
  const { key, vars, kind, body } = it.shown;
  r.textContent = body ? reasonText(body) : t(key, vars);
  r.className = "result" + (kind ? " " + kind : "");
}

function setCommodities(list) {
  const ul = $("#commodities");
  const seen = new Set();
  for (const c of list) {
    seen.add(c.id);
    let it = state.items.get(c.id);
    if (!it) {
      const li = $("#commodity-tpl").content.firstElementChild.cloneNode(true);
      li.dataset.id = String(c.id);
      const btn = $(".buy", li);
      $(".countdown", li).id = "cd-" + c.id;
      $(".result", li).id = "res-" + c.id;
      btn.setAttribute("aria-describedby", "cd-" + c.id + " res-" + c.id);
      it = { c, li };
      btn.addEventListener("click", () => buy(it));
      state.items.set(c.id, it);
      ul.appendChild(li);
    }
    it.c = c;
    render(it);
  }
  for (const [id, it] of state.items) {
    if (!seen.has(id) && !state.only) { it.li.remove(); state.items.delete(id); }
  }
  $("#list-msg").textContent = state.items.size ? "" : t("none");
}

async function loadCommodities() {
  const q = state.only ? "?id=" + state.only : "";
  for (;;) {
    try {
      const t0 = Date.now();
      const res = await fetch("/page/commodities" + q, { headers: { "Accept-Language": navigator.languages.join(",") } });
      const t1 = Date.now();
      const body = await res.json();
      if (!res.ok) { $("#list-msg").textContent = reasonText(body); if (res.status < 500) return null; }
      else {
        // serverMs is when the request arrived: half the round trip, less the server's
        // own time, after t0.
        state.offset = body.serverMs - (t0 + Math.max(0, t1 - t0 - (body.tookMs || 0)) / 2);
        setCommodities(body.commodities);
        return body;
      }
    } catch { $("#list-msg").textContent = t("loadFailed"); }
    await sleep(1000);
  }
}

// The live stock: one stream per page; an id it does not know yet is a new commodity.
// EventSource reconnects by itself after a network error, not after a refusal (a stopping
// or full instance answers 503), and a stream can go quiet: either way, a new one is
// opened, after a second or two.
let reloading = false;
let es = null;
let lastEvent = 0;
function stream() {
  if (es) es.close();
  es = new EventSource("/page/stream");
  lastEvent = Date.now();
  es.addEventListener("error", () => {
    if (es.readyState === EventSource.CLOSED) setTimeout(stream, 1000 + Math.random() * 1000);
  });
  es.addEventListener("stock", (ev) => {
    lastEvent = Date.now();
    const d = JSON.parse(ev.data);
    let unknown = false;
    for (const [id, left] of Object.entries(d.left)) {
      const it = state.items.get(Number(id));
      if (!it) { unknown = !state.only; continue; }
      if (it.c.left !== left) { it.c.left = left; render(it); }
    }
    if (unknown && !reloading) {
      reloading = true;
      loadCommodities().finally(() => { reloading = false; });
    }
  });
}

setInterval(() => { if (es && Date.now() - lastEvent > 3000) stream(); }, 1000);

// ---- buying -----------------------------------------------------------------------------

function randomKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function retryAfter(res) {
  const s = Number(res && res.headers.get("Retry-After"));
  return (s > 0 && s < 30 ? s : 1) * 1000;
}

// zeroBits is how many zero bits the bytes h start with.
function zeroBits(h) {
  let n = 0;
  for (const x of h) {
    if (x !== 0) return n + Math.clz32(x) - 24;
    n += 8;
  }
  return n;
}

// solve does a ticket's proof of work: the first decimal nonce n from 0 such that
// SHA-256(ticket "." n) starts with bits zero bits ("" when none is asked), as
// basic/ticket.Solve does; 256 hashes at a time, for the browser to run them together.
async function solve(ticket, bits) {
  if (!bits) return "";
  const enc = new TextEncoder();
  const batch = 256;
  for (let n = 0; ; n += batch) {
    const hs = await Promise.all(Array.from({ length: batch },
      (_, i) => crypto.subtle.digest("SHA-256", enc.encode(ticket + "." + (n + i)))));
    for (let i = 0; i < batch; i++) {
      if (zeroBits(new Uint8Array(hs[i])) >= bits) return String(n + i);
    }
  }
}

// getTicket asks for a ticket for commodity c (one that requires it) and does its work:
// the ticket, or null with the refusal in res and body (as a press's answer).
async function getTicket(c, got) {
  got.res = await fetch("/order/ticket?id=" + c.id, {
    headers: { Authorization: "Bearer " + state.token, "Accept-Language": navigator.languages.join(",") },
  });
  got.body = await got.res.json().catch(() => null);
  const t = got.res.status === 200 && got.body && got.body.ticket;
  if (!t) return null;
  // crypto.subtle is given only to https pages (and localhost).
  if (t.pow && !(window.crypto && crypto.subtle)) { got.noWork = true; return null; }
  // Half a second short of its life from when it came, for the press to arrive in time.
  const until = Date.now() + t.expiresIn - 500;
  return { value: t.value, nonce: await solve(t.value, t.pow), until };
}

// buy makes one press: one Idempotency-Key, resent after Retry-After while the answer is
// "busy" (503) or not known yet (202), until an answer in words. For a commodity that
// requires a ticket, it gets one first (and again when it lapses).
async function buy(it) {
  const { c, li } = it;
  if (state.pressing.has(c.id)) return;
  if (!state.token) { show(it, "signinFirst", null, "bad"); return; }
  state.pressing.add(c.id);
  tick(it);
  const key = randomKey();
  let ticket = null, renewed = false, sent = false;
  try {
    for (let attempt = 0; attempt < 120; attempt++) {
      let res = null, body = null;
      try {
        const got = {};
        if (c.ticketRequired && !(ticket && Date.now() < ticket.until)) ticket = await getTicket(c, got);
        if (got.noWork) { show(it, "needHttps", null, "bad"); li.dataset.result = "NEED_HTTPS"; return; }
        if (c.ticketRequired && !ticket) {
          res = got.res; body = got.body;
        } else {
          sent = true;
          res = await fetch("/order/sell", {
            method: "POST",
            headers: { "Content-Type": "application/json", Authorization: "Bearer " + state.token, "Idempotency-Key": key },
            body: JSON.stringify(ticket ? { id: c.id, ticket: ticket.value, nonce: ticket.nonce } : { id: c.id }),
          });
          body = await res.json().catch(() => null);
        }
      } catch { res = null; }
      if (res && res.status === 200 && body && body.order) {
        show(it, "yours", { id: body.order.id }, "good");
        li.dataset.result = "yours";
        loadOrders();
        return;
      }
      if (res && res.status === 202) { show(it, "pending"); await sleep(retryAfter(res)); continue; }
      if (!res || res.status === 502 || res.status === 503 || res.status === 504) {
        show(it, res ? "busy" : "network");
        await sleep(retryAfter(res));
        continue;
      }
      const reason = body && body.error ? body.error.reason : "";
      if (reason === "TICKET_REQUIRED" && !renewed) { ticket = null; renewed = true; continue; } // it lapsed on the way
      li.dataset.result = reason;
      show(it, "", null, "bad", body || {});
      // A resend refused its new ticket (ended, sold out) may have an order from its first press.
      if (reason === "ALREADY_BOUGHT" || sent) loadOrders();
      if (reason === "INVALID_TOKEN" || reason === "UNAUTHENTICATED") signOut();
      return;
    }
    show(it, "gaveUp", null, "bad");
  } finally {
    state.pressing.delete(c.id);
    tick(it);
  }
}

// ---- my orders --------------------------------------------------------------------------

let orders = [];        // this page of the buyer's orders, each {o, pay: payment state}
let ordersLoading = false;
let ordersAgain = false; // asked again while loading: load once more after
let signIns = 0;         // a reply for an earlier sign-in is dropped

function payBase() {
  return state.payURL || location.protocol + "//" + location.hostname + ":8089";
}

async function loadOrders() {
  if (!state.token) return;
  if (ordersLoading) { ordersAgain = true; return; }
  ordersLoading = true;
  const mine = signIns;
  try {
    // A busy answer or a network error is asked again, like a press; so is a page that
    // holds an order whose outcome is not known yet.
    for (let i = 0; i < 30 && mine === signIns; i++) {
      let res = null, body = null;
      try {
        res = await fetch("/order/list?limit=10&offset=" + state.ordersOffset, { headers: { Authorization: "Bearer " + state.token } });
        body = await res.json();
      } catch { res = null; }
      if (mine !== signIns) return;
      if (!res || res.status >= 500) { $("#orders-msg").textContent = t(res ? "busy" : "network"); await sleep(retryAfter(res)); continue; }
      if (!res.ok) { $("#orders-msg").textContent = reasonText(body); return; }
      state.ordersMore = body.page.more;
      orders = body.page.orders.map((o) => ({ o, pay: null }));
      renderOrders();
      for (const entry of orders) loadPayment(entry, mine);
      if (!orders.some((e) => e.o.state === "pending")) return;
      await sleep(1000);
    }
  } finally {
    ordersLoading = false;
    if (ordersAgain) { ordersAgain = false; loadOrders(); }
  }
}

// loadPayment reads an order's payment; it is made moments after the order, so a missing
// one is asked again for a while.
async function loadPayment(entry, mine) {
  if (entry.o.state !== "created") return;
  for (let i = 0; i < 30 && mine === signIns && orders.includes(entry); i++) {
    try {
      const res = await fetch(payBase() + "/payment/get?id=" + entry.o.id, { headers: { Authorization: "Bearer " + state.token } });
      const body = await res.json();
      if (res.ok) { entry.pay = body.payment.state; renderOrders(); return; }
      const reason = body && body.error ? body.error.reason : "";
      if (reason === "PAYMENT_EXPIRED") { entry.pay = 2; renderOrders(); return; }
      if (reason !== "PAYMENT_NOT_FOUND" && res.status !== 503) return;
    } catch { /* payment-web away: ask again */ }
    entry.pay = "preparing";
    renderOrders();
    await sleep(1000);
  }
}

function orderState(entry) {
  const o = entry.o;
  if (o.state === "cancelled" || entry.pay === 2) return [t("expired"), "bad"];
  if (o.state === "pending") return [t("orderPending"), ""];
  if (o.state === "failed") return [t("orderFailed", { r: o.reason }), "bad"];
  if (entry.pay === 1) return [t("paid"), "good"];
  if (entry.pay === 0) return [t("unpaid"), ""];
  if (entry.pay === "preparing") return [t("preparing"), ""];
  return ["", ""];
}

function renderOrders() {
  const ul = $("#orders");
  if (!ul) return;
  ul.textContent = "";
  for (const entry of orders) {
    const li = $("#order-tpl").content.firstElementChild.cloneNode(true);
    li.dataset.order = String(entry.o.id);
    $(".oname", li).textContent = entry.o.name;
    $(".oid", li).textContent = t("order", { id: entry.o.id });
    const [text, kind] = orderState(entry);
    const st = $(".ostate", li);
    st.textContent = text;
    st.className = "ostate" + (kind ? " " + kind : "");
    li.dataset.state = entry.pay === 1 ? "paid" : entry.pay === 2 || entry.o.state === "cancelled" ? "expired" : entry.o.state;
    const pay = $(".pay", li);
    pay.textContent = entry.paying ? t("paying") : t("pay");
    pay.hidden = !(entry.o.state === "created" && entry.pay === 0);
    pay.disabled = !!entry.paying;
    pay.addEventListener("click", () => payOrder(entry));
    ul.appendChild(li);
  }
  $("#orders-msg").textContent = orders.length || state.ordersOffset ? "" : t("noOrders");
  $("#orders-prev").disabled = state.ordersOffset === 0;
  $("#orders-next").disabled = !state.ordersMore;
  $(".pager").hidden = state.ordersOffset === 0 && !state.ordersMore;
}

async function payOrder(entry) {
  if (entry.paying) return;
  entry.paying = true;
  renderOrders();
  try {
    for (let i = 0; i < 60; i++) {
      let res = null, body = null;
      try {
        res = await fetch(payBase() + "/payment/payorder", {
          method: "POST",
          headers: { "Content-Type": "application/json", Authorization: "Bearer " + state.token },
          body: JSON.stringify({ id: entry.o.id }),
        });
        body = await res.json().catch(() => null);
      } catch { res = null; }
      if (res && res.ok) { entry.pay = body.payment.state; return; }
      if (!res || res.status >= 500) { await sleep(retryAfter(res)); continue; }
      const reason = body && body.error ? body.error.reason : "";
      if (reason === "PAYMENT_EXPIRED") entry.pay = 2;
      else $("#orders-msg").textContent = reasonText(body);
      return;
    }
  } finally {
    entry.paying = false;
    renderOrders();
  }
}

// ---- start ------------------------------------------------------------------------------

async function main() {
  const m = location.pathname.match(/^\/c\/(\d+)$/);
  if (m) state.only = Number(m[1]);
  $("#lang").addEventListener("click", () => {
    state.lang = state.lang === "zh" ? "en" : "zh";
    localStorage.setItem("secbuy_lang", state.lang);
    applyLang();
  });
  $("#dev-form").addEventListener("submit", devSignIn);
  $("#token-form").addEventListener("submit", tokenSignIn);
  $("#signout").addEventListener("click", signOut);
  $("#orders-prev").addEventListener("click", () => { state.ordersOffset = Math.max(0, state.ordersOffset - 10); loadOrders(); });
  $("#orders-next").addEventListener("click", () => { state.ordersOffset += 10; loadOrders(); });

  const body = await loadCommodities();
  if (body) {
    state.words = body.words || {};
    state.payURL = body.paymentUrl || "";
    state.lang = localStorage.getItem("secbuy_lang") || body.lang;
    $("#dev-form").hidden = !body.devLogin;
  }
  applyLang();
  const token = sessionStorage.getItem("secbuy_token") || cookie("secbuy_token");
  if (token) signedIn(token, sessionStorage.getItem("secbuy_user"));
  stream();
  setInterval(() => { for (const it of state.items.values()) tick(it); }, 100);
  // The clock's offset and the list kept fresh, the pages not all at once.
  setInterval(loadCommodities, 50000 + Math.random() * 20000);
  document.body.dataset.ready = "1";
}

main();
