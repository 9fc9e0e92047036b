// The portal's only script: poll a payment's state, and submit the router's login form.
(function () {
  "use strict";
  var login = document.getElementById("login");
  if (login && login.getAttribute("data-autosubmit")) { login.submit(); return; }
  var p = document.getElementById("progress");
  if (!p) { return; }
  var url = p.getAttribute("data-state"), tries = 0;
  function poll() {
    tries += 1;
    var x = new XMLHttpRequest();
    x.open("GET", url);
    x.onload = function () {
      var s = null;
      try { s = JSON.parse(x.responseText); } catch (e) { s = null; }
      if (s && s.final) { window.location.reload(); return; }
      setTimeout(poll, tries < 30 ? 2000 : 5000);
    };
    x.onerror = function () { setTimeout(poll, 5000); };
    x.send();
  }
  setTimeout(poll, 1500);
}());
