// Sightline: small enhancements. Every page works without this file.
"use strict";

// Waterfall: collapse and expand the subtree under a span.
document.addEventListener("click", (event) => {
  const toggle = event.target.closest("button.toggle");
  if (!toggle) return;
  event.preventDefault();
  event.stopPropagation();
  const id = toggle.dataset.toggle;
  const collapsed = toggle.classList.toggle("collapsed");
  toggle.textContent = collapsed ? "▸" : "▾";
  toggle.setAttribute("aria-label", collapsed ? "expand subtree" : "collapse subtree");
  document.querySelectorAll("[data-ancestors]").forEach((row) => {
    const ancestors = " " + row.dataset.ancestors + " ";
    if (!ancestors.includes(" " + id + " ")) return;
    const hiddenBy = new Set((row.dataset.hiddenBy || "").split(" ").filter(Boolean));
    if (collapsed) hiddenBy.add(id); else hiddenBy.delete(id);
    row.dataset.hiddenBy = [...hiddenBy].join(" ");
    row.hidden = hiddenBy.size > 0;
  });
});

// Logs: live tail over server-sent events. Text goes in with textContent, never as HTML.
(() => {
  const button = document.getElementById("live-tail");
  if (!button) return;
  let source = null;
  const cell = (text, className) => {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  };
  const rows = document.getElementById("log-rows");
  button.addEventListener("click", () => {
    if (source) {
      source.close();
      source = null;
      button.textContent = "Live tail";
      button.classList.remove("on");
      return;
    }
    source = new EventSource(button.dataset.src);
    button.textContent = "Stop tail";
    button.classList.add("on");
    source.onmessage = (message) => {
      const log = JSON.parse(message.data);
      const tr = document.createElement("tr");
      tr.className = "log-row live";
      // The same cells and classes as the server's rows: the service's colour chip, the
      // level's colour, the body in its own cell.
      const service = document.createElement("td");
      const chip = document.createElement("span");
      chip.className = "svc";
      chip.textContent = log.service;
      if (log.color) chip.style.setProperty("--svc", log.color);
      service.appendChild(chip);
      tr.append(cell(log.time, "time"), service, cell(log.instance), cell(log.severity, "level " + (log.severity_class || "")), cell(log.body, "body"));
      const link = document.createElement("td");
      if (log.trace_href) {
        const a = document.createElement("a");
        a.href = log.trace_href;
        a.textContent = "trace";
        link.appendChild(a);
      }
      tr.appendChild(link);
      rows.prepend(tr);
      const empty = document.getElementById("no-match");
      if (empty) empty.hidden = true;
    };
  });
})();

// The window follows you: links to pages that show a time window (and to traces, whose
// links lead on) carry the current page's `range` or `from`/`to`, unless they set their own.
(() => {
  const here = new URLSearchParams(window.location.search);
  const keys = ["range", "from", "to"].filter((k) => here.get(k));
  if (keys.length === 0) return;
  const windowed = /^\/(map|errors|traces|logs|explore|services\/[^/]+|traces\/[0-9a-f]+)?$/;
  document.querySelectorAll('a[href^="/"]').forEach((a) => {
    const url = new URL(a.getAttribute("href"), window.location.origin);
    if (!windowed.test(url.pathname)) return;
    if (["range", "from", "to"].some((k) => url.searchParams.has(k))) return;
    keys.forEach((k) => url.searchParams.set(k, here.get(k)));
    a.setAttribute("href", url.pathname + url.search + url.hash);
  });
})();

// Post-mortem: print (the page's CSP allows no inline handler).
(() => {
  const print = document.getElementById("print-page");
  if (!print) return;
  print.addEventListener("click", (event) => {
    event.preventDefault();
    window.print();
  });
})();

// Charts: the values under the pointer, at once. Every point, bar and dot carries its value in
// an SVG <title> (which the browser shows after a delay, and which works without this file);
// this shows the titles of the points nearest the pointer in a tip beside it: on a line chart
// every line's value at that time, on a histogram the bar, on a scatter plot the nearest dot.
(() => {
  const tip = document.createElement("div");
  tip.className = "chart-tip";
  tip.id = "chart-tip";
  tip.hidden = true;
  tip.setAttribute("role", "status");
  document.body.appendChild(tip);
  const titled = (svg) => [...svg.querySelectorAll("circle.mark, circle.dot, rect.bar")]
    .map((el) => {
      const title = el.querySelector("title");
      if (!title) return null;
      const box = el.getBBox();
      return { x: box.x + box.width / 2, y: box.y + box.height / 2, text: title.textContent, bar: el.tagName === "rect" };
    })
    .filter(Boolean);
  document.querySelectorAll("figure.chart svg").forEach((svg) => {
    let points = null;
    svg.addEventListener("pointermove", (event) => {
      points = points || titled(svg);
      const matrix = svg.getScreenCTM();
      if (points.length === 0 || !matrix) return;
      const at = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
      const scatter = points.some((p) => !p.bar) && !svg.querySelector("polyline.line");
      const distance = (p) => scatter ? Math.hypot(p.x - at.x, p.y - at.y) : Math.abs(p.x - at.x);
      const nearest = points.reduce((best, p) => (distance(p) < distance(best) ? p : best));
      const shown = scatter ? [nearest] : points.filter((p) => Math.abs(p.x - nearest.x) < 0.5);
      tip.textContent = "";
      shown.forEach((p) => {
        const line = document.createElement("div");
        line.textContent = p.text;
        tip.appendChild(line);
      });
      tip.hidden = false;
      tip.style.left = `${event.pageX + 14}px`;
      tip.style.top = `${event.pageY + 14}px`;
    });
    svg.addEventListener("pointerleave", () => {
      tip.hidden = true;
    });
  });
})();

// Trace search: drag across the scatter plot to ask what is different about the spans in that
// region (started in its time range, lasting within its duration range). The plot's edges and
// what they stand for come from the server as data attributes; clicks on dots still open them.
(() => {
  const svg = document.querySelector("svg[data-region-href]");
  if (!svg) return;
  const d = svg.dataset;
  const [left, right, top, bottom] = [d.left, d.right, d.top, d.bottom].map(Number);
  const [start, end, max] = [BigInt(d.start), BigInt(d.end), Number(d.max)];
  const ns = "http://www.w3.org/2000/svg";
  const at = (event) => {
    const p = new DOMPoint(event.clientX, event.clientY).matrixTransform(svg.getScreenCTM().inverse());
    return { x: Math.min(Math.max(p.x, left), right), y: Math.min(Math.max(p.y, top), bottom) };
  };
  const timeAt = (x) => start + BigInt(Math.round(Number(end - start) * ((x - left) / (right - left))));
  const msAt = (y) => (max * (bottom - y)) / (bottom - top) / 1e6;
  let from = null;
  let box = null;
  svg.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || event.target.closest("a")) return;
    from = at(event);
    box = document.createElementNS(ns, "rect");
    box.setAttribute("class", "drag-region");
    svg.appendChild(box);
    svg.setPointerCapture(event.pointerId);
    event.preventDefault();
  });
  svg.addEventListener("pointermove", (event) => {
    if (!from) return;
    const p = at(event);
    box.setAttribute("x", Math.min(from.x, p.x));
    box.setAttribute("y", Math.min(from.y, p.y));
    box.setAttribute("width", Math.abs(p.x - from.x));
    box.setAttribute("height", Math.abs(p.y - from.y));
  });
  svg.addEventListener("pointerup", (event) => {
    if (!from) return;
    const p = at(event);
    const [a, b] = [from, p];
    from = null;
    if (Math.abs(a.x - b.x) < 4 || Math.abs(a.y - b.y) < 4) {
      box.remove();
      return;
    }
    const url = new URL(d.regionHref, window.location.origin);
    url.searchParams.set("sel_from", timeAt(Math.min(a.x, b.x)).toString());
    url.searchParams.set("sel_to", timeAt(Math.max(a.x, b.x)).toString());
    url.searchParams.set("min_ms", msAt(Math.max(a.y, b.y)).toFixed(1));
    url.searchParams.set("max_ms", msAt(Math.min(a.y, b.y)).toFixed(1));
    window.location.assign(url.toString());
  });
})();
