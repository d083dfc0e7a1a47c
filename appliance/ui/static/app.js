// amtedge UI: the one script of our own. Pages work without it; it only handles what htmx cannot decide alone.
// (No inline script anywhere: the Content-Security-Policy allows scripts from this box's /static only.)
(function () {
  'use strict';
  // When the session has ended, a live update (polling, a form sent with htmx) is redirected to the sign-in page.
  // Swapping that page into a dashboard tile would be confusing: go to the sign-in page instead, and come back
  // here afterwards.
  document.addEventListener('htmx:beforeSwap', function (e) {
    var xhr = e.detail && e.detail.xhr;
    if (!xhr || !xhr.responseURL) {
      return;
    }
    if (new URL(xhr.responseURL).pathname === '/login') {
      e.detail.shouldSwap = false;
      window.location.assign('/login?next=' + encodeURIComponent(location.pathname + location.search));
    }
  });
})();
