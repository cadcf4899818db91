// Sign in: email and password; a notice when the previous session expired.
import { signIn } from "../api.mts";
import { announce, h, replace } from "../dom.mts";
import type { Dispose } from "../nav.mts";

export function renderSignIn(main: HTMLElement, notice: string, done: () => void): Dispose {
  const error = h("p", { class: "form-error", role: "alert", id: "signin-error" });
  const email = h("input", {
    id: "signin-email",
    name: "email",
    type: "email",
    autocomplete: "username",
    required: true,
    "aria-describedby": "signin-error",
  });
  const password = h("input", {
    id: "signin-password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
    "aria-describedby": "signin-error",
  });
  const submit = h("button", { type: "submit", class: "button primary" }, "Sign in");
  const form = h(
    "form",
    {
      class: "signin panel",
      "aria-labelledby": "signin-title",
      onsubmit: async (event: Event) => {
        event.preventDefault();
        error.textContent = "";
        submit.disabled = true;
        submit.textContent = "Signing in…";
        try {
          await signIn(email.value, password.value);
          announce("Signed in");
          done();
        } catch (exc) {
          error.textContent = (exc as Error).message;
          password.select();
        } finally {
          submit.disabled = false;
          submit.textContent = "Sign in";
        }
      },
    },
    h("h1", { id: "signin-title" }, "Sign in to Polyvision"),
    h("p", { class: "lede" }, "Your club's matches, streams and figures."),
    notice ? h("p", { class: "notice", role: "status" }, notice) : null,
    h("div", { class: "field" }, h("label", { for: "signin-email" }, "Email"), email),
    h("div", { class: "field" }, h("label", { for: "signin-password" }, "Password"), password),
    error,
    submit,
  );
  replace(main, h("div", { class: "signin-wrap" }, form));
  email.focus();
  return () => undefined;
}
