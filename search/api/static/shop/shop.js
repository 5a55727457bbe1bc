/* The demo shop's own behaviour: cart, product page, recently viewed. It uses the widget's
 * public API (window.Vitrine) for events and API calls, as a merchant's theme would. */
(function () {
  "use strict";
  var V = window.Vitrine;
  if (!V) return;
  var CART = "shop.cart";

  function cart() { try { return JSON.parse(localStorage.getItem(CART) || "[]"); } catch (e) { return []; } }
  function saveCart(lines) { localStorage.setItem(CART, JSON.stringify(lines)); showCount(); }
  function showCount() {
    var n = cart().length;
    document.querySelectorAll(".cart-count").forEach(function (c) { c.textContent = String(n); });
  }
  function h(tag, cls, text) { var n = document.createElement(tag); if (cls) n.className = cls; if (text != null) n.textContent = text; return n; }
  function card(hit) {
    var li = h("li", "vt-card"), a = h("a", "vt-card-link"), img = h("img", "vt-img");
    li.dataset.id = hit.id;
    li.dataset.sizes = hit.available_sizes.join(" ");
    a.href = "/shop/products/" + encodeURIComponent(hit.id);
    img.src = "/shop/img/" + encodeURIComponent(hit.id) + ".svg"; img.alt = ""; img.width = 240; img.height = 240; img.loading = "lazy";
    a.appendChild(img); a.appendChild(h("span", "vt-title", hit.title));
    var meta = h("span", "vt-meta");
    meta.appendChild(h("span", "vt-price", V.price(hit.price)));
    if (hit.available_sizes.length) meta.appendChild(h("span", "vt-badge vt-in", "Sizes " + hit.available_sizes.join(", ")));
    li.appendChild(a); li.appendChild(meta);
    return li;
  }
  function fillList(section, hits) {
    var list = section.querySelector("ul");
    list.textContent = "";
    hits.forEach(function (hit) { list.appendChild(card(hit)); });
    section.hidden = !hits.length;
  }

  // ---- home: recently viewed ----
  var recent = document.getElementById("recent");
  if (recent) {
    V.get("/visitors/" + encodeURIComponent(V.visitorId) + "/recent", { limit: 8 })
      .then(function (r) { fillList(recent, r.products); })
      .catch(function () { recent.hidden = true; });
  }

  // ---- product page ----
  var product = document.getElementById("product");
  if (product) {
    var id = product.dataset.id, add = document.getElementById("add-to-cart"), note = document.getElementById("stock-note");
    var similar = document.getElementById("similar"), radios = product.querySelectorAll("input[name=size]");
    var title = product.querySelector("h1").textContent, priceValue = parseFloat(product.querySelector(".product-price").dataset.price);
    V.track("view", { product_id: id });

    var showSimilar = function (size) {
      var params = { visitor_id: V.visitorId, limit: 8 };
      if (size) params.size = size;
      document.getElementById("similar-title").textContent = size
        ? "Similar products in stock in size " + size : "Similar products in stock";
      V.get("/products/" + encodeURIComponent(id) + "/similar", params)
        .then(function (r) { fillList(similar, r.products); })
        .catch(function () { similar.hidden = true; });
    };
    var choose = function (radio) {
      var out = radio.dataset.stock === "0";
      add.disabled = out;
      add.textContent = "Add to cart";
      note.textContent = out ? "Size " + radio.value + " is sold out: here are similar products you can have in " + radio.value + "." : "In stock in " + radio.value + ".";
      if (out) showSimilar(radio.value); else similar.hidden = true;
    };
    radios.forEach(function (r) { r.addEventListener("change", function () { choose(r); }); });
    var mine = V.size();
    var preset = Array.prototype.filter.call(radios, function (r) { return r.value === mine; })[0];
    if (preset) { preset.checked = true; choose(preset); }
    else if (product.dataset.inStock === "false") showSimilar(mine);
    else if (radios.length) add.disabled = false;

    add.addEventListener("click", function () {
      var chosen = product.querySelector("input[name=size]:checked");
      if (radios.length && !chosen) { note.textContent = "Choose a size first."; return; }
      var line = { id: id, title: title, price: priceValue, size: chosen ? chosen.value : null, sku: chosen ? chosen.dataset.sku : null };
      saveCart(cart().concat([line]));
      V.track("add_to_cart", { product_id: id, variant_sku: line.sku });
      if (line.size) V.setSize(line.size);
      add.textContent = "Added to cart ✓";
    });
  }

  // ---- cart page ----
  var lines = document.getElementById("cart-lines");
  if (lines) {
    var render = function () {
      var items = cart(), total = 0;
      lines.textContent = "";
      items.forEach(function (line, i) {
        var li = h("li", "cart-line"), a = h("a", null, line.title), remove = h("button", "btn small", "Remove");
        a.href = "/shop/products/" + encodeURIComponent(line.id);
        li.appendChild(a);
        li.appendChild(h("span", "muted", line.size ? "Size " + line.size : ""));
        li.appendChild(h("span", "vt-price", V.price(line.price)));
        remove.type = "button";
        remove.addEventListener("click", function () { var all = cart(); all.splice(i, 1); saveCart(all); render(); });
        li.appendChild(remove);
        lines.appendChild(li);
        total += line.price || 0;
      });
      document.getElementById("cart-empty").hidden = items.length > 0;
      var t = document.getElementById("cart-total"), checkout = document.getElementById("checkout");
      t.hidden = checkout.hidden = !items.length;
      t.textContent = "Total " + V.price(total);
    };
    document.getElementById("checkout").addEventListener("click", function () {
      cart().forEach(function (line) { V.track("purchase", { product_id: line.id, variant_sku: line.sku, value: line.price }); });
      V.flush();
      saveCart([]);
      render();
      document.getElementById("order-done").textContent = "Thank you! Your order is placed (a demo: nothing ships).";
    });
    render();
  }
  showCount();
})();
