/*
 * The wallet sign-in page (views/wallet/present-page.eta): asks every two seconds whether the wallet
 * on another device has answered, and then continues to the sign-in. Without this script the page
 * works all the same: its "continue" link does what this does.
 */
(function () {
  'use strict';
  var section = document.querySelector('[data-wallet-poll]');
  if (!section || !window.fetch) return;
  var status = section.querySelector('[data-wallet-status]');
  var url = section.getAttribute('data-wallet-poll');
  var next = section.getAttribute('data-wallet-continue');
  var tries = 0;
  function poll() {
    tries += 1;
    if (tries > 150) return;
    fetch(url, { headers: { accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (res) { return res.ok ? res.json() : { status: 'gone' }; })
      .then(function (body) {
        if (body.status === 'ready') {
          if (status) status.textContent = status.getAttribute('data-ready');
          window.location.assign(next);
        } else if (body.status === 'gone') {
          if (status) status.textContent = status.getAttribute('data-gone');
        } else {
          window.setTimeout(poll, 2000);
        }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 2000);
})();
