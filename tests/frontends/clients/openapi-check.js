// Validates real gateway responses against docs/openapi.json with Ajv and ajv-formats, the
// JSON Schema validator typed OpenAPI tool chains rely on, formats checked (date-time is
// RFC 3339: an offset is required). tests/frontends/rest_openapi_test.py makes the calls and
// hands them over; this file only judges them.
//
// stdin:  {"openapi": "<path of openapi.json>",
//          "responses": [{"name", "path", "method", "status", "contentType", "body"}]}
//          (path as in the document's "paths"; body: the parsed JSON, or null when empty)
// stdout: [{"name", "errors": [...]}] - an empty list when the response is what the
//         document declares for that operation, status and content type.
'use strict';

const fs = require('fs');
const Ajv = require('ajv');
const addFormats = require('ajv-formats');

const input = JSON.parse(fs.readFileSync(0, 'utf8'));
const doc = JSON.parse(fs.readFileSync(input.openapi, 'utf8'));

// OpenAPI 3.0 schemas are JSON Schema plus "nullable" (Ajv knows it) and annotations such as
// "xml" and "example" (not validation keywords: strict mode off so they are ignored).
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(doc, 'openapi.json');

function escape(token) {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

function at(pointer) {
  return pointer.split('/').slice(1).reduce(
      (node, t) => node && node[t.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
}

function check(r) {
  const errors = [];
  const operation = (doc.paths[r.path] || {})[r.method];
  if (!operation) return [`no ${r.method} ${r.path} in the document`];
  let pointer = `/paths/${escape(r.path)}/${r.method}/responses/${r.status}`;
  let response = at(pointer);
  if (!response) return [`status ${r.status} is not declared for ${r.method} ${r.path}`];
  while (response.$ref) {
    pointer = response.$ref.slice(1);
    response = at(pointer);
  }
  if (!response.content) {
    if (r.body !== null) errors.push(`status ${r.status} declares no body, but one came`);
    return errors;
  }
  const media = (r.contentType || '').split(';')[0].trim().toLowerCase();
  if (!response.content[media]) {
    return [`content type ${media} is not declared for status ${r.status}`];
  }
  const validate = ajv.getSchema(`openapi.json#${pointer}/content/${escape(media)}/schema`);
  if (!validate(r.body)) {
    for (const e of validate.errors) {
      errors.push(`${e.instancePath || '(body)'} ${e.message} (${e.schemaPath})`);
    }
  }
  return errors;
}

process.stdout.write(
    JSON.stringify(input.responses.map((r) => ({ name: r.name, errors: check(r) }))));
