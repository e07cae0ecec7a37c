// The sandbox certify page; templates/certify.html inlines this file (no external assets).
// It reads every value from data- attributes: nothing is interpolated into the script.
(function () {
  "use strict";
  var root = document.getElementById("certify");
  var statusEl = document.getElementById("status");
  var out = document.getElementById("verify-result");
  var buttons = Array.prototype.slice.call(document.querySelectorAll("button[data-outcome]"));
  function setStatus(text, isError) {
    statusEl.textContent = text;
    statusEl.className = isError ? "error" : "";
  }
  function choose(outcome) {
    var body = { outcome: outcome };
    if (outcome === "fail") body.subCode = document.getElementById("sub-code").value;
    if (outcome === "business_error") body.errorCode = document.getElementById("error-code").value;
    buttons.forEach(function (b) { b.disabled = true; });
    setStatus("提交中… Sending…", false);
    fetch(root.dataset.actionUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin"
    }).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (data) {
        if (!res.ok) {
          var msg = data && data.error && data.error.message ? data.error.message : "HTTP " + res.status;
          throw new Error(msg);
        }
        out.textContent = JSON.stringify(data, null, 2);
        root.dataset.done = outcome;
        setStatus("已完成：" + outcome + " · Done. The mini-program receives:", false);
      });
    }).catch(function (err) {
      buttons.forEach(function (b) { b.disabled = false; });
      setStatus("失败 Failed: " + err.message, true);
    });
  }
  buttons.forEach(function (b) {
    b.addEventListener("click", function () { choose(b.getAttribute("data-outcome")); });
  });
})();
