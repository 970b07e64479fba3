#include "config-file.h"

#include "base/ascii.h"

#include <kj/vector.h>

namespace credvault::base {

namespace {

kj::ArrayPtr<const char> trim(kj::ArrayPtr<const char> s) {
  return base::trimSpace(s);  // lines are split at LF already
}

bool isKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

size_t editDistance(kj::StringPtr a, kj::StringPtr b) {
  // Two rows of the classic table; keys are short.
  kj::Vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); j++) prev.add(j);
  for (size_t i = 1; i <= a.size(); i++) {
    cur.clear();
    cur.add(i);
    for (size_t j = 1; j <= b.size(); j++) {
      size_t substitute = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      size_t best = kj::min(prev[j] + 1, cur[j - 1] + 1);
      cur.add(kj::min(best, substitute));
    }
    auto moved = kj::mv(prev);
    prev = kj::mv(cur);
    cur = kj::mv(moved);
  }
  return prev[b.size()];
}

// A key as it may be shown in a message: ours are short and printable; anything else was
// not meant as a key and is not repeated.
bool showable(kj::ArrayPtr<const char> key) {
  if (key.size() == 0 || key.size() > 64) return false;
  for (char c : key) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

// Checks and applies one `key = value` (both already trimmed); the message, or null.
kj::Maybe<kj::String> applyLine(kj::ArrayPtr<const char> key, kj::ArrayPtr<const char> value,
                                kj::ArrayPtr<const kj::StringPtr> keys, ApplySetting& apply) {
  if (key.size() == 0) return kj::str("expected `key = value`, found no key before '='");
  for (char c : key) {
    if (!isKeyChar(c)) {
      if (showable(key)) {
        return kj::str("'", key, "' is not a setting name (lower-case letters, digits and _)");
      }
      return kj::str("a setting name has lower-case letters, digits and _ only");
    }
  }
  for (char c : value) {
    if ((c >= 0 && c < ' ' && c != '\t') || c == 0x7f) {
      return kj::str(key, ": the value has a control character");
    }
  }
  auto name = kj::heapString(key);
  bool known = false;
  for (auto& k : keys) {
    if (k == name) known = true;
  }
  if (!known) {
    KJ_IF_MAYBE(near, nearestKey(name, keys)) {
      return kj::str("unknown setting '", name, "' (did you mean '", *near, "'?)");
    }
    return kj::str("unknown setting '", name, "'");
  }
  return apply(name, kj::heapString(value));
}

}  // namespace

kj::Maybe<kj::StringPtr> nearestKey(kj::StringPtr key, kj::ArrayPtr<const kj::StringPtr> keys) {
  kj::Maybe<kj::StringPtr> best;
  size_t bestDistance = 3;
  for (auto& k : keys) {
    size_t d = editDistance(key, k);
    if (d < bestDistance) {
      bestDistance = d;
      best = k;
    }
  }
  if (best != nullptr) return best;
  // "tls" for "tls_certificate", "password_queue" for "password_queue_per_uid".
  if (key.size() >= 3) {
    for (auto& k : keys) {
      if (k.startsWith(key) || key.startsWith(k)) return k;
    }
  }
  return nullptr;
}

kj::Maybe<kj::String> readConfigText(kj::StringPtr origin, kj::StringPtr text,
                                     kj::ArrayPtr<const kj::StringPtr> keys, ApplySetting apply) {
  if (text.size() > MAX_CONFIG_FILE_BYTES) {
    return kj::str(origin, ": larger than ", MAX_CONFIG_FILE_BYTES,
                   " bytes; is this the configuration file?");
  }
  kj::ArrayPtr<const char> rest = text.asArray();
  if (rest.size() >= 3 && rest[0] == '\xef' && rest[1] == '\xbb' && rest[2] == '\xbf') {
    rest = rest.slice(3, rest.size());
  }
  size_t lineNo = 0;
  while (rest.size() > 0) {
    ++lineNo;
    size_t end = 0;
    while (end < rest.size() && rest[end] != '\n') ++end;
    auto line = rest.slice(0, end);
    rest = end < rest.size() ? rest.slice(end + 1, rest.size()) : rest.slice(end, end);

    size_t stop = 0;
    while (stop < line.size() && line[stop] != '#') ++stop;
    auto content = trim(line.slice(0, stop));
    if (content.size() == 0) continue;
    for (char c : content) {
      if (c == '\0') return kj::str(origin, ":", lineNo, ": the line has a NUL byte");
    }
    size_t eq = 0;
    while (eq < content.size() && content[eq] != '=') ++eq;
    if (eq == content.size()) { return kj::str(origin, ":", lineNo, ": expected `key = value`"); }
    KJ_IF_MAYBE(error, applyLine(trim(content.slice(0, eq)),
                                 trim(content.slice(eq + 1, content.size())), keys, apply)) {
      return kj::str(origin, ":", lineNo, ": ", *error);
    }
  }
  return nullptr;
}

kj::Maybe<kj::String> applyConfigKey(kj::StringPtr key, kj::StringPtr value,
                                     kj::ArrayPtr<const kj::StringPtr> keys, ApplySetting apply) {
  return applyLine(key.asArray(), value.asArray(), keys, apply);
}

kj::Maybe<kj::String> readConfigSetting(kj::StringPtr origin, kj::StringPtr keyValue,
                                        kj::ArrayPtr<const kj::StringPtr> keys,
                                        ApplySetting apply) {
  // Exactly what one line of a file would be (a `#` starts a comment here too), so that a
  // setting means the same wherever it is written.
  auto line = keyValue.asArray();
  for (size_t i = 0; i < line.size(); i++) {
    if (line[i] == '\n') return kj::str(origin, ": expected one key=value, found a line break");
    if (line[i] == '#') {
      line = line.slice(0, i);
      break;
    }
  }
  size_t eq = 0;
  while (eq < line.size() && line[eq] != '=') ++eq;
  if (eq == line.size()) return kj::str(origin, ": expected key=value");
  KJ_IF_MAYBE(error, applyLine(trim(line.slice(0, eq)), trim(line.slice(eq + 1, line.size())), keys,
                               apply)) {
    return kj::str(origin, ": ", *error);
  }
  return nullptr;
}

}  // namespace credvault::base
