// Bad input over IPC, in-process through the real listener (tests/daemon/listener-fixture.h: the
// transport limit, the reader's limits and the Service's per-call checks, in the daemon's order;
// moved here from the root-only integration suite): every field past its limit, invalid dates,
// invalid UTF-8 and control characters, associate ids that name no one, a request past the
// message limit or nested past the nesting limit, an unknown method — each a typed error that
// stores nothing and leaves the connection usable; a message past the transport limit ends that
// connection only. The daemon's database file, audit trail and log lines are scanned for what
// the test sent.

#include "calls.h"
#include "listener-fixture.h"
#include "daemon/log.h"
#include "tests/support/capture-stderr.h"

#include <capnp/capability.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <string>

namespace credvault::daemon {
namespace {

using namespace testing;

// The daemon's log lines must reach stderr, where the leak check reads them (see roles-test).
[[maybe_unused]] const bool NOT_UNDER_JOURNALD = (unsetenv("JOURNAL_STREAM"), true);

class BadInput : public ListenerFixture {
 protected:
  BadInput() { setLogLevel(Level::DEBUG); }
  support::CaptureStderr logs;
  LeakCheck leaks;

  void TearDown() override {
    conns.clear();
    leaks.check({(d.dir / "data.mdb").cStr(), (d.dir / "audit.jsonl").cStr()}, logs.text());
    ListenerFixture::TearDown();
  }
  std::string save(rpc::Session::Client s, int32_t target, const Entry& e) {
    return saveFor(s, target, e, ws);
  }
  std::string get(rpc::Session::Client s, int32_t target, const std::string& type) {
    return getFor(s, target, type, ws);
  }
  rpc::Session::Client openSession(Conn& c) {
    auto r = c.vault.sessionRequest().send().wait(ws);
    KJ_REQUIRE(!r.hasError(), "no session", r.getError().getMessage());
    return r.getSession();
  }
};

TEST_F(BadInput, GetsTypedErrorsThatStoreNothingAndTheConnectionStaysUsable) {
  auto& conn = dial(0);  // root, as credvaultctl and the client library connect
  auto s = openSession(conn);
  ASSERT_EQ(save(s, alice, {"badinput", "keep@example.test", std::string("badinput-keep-secret")}),
            "ok");
  leaks.remember("badinput-keep-secret");
  const std::string baseline = "keep@example.test=badinput-keep-secret";
  auto stillFine = [&]() { return get(s, alice, "badinput"); };
  auto statusCount = [&]() {
    return conn.vault.statusRequest().send().wait(ws).getStatus().getCredentials();
  };
  auto before = statusCount();

  // A field past its limit.
  EXPECT_EQ(save(s, alice, {"badinput", std::string(239, 'p'), std::string("s")}),
            "limit-exceeded publicValue");
  EXPECT_EQ(stillFine(), baseline);
  EXPECT_EQ(save(s, alice, {"badinput", "x", std::string(8193, 's')}),
            "limit-exceeded secretValue");
  EXPECT_EQ(save(s, alice, {std::string(65, 't'), "x", std::string("s")}), "limit-exceeded type");
  EXPECT_EQ(get(s, alice, std::string(65, 't')), "limit-exceeded type");
  // Invalid dates.
  Entry bad{"badinput", "keep@example.test", std::string("changed-secret-xx")};
  bad.validFrom = -1;
  EXPECT_EQ(save(s, alice, bad), "invalid-argument validFrom");
  bad.validFrom = 3'155'378'976'000'000'000;  // one tick past 9999-12-31T23:59:59.9999999
  EXPECT_EQ(save(s, alice, bad), "invalid-argument validFrom");
  bad.validFrom = 638'000'000'000'000'000;
  bad.validTo = 637'000'000'000'000'000;
  EXPECT_EQ(save(s, alice, bad), "invalid-argument validTo");
  EXPECT_EQ(stillFine(), baseline);
  // Invalid UTF-8 and control characters.
  EXPECT_EQ(save(s, alice, {"bad\xff", "x", std::string("s")}), "invalid-argument type");
  EXPECT_EQ(save(s, alice, {"badinput", "x\xc0\xaf", std::string("s")}),
            "invalid-argument publicValue");
  EXPECT_EQ(save(s, alice, {"badinput", "x", std::string("s"), "c\x1b[31m"}),
            "invalid-argument comment");
  // Unknown associate, and ids that cannot be one.
  EXPECT_EQ(save(s, 999999, {"badinput", "x", std::string("s")}), "not-found associateId");
  EXPECT_EQ(get(s, 999999, "badinput"), "not-found associateId");
  EXPECT_EQ(removeFor(s, 999999, "badinput", "x", ws), "not-found associateId");
  EXPECT_EQ(save(s, -3, {"badinput", "x", std::string("s")}), "invalid-argument associateId");
  // A request one byte past the message limit (1 MiB) but under the transport's (1 MiB +
  // 64 KiB): a typed error.
  EXPECT_EQ(save(s, alice, {"badinput", "x", std::string("s"), std::string((1 << 20) + 1, 'c')}),
            "limit-exceeded message");
  EXPECT_EQ(stillFine(), baseline);
  // A request nested past the nesting limit (an extra pointer holding a deep chain of
  // structs, which the server meets when it measures the request).
  {
    auto req = capnp::Capability::Client(s).typelessRequest(capnp::typeId<rpc::Session>(),
                                                            4 /* save */, nullptr);
    auto root = req.initAsAnyStruct(0, 3);
    auto ptrs = root.getPointerSection();
    ptrs[0].setAs<capnp::Text>("badinput");
    auto c = ptrs[1].initAs<rpc::Credential>();
    c.setPublicValue("nested@example.test");
    c.setSecretValue("nested-secret-value");
    auto p = ptrs[2];
    for (int depth = 0; depth < 64; depth++) {
      auto next = p.initAsAnyStruct(0, 1);
      p = next.getPointerSection()[0];
    }
    auto result = kj::runCatchingExceptions([&]() {
      auto resp = req.send().wait(ws);
      auto results = resp.getAs<rpc::Session::SaveResults>();
      EXPECT_EQ(errorOf(results), "limit-exceeded message");
    });
    KJ_IF_MAYBE(e, result) { ADD_FAILURE() << e->getDescription().cStr(); }
  }
  leaks.remember("nested-secret-value");
  EXPECT_EQ(stillFine(), baseline);
  // An unknown method: the RPC layer's "unimplemented", and the connection goes on.
  {
    auto cap = capnp::Capability::Client(s);
    auto req = cap.typelessRequest(capnp::typeId<rpc::Session>(), 200, nullptr);
    auto result = kj::runCatchingExceptions([&]() { req.send().wait(ws); });
    auto e = KJ_ASSERT_NONNULL(result);
    EXPECT_EQ(e.getType(), kj::Exception::Type::UNIMPLEMENTED) << e.getDescription().cStr();
    EXPECT_NE(std::string(e.getDescription().cStr()).find("not implemented"), std::string::npos)
        << e.getDescription().cStr();
    auto vreq = capnp::Capability::Client(conn.vault)
                    .typelessRequest(capnp::typeId<rpc::Session>(), 0, nullptr);
    EXPECT_NE(kj::runCatchingExceptions([&]() { vreq.send().wait(ws); }), nullptr);
  }
  EXPECT_EQ(stillFine(), baseline);
  // Nothing was stored by any of it.
  EXPECT_EQ(statusCount(), before);

  // A message past the transport limit (1 MiB + 64 KiB) ends that connection only.
  {
    auto& big = dial(0);
    auto bs = openSession(big);
    auto req = bs.saveRequest();
    req.setType("badinput");
    auto c = req.initCredential();
    c.setPublicValue("huge");
    c.initComment(2 << 20);
    auto result = kj::runCatchingExceptions([&]() { req.send().wait(ws); });
    EXPECT_NE(result, nullptr);
    EXPECT_EQ(whoami(big), "disconnected");
  }
  EXPECT_EQ(stillFine(), baseline);
  auto fs = openSession(dial(0));
  EXPECT_EQ(get(fs, alice, "badinput"), baseline);
  EXPECT_EQ(statusCount(), before);
}

}  // namespace
}  // namespace credvault::daemon
