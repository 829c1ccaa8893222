// The clinician web interface's own script: NHS.UK frontend components, and the NHS number checked
// as it is typed (the server checks it again: this only helps). Loaded as a module from our origin
// (the Content-Security-Policy allows scripts from 'self' only, never inline).
document.body.classList.add("js-enabled");
if ("noModule" in HTMLScriptElement.prototype) {
  document.body.classList.add("nhsuk-frontend-supported");
}

try {
  const nhsuk = await import("../static/nhsuk/nhsuk-frontend.min.js");
  nhsuk.initAll();
} catch (error) {
  // The NHS.UK assets are not built (scripts/setup-venv builds them): the pages work without them.
}

const WEIGHTS = [10, 9, 8, 7, 6, 5, 4, 3, 2];

/** The problem with what was typed, or "" when it is a valid NHS number (Modulus 11). */
export function nhsNumberProblem(typed, complete) {
  const value = typed.replace(/ /g, "");
  if (value === "") return complete ? "Enter the patient's NHS number" : "";
  if (!/^[0-9]*$/.test(value)) return "NHS number must contain only digits and spaces";
  if (value.length > 10) return "NHS number must be 10 digits";
  if (value.length < 10) return complete ? "NHS number must be 10 digits" : "";
  const total = WEIGHTS.reduce((sum, weight, i) => sum + weight * Number(value[i]), 0);
  let check = 11 - (total % 11);
  if (check === 11) check = 0;
  if (check === 10 || check !== Number(value[9])) return "Enter a valid NHS number: this one's check digit is wrong";
  return "";
}

for (const input of document.querySelectorAll("[data-nhs-number]")) {
  const group = input.closest("[data-nhs-number-group]");
  const message = group.querySelector("[data-nhs-number-error]");
  const text = group.querySelector("[data-nhs-number-error-text]");
  const show = (problem) => {
    message.hidden = problem === "";
    text.textContent = problem;
    group.classList.toggle("nhsuk-form-group--error", problem !== "");
    input.classList.toggle("nhsuk-input--error", problem !== "");
  };
  input.addEventListener("input", () => show(nhsNumberProblem(input.value, false)));
  input.addEventListener("blur", () => {
    if (input.value !== "") show(nhsNumberProblem(input.value, true));
  });
  input.form.addEventListener("submit", (event) => {
    const problem = nhsNumberProblem(input.value, true);
    if (problem !== "") {
      event.preventDefault();
      show(problem);
      input.focus();
    }
  });
}

// The idle time-out. The server ends a session after this many seconds without a request; the page
// warns two minutes before (or half-way, for short limits), and when the time has passed it hides
// everything on the page (patient information included) and says the person has been signed out.
const idleSeconds = Number(document.body.dataset.idleSeconds || 0);
if (idleSeconds > 0) {
  const base = document.body.dataset.base;
  const main = document.querySelector("main");
  const minutes = (seconds) => `${Math.round(seconds / 60)} minute${Math.round(seconds / 60) === 1 ? "" : "s"}`;
  const warnAfter = Math.max(idleSeconds - 120, idleSeconds / 2);
  let timers = [];
  let warning = null;

  const signedOut = () => {
    warning = null;
    for (const hidden of document.querySelectorAll("[data-patient-data], .nhsuk-header__account, .nhsuk-back-link")) {
      hidden.remove();
    }
    document.title = `You have been signed out - ${document.title.split(" - ").at(-1)}`;
    main.innerHTML = `<div class="nhsuk-grid-row"><div class="nhsuk-grid-column-two-thirds">
      <h1 data-testid="idle-signed-out">You have been signed out</h1>
      <p>You did nothing for ${minutes(idleSeconds)}, so the information on this page has been hidden and your
      session has ended. Sign in again to continue.</p>
      <a class="nhsuk-button" href="${base}/">Sign in again</a></div></div>`;
  };

  const warn = () => {
    warning = document.createElement("div");
    warning.className = "nhsuk-warning-callout";
    warning.dataset.testid = "idle-warning";
    warning.setAttribute("role", "alert");
    warning.innerHTML = `<h2 class="nhsuk-warning-callout__label"><span role="text"><span
      class="nhsuk-u-visually-hidden">Important: </span>You will be signed out soon</span></h2>
      <p>You have not done anything for a while. To protect patient information you will be signed out in
      ${minutes(idleSeconds - warnAfter)}.</p>
      <button class="nhsuk-button nhsuk-button--secondary" type="button">Stay signed in</button>`;
    warning.querySelector("button").addEventListener("click", async () => {
      const answer = await fetch(`${base}/`, { credentials: "same-origin", cache: "no-store" });
      if (answer.ok && (await answer.text()).includes("data-testid=\"signed-in-user\"")) start();
      else signedOut();
    });
    main.prepend(warning);
    warning.querySelector("button").focus();
  };

  const start = () => {
    for (const timer of timers) clearTimeout(timer);
    warning?.remove();
    warning = null;
    timers = [setTimeout(warn, warnAfter * 1000), setTimeout(signedOut, idleSeconds * 1000)];
  };
  start();
}
