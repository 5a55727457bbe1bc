/*! Vitrine search widget: search-as-you-type box, results page with facets, behaviour events.
 * No build step, no dependency. Embed with:
 *   <link rel="stylesheet" href="https://SEARCH-HOST/widget/vitrine.css">
 *   <script src="https://SEARCH-HOST/widget/vitrine.js" data-key="PUBLIC-SEARCH-KEY" defer></script>
 * Options are data-* attributes of the script tag (see README "Add the search bar to your shop").
 * Everything runs inside try/catch: a failure leaves the host page and a plain GET search form.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.Vitrine) return;
  var ds = script.dataset;
  var scriptOrigin = new URL(script.src, location.href).origin;
  var cfg = {
    api: (ds.api || scriptOrigin).replace(/\/$/, ""),
    key: ds.key || "",
    target: ds.target || "",
    results: ds.results || "",
    action: ds.action || location.pathname,
    productUrl: ds.productUrl || "",
    imageUrl: ds.imageUrl || "",
    currency: ds.currency || "EUR",
    locale: ds.locale || document.documentElement.lang || "en",
    size: ds.size || "",
    pageSize: parseInt(ds.pageSize || "24", 10),
    debounce: parseInt(ds.debounce || "20", 10),
    explain: ds.explain === "true",
    compare: ds.compare === "true",
    placeholder: ds.placeholder || "Search products",
    flushMs: 2000
  };
  var FILTERS = ["brand", "category", "colour", "size"];
  var FACET_LABELS = { category: "Category", brand: "Brand", colour: "Colour", size: "Available in size", price: "Price" };
  var SORTS = [["relevance", "Relevance"], ["price_asc", "Price: low to high"], ["price_desc", "Price: high to low"], ["newest", "Newest"]];
  var uid = 0;

  // ---- small helpers --------------------------------------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      var v = attrs[k];
      if (v == null || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    (children || []).forEach(function (c) { if (c != null) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }
  function store(kind) { try { return window[kind]; } catch (e) { return null; } }
  function randomId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }
  function persistentId(kind, name) {
    var s = store(kind), id = s && s.getItem(name);
    if (!id) { id = randomId(); if (s) try { s.setItem(name, id); } catch (e) { /* private mode */ } }
    return id;
  }
  function fill(template, hit) { return template.replace(/\{id\}/g, encodeURIComponent(hit.id)); }
  var money;
  function price(value) {
    if (value == null) return "";
    try { money = money || new Intl.NumberFormat(cfg.locale, { style: "currency", currency: cfg.currency }); return money.format(value); }
    catch (e) { return value.toFixed(2); }
  }
  function visitorSize() {
    var s = store("localStorage");
    return cfg.size || (s && s.getItem("vitrine.size")) || "";
  }

  var visitorId = persistentId("localStorage", "vitrine.visitor");
  var sessionId = persistentId("sessionStorage", "vitrine.session");

  // ---- API ------------------------------------------------------------------------------
  function headers(json) {
    var h = {};
    if (cfg.key) h.Authorization = "Bearer " + cfg.key;
    if (json) h["Content-Type"] = "application/json";
    return h;
  }
  function get(path, params, signal) {
    var qs = new URLSearchParams();
    Object.keys(params).forEach(function (k) {
      var v = params[k];
      if (Array.isArray(v)) v.forEach(function (x) { qs.append(k, x); });
      else if (v !== "" && v != null) qs.append(k, v);
    });
    return fetch(cfg.api + path + "?" + qs, { headers: headers(false), signal: signal }).then(function (r) {
      if (!r.ok) throw new Error("Vitrine " + path + ": HTTP " + r.status);
      return r.json();
    });
  }

  // ---- events: batched, flushed every few seconds and when the page is hidden --------------
  var queue = [], timer = 0;
  function track(type, fields) {
    var event = { type: type, visitor_id: visitorId, session_id: sessionId, ts: Date.now() };
    for (var k in fields) if (fields[k] != null && fields[k] !== "") event[k] = fields[k];
    // A view or add_to_cart of a product reached from the results carries that search.
    if (type !== "click" && event.product_id && event.search_id == null) {
      var from = lastClick(event.product_id);
      if (from) { event.search_id = from.search_id; event.position = from.position; }
    }
    queue.push(event);
    if (queue.length >= 20) flush(false);
    else if (!timer) timer = setTimeout(function () { flush(false); }, cfg.flushMs);
  }
  function flush(leaving) {
    clearTimeout(timer); timer = 0;
    if (!queue.length) return Promise.resolve();
    var body = JSON.stringify({ events: queue.splice(0, 1000) });
    // sendBeacon survives the page going away but cannot carry an Authorization header; with a
    // key, a keepalive fetch does the same job.
    if (leaving && !cfg.key && navigator.sendBeacon &&
        navigator.sendBeacon(cfg.api + "/events", new Blob([body], { type: "text/plain" }))) return Promise.resolve();
    return fetch(cfg.api + "/events", { method: "POST", headers: headers(true), body: body, keepalive: true })
      .catch(function () { /* analytics must never disturb the shopper */ });
  }
  addEventListener("pagehide", function () { flush(true); });
  document.addEventListener("visibilitychange", function () { if (document.visibilityState === "hidden") flush(true); });

  function rememberClick(hit, searchId, position) {
    var s = store("sessionStorage");
    if (s) try { s.setItem("vitrine.click." + hit.id, JSON.stringify({ search_id: searchId, position: position })); } catch (e) { /* full */ }
  }
  function lastClick(productId) {
    var s = store("sessionStorage");
    try { return JSON.parse((s && s.getItem("vitrine.click." + productId)) || "null"); } catch (e) { return null; }
  }

  // ---- rendering of one hit (dropdown preview and results card share it) ---------------------
  function productHref(hit) { return cfg.productUrl ? fill(cfg.productUrl, hit) : (hit.url || "#"); }
  function imageSrc(hit) { return cfg.imageUrl ? fill(cfg.imageUrl, hit) : hit.image; }
  function sizeBadge(hit) {
    var size = visitorSize();
    if (!hit.in_stock) return el("span", { class: "vt-badge vt-out", text: "Sold out" });
    if (!size || !hit.available_sizes.length) return el("span", { class: "vt-badge vt-in", text: "In stock" });
    var ok = hit.available_sizes.indexOf(size) >= 0;
    return el("span", { class: "vt-badge " + (ok ? "vt-in" : "vt-out"), text: ok ? "In your size " + size : "Not in " + size });
  }
  function explainBlock(hit) {
    if (!hit.explain) return null;
    var rows = Object.keys(hit.explain).map(function (stage) {
      var c = hit.explain[stage].contribution;
      return el("tr", null, [el("th", { text: stage }), el("td", { text: (c >= 0 ? "+" : "") + c.toFixed(3) })]);
    });
    return el("details", { class: "vt-explain" }, [
      el("summary", { text: "Why here? score " + hit.score.toFixed(3) }),
      el("table", null, rows)
    ]);
  }
  function card(hit, result, position, onPick) {
    var img = imageSrc(hit);
    var link = el("a", {
      class: "vt-card-link", href: productHref(hit),
      onclick: function () { onPick(hit, position); }
    }, [
      img ? el("img", { class: "vt-img", src: img, alt: "", loading: "lazy", width: "240", height: "240" }) : el("span", { class: "vt-img" }),
      el("span", { class: "vt-title", text: hit.title })
    ]);
    return el("li", {
      class: "vt-card", "data-id": hit.id, "data-position": String(position),
      "data-sizes": hit.available_sizes.join(" "), "data-in-stock": String(hit.in_stock)
    }, [
      link,
      el("span", { class: "vt-meta" }, [
        hit.brand ? el("span", { class: "vt-brand", text: hit.brand }) : null,
        el("span", { class: "vt-price", text: price(hit.price) }), sizeBadge(hit)
      ]),
      explainBlock(hit)
    ]);
  }
  function picked(result) {
    return function (hit, position) {
      track("click", { product_id: hit.id, search_id: result.search_id, position: position, query: result.query });
      rememberClick(hit, result.search_id, position);
      flush(true);
    };
  }

  // ---- URL state: the query, filters, sort and page live in the address bar ------------------
  function readState() {
    var p = new URLSearchParams(location.search), st = { q: p.get("q") || "", sort: p.get("sort") || "relevance", page: Math.max(1, parseInt(p.get("page") || "1", 10) || 1), price: p.get("price") || "" };
    FILTERS.forEach(function (f) { st[f] = p.getAll(f); });
    return st;
  }
  function writeState(st, push) {
    var p = new URLSearchParams(location.search);
    ["q", "sort", "page", "price"].concat(FILTERS).forEach(function (k) { p.delete(k); });
    if (st.q) p.set("q", st.q);
    FILTERS.forEach(function (f) { st[f].forEach(function (v) { p.append(f, v); }); });
    if (st.price) p.set("price", st.price);
    if (st.sort !== "relevance") p.set("sort", st.sort);
    if (st.page > 1) p.set("page", String(st.page));
    var url = location.pathname + (p.toString() ? "?" + p : "") + location.hash;
    history[push ? "pushState" : "replaceState"]({ vitrine: true }, "", url);
  }
  function searchParams(st, extra) {
    var params = { q: st.q, visitor_id: visitorId, session_id: sessionId, sort: st.sort, limit: cfg.pageSize, offset: (st.page - 1) * cfg.pageSize };
    FILTERS.forEach(function (f) { params[f] = st[f]; });
    if (st.price) {
      var range = st.price.split("-");
      params.price_min = range[0].replace("+", "");
      if (range[1]) params.price_max = range[1];
    }
    if (cfg.explain) params.explain = "true";
    for (var k in extra) params[k] = extra[k];
    return params;
  }

  // ---- the widget ---------------------------------------------------------------------------
  function Widget(mount, resultsRoot) {
    var self = this, id = "vt" + (++uid);
    this.listId = id + "-list";
    this.input = el("input", {
      class: "vt-input", type: "search", name: "q", role: "combobox", autocomplete: "off", spellcheck: "false",
      "aria-autocomplete": "list", "aria-expanded": "false", "aria-controls": this.listId,
      "aria-label": cfg.placeholder, placeholder: cfg.placeholder, enterkeyhint: "search"
    });
    this.list = el("ul", { class: "vt-dropdown", id: this.listId, role: "listbox", "aria-label": "Suggestions", hidden: true });
    this.status = el("div", { class: "vt-sr", role: "status", "aria-live": "polite" });
    // A plain GET form: if anything below fails, submitting still reaches the results page.
    this.form = el("form", { class: "vt-form", role: "search", action: cfg.action, method: "get" }, [
      el("div", { class: "vt-box" }, [this.input,
        el("button", { class: "vt-submit", type: "submit", "aria-label": "Search" }, [el("span", { class: "vt-icon", "aria-hidden": "true" })])]),
      this.list, this.status
    ]);
    mount.appendChild(this.form);
    this.results = resultsRoot;
    this.options = [];
    this.active = -1;
    this.seq = 0;
    this.pageSeq = 0;
    this.timings = [];
    this.input.addEventListener("input", function () { guard(function () { self.onInput(); }); });
    this.input.addEventListener("keydown", function (e) { guard(function () { self.onKey(e); }); });
    this.input.addEventListener("blur", function () { setTimeout(function () { guard(function () { self.close(); }); }, 150); });
    this.form.addEventListener("submit", function (e) {
      if (!self.results) return; // the host's results page handles the GET
      try { e.preventDefault(); self.close(); self.runSearch({ q: self.input.value.trim() }, true); }
      catch (err) { report(err); self.form.submit(); }
    });
    addEventListener("popstate", function () { guard(function () { self.fromUrl(); }); });
  }

  Widget.prototype.onInput = function () {
    var self = this, q = this.input.value, started = performance.now();
    clearTimeout(this.debounceTimer);
    if (this.inflight) this.inflight.abort();
    if (!q.trim()) { this.close(); return; }
    this.debounceTimer = setTimeout(function () { self.fetchDropdown(q, started); }, cfg.debounce);
  };

  Widget.prototype.fetchDropdown = function (q, started) {
    var self = this, seq = ++this.seq, ctrl = window.AbortController ? new AbortController() : null;
    this.inflight = ctrl;
    var signal = ctrl && ctrl.signal;
    Promise.all([
      get("/suggest", { q: q, limit: 5 }, signal),
      get("/search", { q: q, limit: 4, visitor_id: visitorId, session_id: sessionId }, signal)
    ]).then(function (both) {
      if (seq !== self.seq || q !== self.input.value) return; // a newer keystroke owns the dropdown
      self.renderDropdown(both[0].suggestions, both[1]);
      self.timings.push(performance.now() - started);
      if (self.timings.length > 500) self.timings.shift();
    }).catch(function (err) { if (!err || err.name !== "AbortError") report(err); });
  };

  Widget.prototype.renderDropdown = function (suggestions, result) {
    var self = this, list = this.list;
    list.textContent = "";
    this.options = [];
    this.active = -1;
    this.input.removeAttribute("aria-activedescendant");
    var onPick = picked(result);
    function option(node, action) {
      node.id = self.listId + "-" + self.options.length;
      node.setAttribute("role", "option");
      node.setAttribute("aria-selected", "false");
      node.addEventListener("mousedown", function (e) { e.preventDefault(); });
      node.addEventListener("click", function (e) { e.preventDefault(); guard(action); });
      self.options.push({ node: node, action: action });
      list.appendChild(node);
    }
    if (result.corrected_query) {
      list.appendChild(el("li", { class: "vt-note", role: "presentation", text: "Showing results for “" + result.corrected_query + "”" }));
    }
    suggestions.forEach(function (s) {
      if (s.kind === "product") return;
      option(el("li", { class: "vt-suggestion", "data-kind": s.kind }, [
        el("span", { class: "vt-s-text", text: s.text }), s.kind !== "query" ? el("span", { class: "vt-s-kind", text: s.kind }) : null
      ]), function () {
        var st = { q: s.text };
        if (s.kind === "brand" || s.kind === "category") { st = { q: "" }; st[s.kind] = [s.text]; }
        self.input.value = st.q;
        self.close();
        self.submitState(st);
      });
    });
    if (result.hits.length) list.appendChild(el("li", { class: "vt-heading", role: "presentation", text: "Products" }));
    result.hits.forEach(function (hit, i) {
      var img = imageSrc(hit);
      option(el("li", { class: "vt-preview", "data-id": hit.id }, [
        img ? el("img", { class: "vt-thumb", src: img, alt: "", width: "48", height: "48" }) : null,
        el("span", { class: "vt-p-text" }, [el("span", { class: "vt-title", text: hit.title }),
          el("span", { class: "vt-meta" }, [el("span", { class: "vt-price", text: price(hit.price) }), sizeBadge(hit)])])
      ]), function () { onPick(hit, i); location.assign(productHref(hit)); });
    });
    if (result.total > result.hits.length) {
      option(el("li", { class: "vt-all", text: "See all " + result.total + " results" }), function () {
        self.close(); self.submitState({ q: self.input.value.trim() });
      });
    }
    if (!this.options.length) list.appendChild(el("li", { class: "vt-note", role: "presentation", text: "No match yet: keep typing or try another word" }));
    list.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this.status.textContent = result.total + " results";
  };

  Widget.prototype.submitState = function (st) {
    if (this.results) { this.runSearch(st, true); return; }
    var p = new URLSearchParams();
    if (st.q) p.set("q", st.q);
    FILTERS.forEach(function (f) { (st[f] || []).forEach(function (v) { p.append(f, v); }); });
    location.assign(cfg.action + "?" + p);
  };

  Widget.prototype.move = function (delta) {
    if (!this.options.length) return;
    if (this.active >= 0) this.options[this.active].node.setAttribute("aria-selected", "false");
    var n = this.options.length;
    this.active = this.active < 0 ? (delta > 0 ? 0 : n - 1) : (this.active + delta + n) % n;
    var node = this.options[this.active].node;
    node.setAttribute("aria-selected", "true");
    this.input.setAttribute("aria-activedescendant", node.id);
    if (node.scrollIntoView) node.scrollIntoView({ block: "nearest" });
  };

  Widget.prototype.onKey = function (e) {
    var open = !this.list.hidden;
    if (e.key === "ArrowDown") { e.preventDefault(); if (!open && this.input.value.trim()) this.onInput(); else this.move(1); }
    else if (e.key === "ArrowUp") { if (open) { e.preventDefault(); this.move(-1); } }
    else if (e.key === "Enter" && open && this.active >= 0) { e.preventDefault(); this.options[this.active].action(); }
    else if (e.key === "Escape") { if (open) { e.preventDefault(); this.close(); } else if (this.input.value) { e.preventDefault(); this.input.value = ""; } }
    else if (e.key === "Tab") this.close();
  };

  Widget.prototype.close = function () {
    this.list.hidden = true;
    this.active = -1;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  };

  // ---- the results page ---------------------------------------------------------------------
  Widget.prototype.fromUrl = function () {
    var st = readState();
    this.input.value = st.q;
    if (st.q || FILTERS.some(function (f) { return st[f].length; })) this.runSearch(st, false, true);
    else if (this.results) { this.results.textContent = ""; this.results.hidden = true; }
  };

  Widget.prototype.runSearch = function (partial, push, keepPage) {
    if (!this.results) return;
    var self = this, st = readState();
    for (var k in partial) st[k] = partial[k];
    if ("q" in partial && !partial.brand && !partial.category) FILTERS.forEach(function (f) { if (!(f in partial)) st[f] = []; });
    if (!keepPage && !("page" in partial)) st.page = 1;
    this.state = st;
    writeState(st, push);
    var seq = ++this.pageSeq;
    var calls = [get("/search", searchParams(st, {}))];
    if (cfg.compare && this.comparing) calls.push(get("/search", searchParams(st, { personalize: "false" })));
    this.results.setAttribute("aria-busy", "true");
    Promise.all(calls).then(function (res) {
      if (seq !== self.pageSeq) return;
      self.renderResults(st, res[0], res[1]);
    }).catch(function (err) {
      report(err);
      self.results.textContent = "";
      self.results.appendChild(el("p", { class: "vt-empty", role: "alert", text: "Search is unavailable right now. Please try again in a moment." }));
    }).then(function () { self.results.removeAttribute("aria-busy"); });
  };

  Widget.prototype.renderResults = function (st, result, plain) {
    var self = this, root = this.results;
    root.hidden = false;
    root.textContent = "";
    var heading = st.q ? "Results for “" + (result.corrected_query || st.q) + "”" : "All products";
    var header = el("div", { class: "vt-results-head" }, [
      el("h2", { class: "vt-results-title", tabindex: "-1", text: heading }),
      el("span", { class: "vt-count", text: result.total + (result.total === 1 ? " product" : " products") })
    ]);
    root.appendChild(header);
    if (result.corrected_query) {
      root.appendChild(el("p", { class: "vt-correction" }, ["Showing results for ", el("strong", { text: result.corrected_query }),
        ": nothing matched “" + st.q + "” as typed."]));
    } else if (result.relaxed) {
      root.appendChild(el("p", { class: "vt-correction", text: "No product matches every word; showing the closest matches." }));
    }
    var body = el("div", { class: "vt-results-body" });
    body.appendChild(this.facets(st, result));
    var main = el("div", { class: "vt-results-main" });
    main.appendChild(this.toolbar(st));
    if (!result.hits.length) main.appendChild(this.emptyState(st));
    else if (plain) {
      main.appendChild(el("div", { class: "vt-compare" }, [
        el("section", null, [el("h3", { text: "Personalized for you" }), this.grid(result)]),
        el("section", null, [el("h3", { text: "Without personalization" }), this.grid(plain)])
      ]));
    } else main.appendChild(this.grid(result));
    main.appendChild(this.pager(st, result));
    body.appendChild(main);
    root.appendChild(body);
    this.status.textContent = result.total + " results";
  };

  Widget.prototype.grid = function (result) {
    var onPick = picked(result), offset = (this.state.page - 1) * cfg.pageSize;
    return el("ul", { class: "vt-grid", "data-search-id": result.search_id },
      result.hits.map(function (hit, i) { return card(hit, result, offset + i, onPick); }));
  };

  Widget.prototype.toolbar = function (st) {
    var self = this, sortId = "vt-sort-" + uid;
    var select = el("select", { id: sortId, class: "vt-sort", onchange: function () { self.runSearch({ sort: select.value }, true); } },
      SORTS.map(function (s) { return el("option", { value: s[0], selected: s[0] === st.sort, text: s[1] }); }));
    var bar = el("div", { class: "vt-toolbar" }, [el("label", { for: sortId, text: "Sort by" }), select]);
    if (cfg.compare) {
      var box = el("input", { type: "checkbox", class: "vt-compare-toggle", checked: !!this.comparing,
        onchange: function () { self.comparing = box.checked; self.runSearch({}, false, true); } });
      bar.appendChild(el("label", { class: "vt-switch" }, [box, " Compare with unpersonalized"]));
    }
    return bar;
  };

  Widget.prototype.facets = function (st, result) {
    var self = this, panel = el("details", { class: "vt-facets", open: matchMedia("(min-width: 800px)").matches || null }, [
      el("summary", { text: "Filters" })]);
    ["category", "brand", "colour", "size", "price"].forEach(function (name) {
      var counts = result.facets[name] || {}, values = Object.keys(counts);
      var chosen = name === "price" ? (st.price ? [st.price] : []) : st[name];
      chosen.forEach(function (v) { if (values.indexOf(v) < 0) values.push(v); });
      if (!values.length) return;
      if (name !== "price" && name !== "size") values.sort(function (a, b) { return (counts[b] || 0) - (counts[a] || 0); });
      var fieldset = el("fieldset", { class: "vt-facet", "data-facet": name }, [el("legend", { text: FACET_LABELS[name] })]);
      values.slice(0, 12).forEach(function (value) {
        var on = chosen.indexOf(value) >= 0;
        var input = el("input", { type: "checkbox", value: value, checked: on, onchange: function () {
          var update = {};
          if (name === "price") update.price = input.checked ? value : "";
          else update[name] = input.checked ? st[name].concat([value]) : st[name].filter(function (v) { return v !== value; });
          self.runSearch(update, true);
        } });
        fieldset.appendChild(el("label", { class: "vt-option" }, [input,
          el("span", { text: name === "price" ? price(+value.split("-")[0].replace("+", "")) + (value.indexOf("+") > 0 ? "+" : " – " + price(+value.split("-")[1])) : value }),
          el("span", { class: "vt-n", text: String(counts[value] || 0) })]));
      });
      panel.appendChild(fieldset);
    });
    return panel;
  };

  Widget.prototype.pager = function (st, result) {
    var self = this, pages = Math.ceil(result.total / cfg.pageSize);
    if (pages <= 1) return el("span");
    function go(page) { return function () { self.runSearch({ page: page }, true); var t = self.results.querySelector(".vt-results-title"); if (t) t.focus(); }; }
    return el("nav", { class: "vt-pager", "aria-label": "Pages" }, [
      el("button", { type: "button", class: "vt-prev", disabled: st.page <= 1, onclick: go(st.page - 1), text: "Previous" }),
      el("span", { class: "vt-page", "aria-current": "page", text: "Page " + st.page + " of " + pages }),
      el("button", { type: "button", class: "vt-next", disabled: st.page >= pages, onclick: go(st.page + 1), text: "Next" })
    ]);
  };

  Widget.prototype.emptyState = function (st) {
    var self = this, filtered = FILTERS.some(function (f) { return st[f].length; }) || st.price;
    var tips = el("ul", null, [
      el("li", { text: "Check the spelling, or use fewer or more general words." }),
      el("li", { text: "Describe what it is rather than its name: “warm wool jumper”." })
    ]);
    var box = el("div", { class: "vt-empty" }, [el("h3", { text: "No products found" + (st.q ? " for “" + st.q + "”" : "") }), tips]);
    if (filtered) box.appendChild(el("button", { type: "button", class: "vt-clear", text: "Remove all filters",
      onclick: function () { var u = { price: "" }; FILTERS.forEach(function (f) { u[f] = []; }); self.runSearch(u, true); } }));
    return box;
  };

  // ---- start ----------------------------------------------------------------------------------
  function report(err) { if (window.console && console.warn) console.warn("Vitrine:", err && err.message ? err.message : err); }
  function guard(fn) { try { fn(); } catch (err) { report(err); } }

  var api = {
    version: "1",
    config: cfg,
    visitorId: visitorId,
    sessionId: sessionId,
    widgets: [],
    track: function (type, fields) { guard(function () { track(type, fields || {}); }); },
    flush: function () { return flush(false); },
    setSize: function (size) { var s = store("localStorage"); if (s) try { s.setItem("vitrine.size", size); } catch (e) { /* full */ } },
    size: visitorSize,
    get: get,
    price: price,
    // Keystroke-to-rendered-dropdown times in ms (the benchmark reads them).
    timings: function () { return api.widgets.reduce(function (all, w) { return all.concat(w.timings); }, []); }
  };
  window.Vitrine = api;

  function start() {
    guard(function () {
      var mount = cfg.target ? document.querySelector(cfg.target) : null;
      if (!mount) { mount = el("div", { class: "vitrine" }); script.parentNode.insertBefore(mount, script); }
      mount.classList.add("vitrine");
      var results = cfg.results ? document.querySelector(cfg.results) : null;
      if (results) results.classList.add("vitrine", "vt-results");
      var widget = new Widget(mount, results);
      api.widgets.push(widget);
      widget.fromUrl();
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
