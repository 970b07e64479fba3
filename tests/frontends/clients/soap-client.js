// Drives the gateway through node-soap (npm "soap"), a SOAP client nobody here wrote, built
// from the gateway's own ?wsdl. tests/frontends/gateway_clients_test.py writes a script of
// calls to stdin and checks what comes back; this file only makes the calls.
//
// stdin:  {"base": "http://127.0.0.1:PORT/Remote/Services86/", "ns": "<service namespace>",
//          "soap": "1.1" | "1.2",
//          "calls": [{"service": "SoPrincipal" | "User", "op": "...", "args": {...},
//                     "ticket": "<name of a kept ticket>" | {"literal": "7T:..."},
//                     "appToken": "...", "keep": "<name to keep the issued ticket as>"}]}
//          In args, {"$date": "ISO"} is passed as a JS Date (node-soap's own way to send one).
// stdout: one JSON array, per call {"body", "header", "envelopeNs"} or {"fault"}, values as
//         node-soap parsed them (so their JSON types are node-soap's: numbers, booleans,
//         strings, dates as ISO strings).
'use strict';

const fs = require('fs');
const soap = require('soap');

function revive(value) {
  if (Array.isArray(value)) return value.map(revive);
  if (value && typeof value === 'object') {
    if (Object.keys(value).length === 1 && typeof value.$date === 'string') {
      return new Date(value.$date);
    }
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = revive(v);
    return out;
  }
  return value;
}

function envelopeNamespace(xml) {
  const m = /<([\w-]+):Envelope\b[^>]*\bxmlns:\1="([^"]+)"/.exec(xml || '');
  return m ? m[2] : null;
}

async function main() {
  const input = JSON.parse(fs.readFileSync(0, 'utf8'));
  const options = { forceSoap12Headers: input.soap === '1.2', disableCache: true };
  const clients = {};
  const tickets = {};
  const results = [];
  for (const call of input.calls) {
    if (!clients[call.service]) {
      clients[call.service] = await soap.createClientAsync(
          `${input.base}${call.service}.svc?wsdl`, options);
    }
    const client = clients[call.service];
    client.clearSoapHeaders();
    if (call.appToken !== undefined) {
      client.addSoapHeader({ ApplicationToken: call.appToken }, '', 'tns', input.ns);
    }
    if (call.ticket !== undefined) {
      const ticket = typeof call.ticket === 'string' ? tickets[call.ticket] : call.ticket.literal;
      client.addSoapHeader({ Credentials: { Ticket: ticket } }, '', 'tns', input.ns);
    }
    try {
      const [body, , header] = await client[`${call.op}Async`](revive(call.args || {}));
      if (call.keep && body && body.Credentials && body.Credentials.Ticket) {
        tickets[call.keep] = body.Credentials.Ticket;
      }
      results.push({ body, header, envelopeNs: envelopeNamespace(client.lastRequest) });
    } catch (e) {
      results.push({ fault: String(e && e.message || e) });
    }
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch((e) => {
  process.stderr.write(`node-soap driver: ${e && e.stack || e}\n`);
  process.exit(1);
});
