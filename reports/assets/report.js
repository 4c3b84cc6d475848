// Draws every figure of the report and records the outcome on #report-status:
// data-expected / data-drawn / data-failed counts, data-errors (a JSON list of messages),
// data-done once every figure has either drawn or failed. A figure counts as drawn only when
// Plotly.newPlot resolved and left an <svg class="main-svg"> in its div.
(function () {
  "use strict";
  var status = document.getElementById("report-status");
  var divs = document.querySelectorAll("div.figure[data-figure]");
  var state = { expected: divs.length, drawn: 0, failed: 0 };
  var errors = window.reportErrors;

  function publish() {
    var settled = state.drawn + state.failed === state.expected;
    status.setAttribute("data-expected", String(state.expected));
    status.setAttribute("data-drawn", String(state.drawn));
    status.setAttribute("data-failed", String(state.failed));
    status.setAttribute("data-errors", JSON.stringify(errors));
    status.setAttribute("data-done", settled ? "true" : "false");
    status.className = errors.length || state.failed ? "status bad" : "status";
    status.textContent = settled && !errors.length && !state.failed
      ? ""
      : state.drawn + " of " + state.expected + " figures drawn" +
        (state.failed ? ", " + state.failed + " failed" : "") +
        (errors.length ? "; errors: " + errors.join("; ") : "");
  }
  // Later errors (inside plotly callbacks, say) still reach the marker.
  window.addEventListener("error", function () { publish(); });
  window.addEventListener("unhandledrejection", function (e) {
    errors.push("unhandled rejection: " + String(e.reason && e.reason.message || e.reason));
    publish();
  });

  function fail(div, err) {
    var message = div.id + ": " + String(err && err.message || err);
    state.failed += 1;
    errors.push(message);
    div.setAttribute("data-drawn", "failed");
    div.className += " failed";
    div.textContent = "This figure could not be drawn: " + message;
    publish();
  }

  if (typeof Plotly === "undefined") {
    errors.push("plotly.js is missing: no figure can be drawn");
    publish();
    return;
  }
  var template = JSON.parse(document.getElementById("plotly-template").textContent);
  var config = JSON.parse(document.getElementById("plotly-config").textContent);
  Array.prototype.forEach.call(divs, function (div) {
    try {
      var spec = JSON.parse(document.getElementById(div.id + "-spec").textContent);
      if (!Array.isArray(spec.data) || typeof spec.layout !== "object" || spec.layout === null) {
        throw new Error("figure spec has no data list or no layout");
      }
      spec.layout.template = template;
      Plotly.newPlot(div, spec.data, spec.layout, config).then(function () {
        if (!div.querySelector("svg.main-svg")) {
          fail(div, new Error("Plotly.newPlot resolved but drew no <svg class=main-svg>"));
          return;
        }
        div.setAttribute("data-drawn", "true");
        state.drawn += 1;
        publish();
      }, function (err) { fail(div, err); });
    } catch (err) {
      fail(div, err);
    }
  });
  publish();
})();
