#include "cli.h"
#include "base/parse-int.h"

#include <stdio.h>
#include <stdlib.h>

namespace credvault::ctl {

void CliContext::exit() {
  fflush(stdout);
  ::exit(OK);
}

void CliContext::warning(kj::StringPtr message) {
  fprintf(stderr, "%s\n", message.cStr());
}

void CliContext::error(kj::StringPtr message) {
  fprintf(stderr, "%s\n", message.cStr());
}

void CliContext::exitError(kj::StringPtr message) {
  // KJ's text is "credvaultctl CMD: what\nTry 'credvaultctl CMD --help' ...": the usage line
  // goes between the two.
  KJ_IF_MAYBE(nl, message.findFirst('\n')) {
    fprintf(stderr, "%.*s\n", int(*nl), message.begin());
    if (synopsis.size() > 0) fprintf(stderr, "usage: credvaultctl %s\n", synopsis.cStr());
    fprintf(stderr, "%s\n", message.slice(*nl + 1).cStr());
  } else {
    fprintf(stderr, "%s\n", message.cStr());
    if (synopsis.size() > 0) fprintf(stderr, "usage: credvaultctl %s\n", synopsis.cStr());
  }
  fflush(stdout);
  ::exit(USAGE);
}

void CliContext::exitInfo(kj::StringPtr message) {
  fputs(message.cStr(), stdout);
  if (!message.endsWith("\n")) fputc('\n', stdout);
  fflush(stdout);
  ::exit(OK);
}

kj::MainBuilder::Validity Common::setSocket(kj::StringPtr path) {
  if (path.size() == 0) return kj::str("the socket path is empty");
  return setOnce(socket, kj::heapString(path));
}

kj::MainBuilder::Validity Common::setFormat(kj::StringPtr name) {
  if (name == "text") return setOnce(format, Format::TEXT);
  if (name == "json") return setOnce(format, Format::JSON);
  if (name == "tsv") return setOnce(format, Format::TSV);
  return kj::str("must be text, json or tsv");
}

kj::MainBuilder::Validity Common::setJson() {
  return setOnce(format, Format::JSON);
}

Format Common::formatOr(Format dflt) const {
  KJ_IF_MAYBE(f, format) { return *f; }
  return dflt;
}

kj::MainBuilder& Common::addTo(kj::MainBuilder& builder) {
  return builder
      .addOptionWithArg({"socket"}, KJ_BIND_METHOD(*this, setSocket), "<path>",
                        "The daemon's socket (default $CREDVAULT_SOCKET, else the packaged "
                        "path).")
      .addOptionWithArg({"format"}, KJ_BIND_METHOD(*this, setFormat), "<text|json|tsv>",
                        "Output format (default text).")
      .addOption({"json"}, KJ_BIND_METHOD(*this, setJson), "Same as --format=json.");
}

kj::MainBuilder::Validity parseId(kj::StringPtr text, kj::Maybe<int32_t>& slot) {
  if (text.size() <= 10) {
    KJ_IF_MAYBE(v, base::unsignedOrNull(text, INT32_MAX)) {
      if (*v >= 1) return setOnce(slot, int32_t(*v));
    }
  }
  return kj::str("must be an associate id (1 or more)");
}

}  // namespace credvault::ctl
