// The verify form with upload progress. Without this script the form posts normally
// and the server renders the same result page.
"use strict";
(function () {
  const form = document.getElementById("verify-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  const input = document.getElementById("file");
  const drop = document.getElementById("drop");
  const box = document.getElementById("progress-box");
  const bar = document.getElementById("progress");
  const words = document.getElementById("progress-words");

  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.files.length) {
      input.files = e.dataTransfer.files;
      form.requestSubmit();
    }
  });

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!input.files.length) return;
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    box.hidden = false;
    bar.value = 0;
    words.textContent = "Uploading…";
    xhr.upload.addEventListener("progress", (ev) => {
      if (ev.lengthComputable) {
        const pct = Math.round((100 * ev.loaded) / ev.total);
        bar.value = pct;
        bar.textContent = pct + "%";
        words.textContent = pct < 100 ? "Uploaded " + pct + "%" : "Checking the clip…";
      }
    });
    xhr.addEventListener("load", () => {
      const doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      const fresh = doc.getElementById("result");
      const here = document.getElementById("result");
      if (fresh && here) here.replaceChildren(...Array.from(fresh.childNodes));
      words.textContent = "Done.";
      const heading = document.getElementById("verdict-heading");
      if (heading) { heading.tabIndex = -1; heading.focus(); }
    });
    xhr.addEventListener("error", () => { words.textContent = "The upload failed. Try again."; });
    xhr.send(new FormData(form));
  });
})();
