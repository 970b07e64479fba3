#!/usr/bin/env python3
# Writes a C++ source defining credvault::rest::openApiDocument() from docs/openapi.json, so
# the document the gateway serves is the one kept in docs/. Usage: embed.py INPUT OUTPUT
import sys

data = open(sys.argv[1], 'rb').read()
with open(sys.argv[2], 'w') as out:
    out.write('// Generated from docs/openapi.json by frontends/rest/embed.py. Do not edit.\n')
    out.write('#include "frontends/rest/routes.h"\n\n')
    out.write('namespace credvault::rest {\n\nnamespace {\nconst char DOCUMENT[] = {\n')
    for i in range(0, len(data), 16):
        out.write('  ' + ', '.join('0x%02x' % b for b in data[i:i + 16]) + ',\n')
    out.write('  0x00};\n}  // namespace\n\n')
    out.write('kj::StringPtr openApiDocument() { return kj::StringPtr(DOCUMENT, sizeof(DOCUMENT) - 1); }\n\n')
    out.write('}  // namespace credvault::rest\n')
