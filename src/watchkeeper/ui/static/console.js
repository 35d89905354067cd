// Draws every chart of the page from the JSON beside it; a click on a point with a link opens it.
(function () {
  function draw(root) {
    (root || document).querySelectorAll("[data-chart]").forEach(function (div) {
      if (div.dataset.drawn) { return; }
      var spec = document.getElementById(div.dataset.chart);
      if (!spec || typeof Plotly === "undefined") { return; }
      var fig = JSON.parse(spec.textContent);
      div.dataset.drawn = "1";
      Plotly.newPlot(div, fig.data, fig.layout, {displaylogo: false, responsive: true});
      div.on("plotly_click", function (event) {
        var point = event.points && event.points[0];
        if (point && typeof point.customdata === "string" && point.customdata.charAt(0) === "/") {
          window.location.href = point.customdata;
        }
      });
    });
  }
  function toggleAll(box) {
    document.querySelectorAll("input[name=ids]").forEach(function (c) { c.checked = box.checked; });
  }
  document.addEventListener("DOMContentLoaded", function () {
    draw(document);
    var all = document.getElementById("select-all");
    if (all) { all.addEventListener("change", function () { toggleAll(all); }); }
  });
  document.addEventListener("htmx:afterSwap", function (event) { draw(event.target); });
})();
