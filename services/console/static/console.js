// The console's only script (no build chain): table search and paging, the Annex 3 draft kept in the
// browser until the server confirms the submission, and QR scanning at the door where the browser can.
"use strict";

function pageTable(table, filter) {
  const size = parseInt(table.dataset.pageSize || "0", 10);
  const rows = Array.from(table.tBodies[0].rows);
  let page = 0;
  let nav = table.nextElementSibling && table.nextElementSibling.classList.contains("pages") ? table.nextElementSibling : null;
  function draw() {
    const q = (filter && filter.value || "").trim().toLowerCase();
    const hits = rows.filter((r) => !q || r.textContent.toLowerCase().includes(q));
    const pages = size ? Math.max(1, Math.ceil(hits.length / size)) : 1;
    page = Math.min(page, pages - 1);
    rows.forEach((r) => { r.hidden = true; });
    hits.forEach((r, i) => { r.hidden = size ? Math.floor(i / size) !== page : false; });
    if (!size) return;
    if (!nav) { nav = document.createElement("div"); nav.className = "pages"; table.after(nav); }
    nav.innerHTML = "";
    if (pages > 1) {
      const prev = Object.assign(document.createElement("button"), { type: "button", textContent: "上一页", disabled: page === 0 });
      const next = Object.assign(document.createElement("button"), { type: "button", textContent: "下一页", disabled: page >= pages - 1 });
      prev.onclick = () => { page -= 1; draw(); };
      next.onclick = () => { page += 1; draw(); };
      nav.append(prev, ` 第 ${page + 1} / ${pages} 页 `, next);
    }
  }
  if (filter) filter.addEventListener("input", () => { page = 0; draw(); });
  draw();
}

function keepDraft(form) {
  const key = "bjsv-draft:" + form.dataset.draft;
  const saved = JSON.parse(localStorage.getItem(key) || "null");
  const serverFilled = Array.from(form.elements).some((el) => el.type === "radio" && el.checked);
  if (saved && !serverFilled) {
    for (const [name, value] of Object.entries(saved)) {
      const els = form.elements.namedItem(name);
      if (!els || name === "csrf") continue;
      if (els instanceof RadioNodeList) { els.forEach((el) => { el.checked = el.value === value; }); }
      else if (els.type !== "hidden" || name === "client_request_id") { els.value = value; }
    }
  }
  const save = () => {
    const data = {};
    new FormData(form).forEach((v, k) => { if (k !== "csrf") data[k] = v; });
    localStorage.setItem(key, JSON.stringify(data));
  };
  form.addEventListener("input", save);
  form.addEventListener("change", save);
  save();
}

function remarkOnNo(form) {
  // Annex 3: a 否 needs a remark. Shown beside the field before the form leaves the phone; the server
  // checks it again (D11).
  form.addEventListener("submit", (event) => {
    let first = null;
    form.querySelectorAll(".error:not(.client)").forEach((old) => { if (old.id.startsWith("err-remark_")) old.remove(); });
    form.querySelectorAll("input[data-remark-for]").forEach((remark) => {
      const item = remark.dataset.remarkFor;
      const chosen = form.querySelector(`input[name="${item}"]:checked`);
      let msg = remark.parentElement.querySelector(".error.client");
      const missing = chosen && chosen.value === "NO" && !remark.value.trim();
      if (missing && !msg) {
        msg = Object.assign(document.createElement("span"), { className: "error client", id: `err-${remark.id}` });
        msg.setAttribute("role", "alert");
        msg.textContent = `第${item.slice(5)}项选“否”时须在备注中说明情况`;
        remark.after(msg);
      } else if (!missing && msg) { msg.remove(); }
      if (missing && !first) first = remark;
    });
    if (first) { event.preventDefault(); event.stopImmediatePropagation(); first.focus(); }
  });
}

function scanner() {
  const button = document.getElementById("scan");
  if (!button || !("BarcodeDetector" in window) || !navigator.mediaDevices) return;
  button.hidden = false;
  button.onclick = async () => {
    const video = document.getElementById("camera");
    const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    video.srcObject = stream; video.hidden = false; await video.play();
    const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    const tick = async () => {
      const codes = await detector.detect(video);
      if (codes.length) {
        stream.getTracks().forEach((t) => t.stop());
        const payload = codes[0].rawValue;
        const code = (payload.match(/[0-9A-Z]{8,}/) || [payload])[0];
        document.getElementById("code").value = code;
        document.getElementById("badge-form").submit();
      } else { requestAnimationFrame(tick); }
    };
    tick();
  };
}

function busyOnSubmit(form) {
  // Long work (a draw, a PDF being rendered): the button says so and cannot be pressed twice.
  form.addEventListener("submit", () => {
    const button = form.querySelector("button[type=submit]");
    if (!button) return;
    setTimeout(() => { button.disabled = true; button.textContent = "正在处理…"; button.setAttribute("aria-busy", "true"); }, 0);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-draft]").forEach(remarkOnNo);
  document.querySelectorAll("main form[method=post]").forEach(busyOnSubmit);
  document.querySelectorAll("table[data-page-size]").forEach((t) => {
    pageTable(t, document.querySelector(`input[data-filter="${t.id}"]`));
  });
  document.querySelectorAll("form[data-draft]").forEach(keepDraft);
  document.querySelectorAll("[data-clear-draft]").forEach((el) => localStorage.removeItem("bjsv-draft:" + el.dataset.clearDraft));
  scanner();
});
