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
