// streamdrift status page: redraws the page's <main> when the monitor has news (a window
// closed, an alert arrived). Served by the monitor itself; no library, no network beyond it.
(function () {
  "use strict";
  var main = document.querySelector("main");
  var version = main ? main.getAttribute("data-version") : null;
  var busy = false;

  function bindSelects() {
    document.querySelectorAll("select[data-param]").forEach(function (sel) {
      sel.addEventListener("change", function () {
        var q = new URLSearchParams(window.location.search);
        q.set(sel.getAttribute("data-param"), sel.value);
        window.location.search = q.toString();
      });
    });
  }

  function poll() {
    if (busy || !main) { return; }
    busy = true;
    fetch("/status/version", { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (v) {
        if (!v || String(v.version) === version) { return null; }
        return fetch("/status/main" + window.location.search, { cache: "no-store" })
          .then(function (r) { return r.ok ? r.text() : null; })
          .then(function (html) {
            if (html === null) { return; }
            main.innerHTML = html;
            var stamp = main.querySelector("[data-version]");
            version = stamp ? stamp.getAttribute("data-version") : String(v.version);
            main.setAttribute("data-version", version);
            bindSelects();
          });
      })
      .catch(function () { /* the monitor restarting: try again next tick */ })
      .then(function () { busy = false; });
  }

  bindSelects();
  window.setInterval(poll, 2000);
})();
