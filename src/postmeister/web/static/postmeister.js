// Progressive enhancement only: every form works without this file.
// As a new password is typed, ask the server which policy rules it breaks (POST, so the
// password is never part of a URL) and mark each rule in the list by name.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-check-url]")) {
    const input = form.querySelector("input[name=password]");
    const list = form.querySelector(".rules");
    if (!input || !list) continue;
    let timer = null;
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        if (!input.value) { list.hidden = true; return; }
        const body = new FormData();
        body.append("csrf", form.querySelector("input[name=csrf]").value);
        body.append("password", input.value);
        const response = await fetch(form.dataset.checkUrl, {
          method: "POST", body, credentials: "same-origin",
        });
        if (!response.ok) return;
        const failed = new Set((await response.json()).failed);
        for (const item of list.querySelectorAll("li[data-rule]")) {
          const broken = failed.has(item.dataset.rule);
          item.classList.toggle("failed", broken);
          item.classList.toggle("passed", !broken);
        }
        list.hidden = false;
      }, 250);
    });
  }
});
