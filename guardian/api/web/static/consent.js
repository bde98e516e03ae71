// The consent page: record the statement, then each sentence, in the browser, then
// send the recordings (MediaRecorder's WebM/Opus) to Guardian for the checks.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const statement = $("step-text").textContent;
  const statementHint = $("step-hint").innerHTML;
  const sentences = Array.from($("sentences").querySelectorAll("li"), (li) => li.textContent);
  const steps = 1 + sentences.length; // step 0: the statement; then one per sentence
  const takes = new Array(steps).fill(null);
  let step = 0;
  let stream = null;
  let recorder = null;
  let chunks = [];
  let playbackUrl = null;

  function say(id, text) { $(id).textContent = text; }

  $("mic").addEventListener("click", async () => {
    try {
      // No echo cancellation, noise suppression or gain control: the checks need the
      // voice as it is.
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
    } catch (err) {
      say("mic-status", "The microphone is not available (" + err.name + "). Allow it in your browser's settings and try again.");
      return;
    }
    say("mic-status", "Microphone ready.");
    $("mic").disabled = true;
    $("recorder").hidden = false;
    show(0);
    $("record").focus();
  });

  function show(i) {
    step = i;
    if (i === 0) {
      say("step-title", "2. Read the statement");
      say("step-count", "The statement");
      $("step-text").textContent = statement;
      $("step-hint").innerHTML = statementHint;
    } else {
      say("step-title", "Read sentence " + i + " of " + sentences.length);
      say("step-count", "Sentence " + i + " of " + sentences.length + " (" + countDone() + " of " + steps + " recordings done)");
      $("step-text").textContent = sentences[i - 1];
      $("step-hint").textContent = "Read it aloud at your normal pace.";
    }
    $("back").disabled = i === 0;
    showTake();
  }

  function countDone() { return takes.filter((t) => t !== null).length; }

  function showTake() {
    const take = takes[step];
    if (playbackUrl) { URL.revokeObjectURL(playbackUrl); playbackUrl = null; }
    $("playback").hidden = $("playback-label").hidden = take === null;
    if (take !== null) {
      playbackUrl = URL.createObjectURL(take);
      $("playback").src = playbackUrl;
    }
    $("record").textContent = take === null ? "Start recording" : "Record again";
    $("next").disabled = take === null || step === steps - 1;
    $("next").textContent = "Next";
    say("rec-status", take === null ? "Not recorded yet." : "Recorded. Listen, record again, or go on.");
    $("send-form").hidden = countDone() < steps;
  }

  $("record").addEventListener("click", () => {
    chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.addEventListener("dataavailable", (e) => { if (e.data.size) chunks.push(e.data); });
    recorder.addEventListener("stop", () => {
      takes[step] = new Blob(chunks, { type: recorder.mimeType || "audio/webm" });
      showTake();
      $("record").disabled = false;
      $("stop").disabled = true;
      (step < steps - 1 ? $("next") : $("send")).focus();
    });
    recorder.start();
    $("record").disabled = true;
    $("stop").disabled = false;
    $("next").disabled = $("back").disabled = true;
    say("rec-status", "Recording… press Stop when you have finished reading.");
    $("stop").focus();
  });

  $("stop").addEventListener("click", () => { if (recorder && recorder.state !== "inactive") recorder.stop(); });
  $("next").addEventListener("click", () => { if (step < steps - 1) { show(step + 1); $("record").focus(); } });
  $("back").addEventListener("click", () => { if (step > 0) show(step - 1); });

  $("send-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if (countDone() < steps) return;
    const data = new FormData();
    data.append("csrf", $("csrf").value);
    data.append("consent", takes[0], "consent.webm");
    for (let i = 1; i < steps; i++) data.append("samples", takes[i], "sentence-" + i + ".webm");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", window.location.pathname.replace(/\/$/, "") + "/enroll");
    $("send").disabled = true;
    $("send-progress-box").hidden = false;
    xhr.upload.addEventListener("progress", (ev) => {
      if (ev.lengthComputable) {
        const pct = Math.round((100 * ev.loaded) / ev.total);
        $("send-progress").value = pct;
        say("send-status", pct < 100 ? "Uploaded " + pct + "%" : "Checking your recordings… this takes up to a minute.");
      }
    });
    xhr.addEventListener("load", () => outcome(xhr));
    xhr.addEventListener("error", () => { say("send-status", "Sending failed. Check your connection and try again."); $("send").disabled = false; });
    xhr.send(data);
  });

  function outcome(xhr) {
    let answer = null;
    try { answer = JSON.parse(xhr.responseText); } catch (err) { answer = null; }
    $("outcome").hidden = false;
    const list = $("checks");
    list.replaceChildren();
    if (!answer) {
      say("outcome-words", "The server could not answer. Try again later.");
      return;
    }
    for (const c of answer.checks || []) {
      const li = document.createElement("li");
      li.className = c.passed ? "passed" : "failed";
      li.textContent = c.title + ": " + c.words + (c.advice ? ". " + c.advice : "");
      list.appendChild(li);
    }
    if (answer.accepted) {
      say("send-status", "");
      say("outcome-words", "Your consent is recorded and your voice is enrolled.");
      $("token").textContent = answer.withdraw_token;
      const blob = new Blob([JSON.stringify(answer.record, null, 2)], { type: "application/json" });
      $("record-download").href = URL.createObjectURL(blob);
      $("accepted").hidden = false;
      $("recorder").hidden = true;
      $("send-form").hidden = true;
    } else {
      say("send-status", "");
      const problems = (answer.problems || []).join("; ");
      const checked = (answer.checks || []).length > 0;
      say("outcome-words", "Your voice was not enrolled and nothing was kept. " + problems + ". " +
        (checked ? "This link cannot be used again: ask the organisation for a new invitation."
                 : "Reload the page and try again."));
      if (!checked) $("send").disabled = false;
    }
    $("outcome-heading").tabIndex = -1;
    $("outcome-heading").focus();
  }
})();
