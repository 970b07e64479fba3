// Calls as a client makes them, for the in-process daemon tests that moved out of the root-only
// integration suite (the permission table row by row, bad input): a save, a get and a remove
// whose outcome is a string a test compares whole, and a check that nothing a test sent is in
// what the daemon wrote (its database file, its audit trail, its log lines).

#pragma once

#include "ipc/client.h"
#include "ipc/credvault.capnp.h"
#include "tests/support/temp-dir.h"

#include <gtest/gtest.h>
#include <kj/async.h>
#include <kj/debug.h>
#include <algorithm>
#include <string>
#include <vector>

namespace credvault::daemon::testing {

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

// What a test sent and the daemon must never write in clear: remembered strings are looked for
// in the files and the log text given to check(). Strings shorter than 10 bytes are looked for
// in the log only (in a database file they could occur by chance).
class LeakCheck {
 public:
  void remember(const std::string& s) { sensitive_.push_back(s); }
  size_t remembered() const { return sensitive_.size(); }

  // A test failure for every remembered string found; also when `log` is empty (nothing was
  // captured, so the scan would prove nothing) or a file is missing.
  void check(const std::vector<std::string>& files, const std::string& log) const {
    EXPECT_FALSE(log.empty()) << "no log lines were captured: the leak check proves nothing";
    for (auto& s : sensitive_) {
      EXPECT_EQ(log.find(s), std::string::npos) << "\"" << s << "\" is in the daemon's log";
    }
    for (auto& f : files) {
      auto content = support::readFile(f.c_str(), "<missing>");
      EXPECT_NE(content, "<missing>") << f;
      for (auto& s : sensitive_) {
        if (s.size() < 10) continue;
        EXPECT_EQ(content.find(s), std::string::npos) << "\"" << s << "\" is in " << f;
      }
    }
  }

 private:
  std::vector<std::string> sensitive_;
};

}  // namespace credvault::daemon::testing
