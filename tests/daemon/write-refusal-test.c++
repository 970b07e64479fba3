// A write that returns a refusal (core::Result) inside a group-commit batch: its nested
// transaction is aborted, so nothing it wrote before refusing is stored, and the other writes
// of the same batch commit as if it had not been there. Real GroupCommitter, real LMDB, real
// Authenticator writes; the batch is formed by holding the writer (rpc-fixture.h).

#include "tests/daemon/rpc-fixture.h"

#include <set>
#include <string>

namespace credvault::daemon::testing {
namespace {

core::Principal systemUser() {
  core::Principal p;
  p.kind = core::Kind::SYSTEM;
  p.method = core::AuthMethod::PEER_CREDENTIALS;
  return p;
}

class WriteRefusal : public ::testing::Test {
 protected:
  std::unique_ptr<Daemon> dp = std::make_unique<Daemon>(false);
  Daemon& d = *dp;
  kj::WaitScope& ws = d.io.waitScope;
  core::Principal root = systemUser();
  int32_t alice = 0;

  void SetUp() override {
    core::NewAssociate na;
    na.name = kj::str("alice");
    alice = d.vault.runNow(d.vault.addAssociate(root, kj::mv(na))).value().id;
  }

  kj::Vector<kj::String> tokenNames() {
    kj::Vector<kj::String> names;
    for (auto& t : d.auth.listTokens(root, alice).value()) names.add(kj::heapString(t.name));
    return names;
  }
};

TEST_F(WriteRefusal, ARefusedWriteInABatchLeavesNothingAndSparesTheOthers) {
  auto scratch = d.env.table("write-refusal-test");
  auto key = "written-before-refusing"_kj.asBytes();

  WriterGate gate;
  auto held = holdWriter(d.committer, gate);
  waitEntered(gate);
  uint64_t commitsBefore = d.committer.stats().commits;

  // Queued behind the held write, so the writer takes all four as one batch.
  auto first = d.committer.submit(d.auth.createToken(root, alice, "first", 0));
  auto refused = d.committer.submit(
      core::WriteOp<core::Result<bool>>([&](store::WriteTxn& txn) -> core::Result<bool> {
        txn.put(scratch, key, "x"_kj.asBytes());
        return core::refuse(core::ErrorCode::CONFLICT, "scratch", kj::str("refused after a put"));
      }));
  // The same name again: refused by the op itself (a returned CONFLICT), after `first`.
  auto again = d.committer.submit(d.auth.createToken(root, alice, "first", 0));
  auto second = d.committer.submit(d.auth.createToken(root, alice, "second", 0));
  EXPECT_EQ(d.committer.queued(), 4u);

  *gate.open.lockExclusive() = true;
  EXPECT_TRUE(KJ_ASSERT_NONNULL(held.wait(ws).value));
  auto firstOutcome = first.wait(ws);
  auto refusedOutcome = refused.wait(ws);
  auto againOutcome = again.wait(ws);
  auto secondOutcome = second.wait(ws);
  // One commit for the held write, one for the batch of four.
  EXPECT_EQ(d.committer.stats().commits, commitsBefore + 2);

  EXPECT_TRUE(firstOutcome.value != nullptr);
  EXPECT_TRUE(secondOutcome.value != nullptr);
  EXPECT_TRUE(refusedOutcome.value == nullptr && refusedOutcome.failure == nullptr);
  auto& r = KJ_ASSERT_NONNULL(refusedOutcome.error);
  EXPECT_EQ(r.code, core::ErrorCode::CONFLICT);
  EXPECT_EQ(r.field, "scratch");
  auto& a = KJ_ASSERT_NONNULL(againOutcome.error);
  EXPECT_EQ(a.code, core::ErrorCode::CONFLICT);
  EXPECT_EQ(a.field, "name");

  // Nothing of the refused write; both accepted tokens, once each.
  EXPECT_TRUE(d.env.read().get(scratch, key) == nullptr);
  // Listed in key order (keyed hashes of the names): compare as a set.
  std::set<std::string> names;
  for (auto& n : tokenNames()) names.insert(n.cStr());
  EXPECT_EQ(names, (std::set<std::string>{"first", "second"}));
  EXPECT_EQ(tokenNames().size(), 2u);
  auto firstToken = KJ_ASSERT_NONNULL(kj::mv(firstOutcome.value)).token;
  EXPECT_EQ(KJ_ASSERT_NONNULL(d.auth.validateToken(firstToken)).name, "first");
}

TEST_F(WriteRefusal, RunNowAbortsARefusedWriteToo) {
  auto scratch = d.env.table("write-refusal-test");
  auto key = "run-now"_kj.asBytes();
  auto result = d.vault.runNow(
      core::WriteOp<core::Result<int>>([&](store::WriteTxn& txn) -> core::Result<int> {
        txn.put(scratch, key, "x"_kj.asBytes());
        return core::refuse(core::ErrorCode::LIMIT_EXCEEDED, "scratch", kj::str("no"));
      }));
  EXPECT_EQ(KJ_ASSERT_NONNULL(result.refused()).code, core::ErrorCode::LIMIT_EXCEEDED);
  EXPECT_TRUE(d.env.read().get(scratch, key) == nullptr);
  auto kept = d.vault.runNow(
      core::WriteOp<core::Result<int>>([&](store::WriteTxn& txn) -> core::Result<int> {
        txn.put(scratch, key, "y"_kj.asBytes());
        return 7;
      }));
  EXPECT_EQ(kept.value(), 7);
  EXPECT_TRUE(d.env.read().get(scratch, key) != nullptr);
}

TEST_F(WriteRefusal, AFailedRecheckIsARefusalValueNotAThrow) {
  // recheck() of a write that returns a Result hands a failed re-authorization back as the
  // op's refusal (its transaction aborted) instead of throwing.
  core::NewAssociate na;
  na.name = kj::str("boss");
  na.userAdmin = true;
  auto boss = d.vault.runNow(d.vault.addAssociate(root, kj::mv(na))).value();
  core::Grant grant;
  grant.method = core::AuthMethod::PASSWORD;
  grant.associateId = boss.id;
  grant.epoch = boss.credentialEpoch;
  auto op = d.identity.recheck(grant, core::Operation::CREATE_TOKEN, alice,
                               d.auth.createToken(root, alice, "via-boss", 0).value());
  auto outcome = d.vault.runNow(kj::mv(op));
  // Only alice or a system user manages alice's tokens: refused, as a value, and nothing
  // was written.
  EXPECT_EQ(KJ_ASSERT_NONNULL(outcome.refused()).code, core::ErrorCode::PERMISSION_DENIED);
  EXPECT_EQ(tokenNames().size(), 0u);
}

}  // namespace
}  // namespace credvault::daemon::testing
