/* Kapija WebAuthn ceremonies: buttons marked data-webauthn="passkey|login|register" fetch options
   from the server, run the browser ceremony with SimpleWebAuthn, post the result and follow the
   location the server answers. Everything else on the page works without JavaScript. */
(function () {
  'use strict';
  var lib = window.SimpleWebAuthnBrowser;
  var sections = document.querySelectorAll('[data-webauthn-section]');
  var supported = lib && lib.browserSupportsWebAuthn();
  document.querySelectorAll('[data-webauthn-nojs]').forEach(function (el) { el.hidden = true; });
  if (!supported) {
    document.querySelectorAll('[data-webauthn-unsupported]').forEach(function (el) { el.hidden = false; });
    return;
  }
  sections.forEach(function (el) { el.hidden = false; });

  function post(url, csrf, body) {
    return fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': csrf },
      body: JSON.stringify(body),
    }).then(function (res) {
      return res.json().then(function (json) {
        // A change that needs a fresh sign-in: go and sign in, then come back.
        if (res.status === 401 && json.location) { window.location.assign(json.location); return new Promise(function () {}); }
        if (!res.ok) throw new Error(json.error_description || json.error || String(res.status));
        return json;
      });
    });
  }

  document.querySelectorAll('button[data-webauthn]').forEach(function (button) {
    var purpose = button.getAttribute('data-webauthn');
    var errorBox = button.parentElement.querySelector('[data-webauthn-error]');
    button.addEventListener('click', function () {
      var csrf = button.getAttribute('data-csrf');
      button.disabled = true;
      if (errorBox) errorBox.hidden = true;
      post(button.getAttribute('data-options-url'), csrf, { purpose: purpose })
        .then(function (options) {
          return purpose === 'register'
            ? lib.startRegistration({ optionsJSON: options })
            : lib.startAuthentication({ optionsJSON: options });
        })
        .then(function (response) {
          return post(button.getAttribute('data-verify-url'), csrf, { response: response, name: navigator.platform || 'Security key' });
        })
        .then(function (result) { window.location.assign(result.location); })
        .catch(function (err) {
          button.disabled = false;
          // The server's and the browser's messages are technical; show the page's own, translated one.
          if (errorBox) { errorBox.textContent = button.getAttribute('data-error') || String(err); errorBox.hidden = false; }
        });
    });
  });
})();
