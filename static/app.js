// plugd's demo script, used by /static/test.html and by the hello plugin's page at /.
// It proves scripts run: on load it writes "JS-RAN" into #out, followed by what the page loaded
// (the body's computed background colour from style.css, the logo's natural size), so a headless
// browser can check all three from the DOM.
window.addEventListener("load", function () {
  var out = document.getElementById("out");
  if (!out) {
    return;
  }
  var text = "JS-RAN bg=" + getComputedStyle(document.body).backgroundColor;
  var img = document.querySelector("img");
  if (img) {
    text += " img=" + img.naturalWidth + "x" + img.naturalHeight;
  }
  out.textContent = text;
});
