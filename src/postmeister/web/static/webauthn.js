// The WebAuthn ceremonies of the forms marked data-webauthn="register" (account page) and
// data-webauthn="login" (second-factor page): ask the server for the options (it keeps the
// challenge), call the browser's WebAuthn API, and post the answer in the form's hidden
// "credential" field. The options and the answer carry binary fields as base64url text,
// the browser API wants ArrayBuffers: hence the conversions. Without this script, or in a
// browser without WebAuthn, these forms stay hidden and the rest of each page works.
"use strict";
(() => {
  const bytes = (text) => {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  };
  const text = (buffer) => {
    let binary = "";
    for (const b of new Uint8Array(buffer)) binary += String.fromCharCode(b);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  const keys = (list) => (list || []).map((c) => ({ ...c, id: bytes(c.id) }));

  const create = async (options) => {
    const made = await navigator.credentials.create({ publicKey: {
      ...options, challenge: bytes(options.challenge),
      user: { ...options.user, id: bytes(options.user.id) },
      excludeCredentials: keys(options.excludeCredentials),
    } });
    return {
      id: made.id, rawId: text(made.rawId), type: made.type,
      authenticatorAttachment: made.authenticatorAttachment || null,
      clientExtensionResults: made.getClientExtensionResults(),
      response: {
        clientDataJSON: text(made.response.clientDataJSON),
        attestationObject: text(made.response.attestationObject),
        transports: made.response.getTransports ? made.response.getTransports() : [],
      },
    };
  };

  const get = async (options) => {
    const signed = await navigator.credentials.get({ publicKey: {
      ...options, challenge: bytes(options.challenge),
      allowCredentials: keys(options.allowCredentials),
    } });
    const handle = signed.response.userHandle;
    return {
      id: signed.id, rawId: text(signed.rawId), type: signed.type,
      authenticatorAttachment: signed.authenticatorAttachment || null,
      clientExtensionResults: signed.getClientExtensionResults(),
      response: {
        clientDataJSON: text(signed.response.clientDataJSON),
        authenticatorData: text(signed.response.authenticatorData),
        signature: text(signed.response.signature),
        userHandle: handle ? text(handle) : null,
      },
    };
  };

  document.addEventListener("DOMContentLoaded", () => {
    if (typeof window.PublicKeyCredential !== "function" || !navigator.credentials) return;
    for (const form of document.querySelectorAll("form[data-webauthn]")) {
      const area = form.closest("section") || document;
      for (const hint of area.querySelectorAll("[data-webauthn-unsupported]")) hint.hidden = true;
      const box = form.closest("[data-webauthn-box]");
      if (box) box.hidden = false;
      const failure = area.querySelector("[data-webauthn-error]");
      const button = form.querySelector("button[type=submit]");
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        if (failure) failure.hidden = true;
        button.disabled = true;
        try {
          const body = new FormData();
          body.append("csrf", form.elements.csrf.value);
          const asked = await fetch(form.dataset.optionsUrl, {
            method: "POST", body, credentials: "same-origin",
          });
          if (!asked.ok) throw new Error(`options: ${asked.status}`);
          const options = await asked.json();
          const answer = form.dataset.webauthn === "register" ? await create(options)
            : await get(options);
          form.elements.credential.value = JSON.stringify(answer);
          form.submit();  // a real navigation: the server answers with the next page
        } catch (error) {
          // Cancelled, timed out, or no fitting key: say so and let the person try again.
          if (failure) failure.hidden = false;
          button.disabled = false;
        }
      });
    }
  });
})();
