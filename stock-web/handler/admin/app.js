// The shop's page: sign in with the admin key, create commodities, watch the sale.
// Every value from the server is put in the page as text (textContent), never as HTML.
'use strict';
(() => {
  const T = {
    en: {
      title: 'secbuy shop', switchTo: '中文', switchLabel: 'Switch to Chinese', signout: 'Sign out',
      loading: 'Loading…', signinTitle: 'Sign in', adminKey: 'Admin key', signin: 'Sign in',
      wrongKey: 'Wrong admin key.', needKey: 'Enter the admin key.',
      createTitle: 'New commodity', name: 'Name', count: 'Units',
      start: 'Sale starts (local time; empty: open)', end: 'Sale ends (local time; empty: open)',
      ticket: 'Buyers need a ticket from the page (stops scripts that skip it)',
      create: 'Create', creating: 'Creating…', created: 'created #',
      badTime: 'Not a valid date and time.',
      listTitle: 'Commodities (newest 50, live)', empty: 'No commodities yet.',
      colId: '#', colName: 'Name', colState: 'State', colCount: 'Count', colSold: 'Sold', colLeft: 'Left',
      colOrders: 'Orders', colPending: 'Pending', colPaid: 'Paid', colUnpaid: 'Unpaid', colExpired: 'Expired', colTurned: 'Turned away/s',
      colStart: 'Starts', colEnd: 'Ends', open: 'open', updated: 'Updated ',
      stOn: 'on sale', stSoon: 'not started', stEnded: 'ended', stSoldOut: 'sold out',
      offline: 'Cannot reach the server; retrying…', failed: 'Request failed: ',
    },
    zh: {
      title: 'secbuy 商店管理', switchTo: 'English', switchLabel: '切换到英文', signout: '退出',
      loading: '加载中…', signinTitle: '登录', adminKey: '管理员密钥', signin: '登录',
      wrongKey: '管理员密钥不正确。', needKey: '请输入管理员密钥。',
      createTitle: '新建商品', name: '名称', count: '数量',
      start: '开售时间（本地时间；留空为不限）', end: '结束时间（本地时间；留空为不限）',
      ticket: '买家须先从页面领取购买凭证（阻止绕过页面的脚本）',
      create: '创建', creating: '正在创建…', created: '已创建 #',
      badTime: '日期时间无效。',
      listTitle: '商品（最新 50 个，实时）', empty: '还没有商品。',
      colId: '#', colName: '名称', colState: '状态', colCount: '总数', colSold: '已售', colLeft: '剩余',
      colOrders: '订单', colPending: '处理中', colPaid: '已支付', colUnpaid: '待支付', colExpired: '已超时', colTurned: '每秒拒绝',
      colStart: '开售', colEnd: '结束', open: '不限', updated: '更新于 ',
      stOn: '销售中', stSoon: '未开始', stEnded: '已结束', stSoldOut: '已售罄',
      offline: '无法连接服务器，正在重试…', failed: '请求失败：',
    },
  };
  const LANG_KEY = 'secbuy-admin-lang';
  const $ = (id) => document.getElementById(id);

  let lang = 'en';
  try { lang = localStorage.getItem(LANG_KEY) || ''; } catch (_) { lang = ''; }
  if (lang !== 'en' && lang !== 'zh') {
    const prefs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en'];
    lang = 'en';
    for (const p of prefs) {
      const l = String(p).toLowerCase();
      if (l.startsWith('zh')) { lang = 'zh'; break; }
      if (l.startsWith('en')) break;
    }
  }
  const t = (k) => (T[lang] && T[lang][k]) || T.en[k] || k;

  // Texts that depend on the language are made by a function, run again on a switch.
  const texts = new Map();
  function say(el, make) {
    if (make) texts.set(el, make); else texts.delete(el);
    el.textContent = make ? make() : '';
  }
  // words of a failed reply: Chinese when the server sent them (it does when asked in
  // Chinese), else the English detail.
  const words = (e) => () => (lang === 'zh' && e && e.message) ? e.message : ((e && e.detail) || t('failed'));

  function applyLang() {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.title = t('title');
    for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
    const b = $('lang');
    b.textContent = t('switchTo');
    b.setAttribute('aria-label', t('switchLabel'));
    for (const [el, make] of texts) el.textContent = make();
    if (last) render(last);
  }

  async function api(method, path, body) {
    const opts = { method, credentials: 'same-origin', cache: 'no-store',
      headers: { 'Accept': 'application/json', 'Accept-Language': lang === 'zh' ? 'zh-CN' : 'en' } };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let res;
    try { res = await fetch(path, opts); } catch (_) { return { status: 0, body: null }; }
    let data = null;
    try { data = await res.json(); } catch (_) { data = null; }
    return { status: res.status, body: data };
  }

  // Views.
  function show(view) {
    $('loading').hidden = true;
    $('signin-view').hidden = view !== 'signin';
    $('console').hidden = view !== 'console';
    $('signout').hidden = view !== 'console';
  }
  function showSignin() {
    stopPolling();
    last = null;
    $('rows').replaceChildren();
    const was = $('signin-view').hidden;
    show('signin');
    if (was) $('admin-key').focus();
  }

  // Polling the stats once a second, one request at a time.
  let timer = 0;
  let generation = 0;
  let last = null;
  function stopPolling() { generation++; clearTimeout(timer); }
  async function poll() {
    stopPolling();
    const mine = generation;
    const r = await api('GET', '/admin/stats');
    if (mine !== generation) return;
    if (r.status === 401) { showSignin(); return; }
    show('console');
    if (r.status === 200 && r.body && r.body.success) {
      last = r.body;
      render(r.body);
      const ms = r.body.serverMs;
      say($('stats-msg'), () => t('updated') + new Date(ms).toLocaleTimeString(locale()));
    } else if (r.status === 0) {
      say($('stats-msg'), () => t('offline'));
    } else {
      say($('stats-msg'), words(r.body && r.body.error));
    }
    timer = setTimeout(poll, 1000);
  }

  const locale = () => (lang === 'zh' ? 'zh-CN' : 'en-GB');
  function when(s) {
    if (!s) return t('open');
    return new Date(s * 1000).toLocaleString(locale(), { year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }
  const num = (n) => (n === null || n === undefined ? '—' : String(n));
  function state(c, nowS) {
    if (c.endTime && nowS >= c.endTime) return t('stEnded');
    if (c.startTime && nowS < c.startTime) return t('stSoon');
    if (c.left <= 0) return t('stSoldOut');
    return t('stOn');
  }

  const CELLS = ['id', 'name', 'state', 'count', 'sold', 'left', 'orders', 'pending', 'paid', 'unpaid', 'expired', 'turned', 'start', 'end'];
  function render(data) {
    const tbody = $('rows');
    const nowS = Math.floor((data.serverMs || Date.now()) / 1000);
    const old = new Map();
    for (const tr of tbody.children) old.set(tr.dataset.id, tr);
    const rows = [];
    for (const c of data.commodities || []) {
      const id = String(c.id);
      let tr = old.get(id);
      if (!tr) {
        tr = document.createElement('tr');
        tr.dataset.id = id;
        for (const k of CELLS) {
          const td = document.createElement(k === 'name' ? 'th' : 'td');
          if (k === 'name') td.scope = 'row';
          td.className = k;
          tr.appendChild(td);
        }
      }
      const v = { id, name: c.name, state: state(c, nowS), count: num(c.count), sold: num(c.sold), left: num(c.left),
        orders: num(c.orders), pending: num(c.pending), paid: num(c.paid), unpaid: num(c.unpaid), expired: num(c.expired), turned: num(c.turnedPerSec),
        start: when(c.startTime), end: when(c.endTime) };
      for (const td of tr.children) {
        const s = v[td.className];
        if (td.textContent !== s) td.textContent = s;
      }
      tr.classList.toggle('soldout', c.left <= 0);
      rows.push(tr);
    }
    tbody.replaceChildren(...rows);
    $('empty').hidden = rows.length > 0;
  }

  // Sign in, sign out.
  $('signin-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const input = $('admin-key');
    const msg = $('signin-msg');
    if (!input.value) {
      input.setAttribute('aria-invalid', 'true');
      say(msg, () => t('needKey'));
      input.focus();
      return;
    }
    const button = $('signin');
    button.disabled = true;
    const r = await api('POST', '/admin/signin', { key: input.value });
    button.disabled = false;
    if (r.status === 200 && r.body && r.body.success) {
      input.value = '';
      input.removeAttribute('aria-invalid');
      say(msg, null);
      await poll();
      $('c-name').focus();
      return;
    }
    input.setAttribute('aria-invalid', 'true');
    say(msg, r.status === 401 ? () => t('wrongKey') : r.status === 0 ? () => t('offline') : words(r.body && r.body.error));
    input.select();
  });
  $('signout').addEventListener('click', async () => {
    await api('POST', '/admin/signout', {});
    showSignin();
  });
  $('lang').addEventListener('click', () => {
    lang = lang === 'zh' ? 'en' : 'zh';
    try { localStorage.setItem(LANG_KEY, lang); } catch (_) { /* private mode: not kept */ }
    applyLang();
  });

  // Create. A refusal that names a field (by its API name) is shown next to that field;
  // anything else under the form.
  const FIELDS = { name: 'name', count: 'count', startTime: 'start', endTime: 'end' };
  const NAMED = ['id', 'name', 'count', 'sale', 'startTime', 'endTime', 'buckets'];
  function fieldOf(detail) {
    let best = null;
    let at = Infinity;
    for (const f of NAMED) {
      const m = new RegExp('\\b' + f + '\\b').exec(detail || '');
      if (m && m.index < at) { at = m.index; best = f; }
    }
    return FIELDS[best] || null;
  }
  function clearErrors() {
    for (const f of Object.values(FIELDS)) {
      $('c-' + f).removeAttribute('aria-invalid');
      say($('err-' + f), null);
    }
    $('create-msg').classList.remove('bad');
    say($('create-msg'), null);
  }
  function fieldError(f, make) {
    const input = $('c-' + f);
    input.setAttribute('aria-invalid', 'true');
    say($('err-' + f), make);
    return input;
  }
  // unix returns a datetime-local value (local time) as UTC unix seconds; 0 for empty.
  function unix(value) {
    if (!value) return 0;
    const ms = new Date(value).getTime();
    return Number.isFinite(ms) ? Math.floor(ms / 1000) : NaN;
  }

  $('create-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const button = $('create');
    if (button.disabled) return;
    clearErrors();
    const startTime = unix($('c-start').value);
    const endTime = unix($('c-end').value);
    let bad = null;
    if (Number.isNaN(endTime)) bad = fieldError('end', () => t('badTime'));
    if (Number.isNaN(startTime)) bad = fieldError('start', () => t('badTime'));
    if (bad) { bad.focus(); return; }
    const countText = $('c-count').value.trim();
    const count = countText === '' ? 0 : Number(countText);
    const body = { name: $('c-name').value, count: Number.isFinite(count) ? count : 0, startTime, endTime,
      ticketRequired: $('c-ticket').checked };
    button.disabled = true;
    say(button, () => t('creating'));
    const r = await api('POST', '/stock/create', body);
    button.disabled = false;
    say(button, null);
    button.textContent = t('create');
    const msg = $('create-msg');
    if (r.status === 200 && r.body && r.body.success && r.body.commodity) {
      const id = r.body.commodity.id;
      $('create-form').reset();
      say(msg, () => t('created') + id);
      poll();
      return;
    }
    if (r.status === 401) { showSignin(); return; }
    const e = r.body && r.body.error;
    const f = r.status === 400 ? fieldOf(e && e.detail) : null;
    if (f) {
      fieldError(f, words(e)).focus();
      return;
    }
    msg.classList.add('bad');
    say(msg, r.status === 0 ? () => t('offline') : words(e));
  });

  applyLang();
  poll();
})();
