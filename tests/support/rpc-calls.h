// A client's calls with their outcomes as strings, for the tests that drive the daemon over its
// RPC interface in-process (tests/daemon/) or as a real process (tests/integration/): a save, a
// get and a remove whose outcome a test compares whole, and the typed error of any answer.

#pragma once

#include "ipc/client.h"
#include "ipc/credvault.capnp.h"

#include <kj/async.h>
#include <kj/debug.h>
#include <string.h>
#include <algorithm>
#include <string>
#include <vector>

namespace credvault::support {

// "ok", or the error's code name and its field ("limit-exceeded publicValue").
template<typename Results>
std::string errorOf(const Results& r) {
  if (!r.hasError()) return "ok";
  auto e = r.getError();
  std::string out = ipc::errorCodeName(e.getCode()).cStr();
  if (e.getField().size() > 0) out += std::string(" ") + e.getField().cStr();
  return out;
}

// A credential to save; no secret means "keep the stored one".
struct Entry {
  std::string type = "imap";
  std::string pub;
  kj::Maybe<std::string> secret;
  std::string comment;
  int64_t validFrom = 0, validTo = 0;
  bool active = true;
};

inline void fill(rpc::Credential::Builder c, const Entry& e) {
  c.setPublicValue(e.pub.c_str());
  c.setComment(e.comment.c_str());
  KJ_IF_MAYBE(secret, e.secret) {
    auto t = c.initSecretValue(secret->size());
    memcpy(t.begin(), secret->data(), secret->size());
  }
  c.setValidFrom(e.validFrom);
  c.setValidTo(e.validTo);
  c.setIsActive(e.active);
}

// Session.save of `what` for `target` (0: oneself): "ok" or the error.
inline std::string saveFor(rpc::Session::Client& s, int32_t target, const Entry& what,
                           kj::WaitScope& ws) {
  auto req = s.saveRequest();
  req.setAssociateId(target);
  req.setType(what.type.c_str());
  fill(req.initCredential(), what);
  return errorOf(req.send().wait(ws));
}

// Session.get: the error, or "pub=secret|..." sorted ("<withheld>" when no secret came).
inline std::string getFor(rpc::Session::Client& s, int32_t target, const std::string& type,
                          kj::WaitScope& ws) {
  auto req = s.getRequest();
  req.setAssociateId(target);
  req.setType(type.c_str());
  auto r = req.send().wait(ws);
  if (r.hasError()) return errorOf(r);
  std::vector<std::string> items;
  for (auto c : r.getCredentials()) {
    items.push_back(std::string(c.getPublicValue().cStr()) + "=" +
                    (c.hasSecretValue() ? c.getSecretValue().cStr() : "<withheld>"));
  }
  std::sort(items.begin(), items.end());
  std::string out;
  for (auto& i : items) out += (out.empty() ? "" : "|") + i;
  return out;
}

// Session.remove: "removed", "absent" or the error.
inline std::string removeFor(rpc::Session::Client& s, int32_t target, const std::string& type,
                             const std::string& pub, kj::WaitScope& ws) {
  auto req = s.removeRequest();
  req.setAssociateId(target);
  req.setType(type.c_str());
  req.setPublicValue(pub.c_str());
  auto r = req.send().wait(ws);
  return r.hasError() ? errorOf(r) : std::string(r.getRemoved() ? "removed" : "absent");
}

}  // namespace credvault::support
