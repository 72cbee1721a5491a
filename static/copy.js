/*
 * Copy buttons beside the shortened ids of the administration console (views/admin/_id.eta). The
 * buttons stay hidden without this script or without the Clipboard API; the whole id is in the
 * page either way. The result is announced in the console's status region.
 */
(function () {
  'use strict';
  if (!navigator.clipboard || !window.isSecureContext) return;
  var status = document.getElementById('copy-status');
  document.querySelectorAll('button[data-copy]').forEach(function (button) {
    button.hidden = false;
    button.addEventListener('click', function () {
      navigator.clipboard.writeText(button.getAttribute('data-copy')).then(
        function () {
          if (status) status.textContent = status.getAttribute('data-copied');
        },
        function () {
          if (status) status.textContent = status.getAttribute('data-failed');
        },
      );
    });
  });
})();
