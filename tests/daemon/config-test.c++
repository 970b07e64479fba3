// Tests for daemon/config.h: defaults, the `key = value` file format, every setting's
// bounds, and errors that name the line.

#include "daemon/config.h"
#include "credvault-config.h"

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <kj/exception.h>
#include <string>

namespace credvault::daemon {
namespace {

// The description of the exception `body` throws ("" when it throws none).
template<typename Func>
std::string failureOf(Func&& body) {
  KJ_IF_MAYBE(e, kj::runCatchingExceptions(body)) { return e->getDescription().cStr(); }
  return "";
}

TEST(Config, Defaults) {
  auto c = defaultConfig();
  EXPECT_EQ(c.stateDir, CREDVAULT_DEFAULT_STATE_DIR);
  EXPECT_EQ(c.socket, CREDVAULT_DEFAULT_SOCKET);
  EXPECT_EQ(c.keyFilePath(), kj::str(CREDVAULT_DEFAULT_STATE_DIR, "/master.key"));
  EXPECT_EQ(c.socketMode, 0666u);
  EXPECT_EQ(c.systemUids.size(), 0u);
  EXPECT_FALSE(c.createKey);
  EXPECT_FALSE(c.onlineMode);
  EXPECT_EQ(c.auditLog, nullptr);
  EXPECT_EQ(c.auditFailure, AuditFailureMode::REFUSE);  // fail closed unless told otherwise
}

TEST(Config, FileFormat) {
  auto c = defaultConfig();
  applyConfigFile(c, "/etc/test.conf",
                  "# a comment\n"
                  "\n"
                  "  state_dir =  /var/lib/x  \n"
                  "socket=/run/x.sock\r\n"
                  "\tkey_file = /etc/x.key\n"
                  "socket_mode = 0660\n"
                  "system_uids = 1000, 1001 1002,,\n"
                  "log_level = debug\n"
                  "mode = online\n"
                  "ticket_lifetime = 3600\n"
                  "password_ops_limit = 3\n"
                  "password_mem_limit = 65536");  // no trailing newline
  EXPECT_EQ(c.stateDir, "/var/lib/x");
  EXPECT_EQ(c.socket, "/run/x.sock");
  EXPECT_EQ(c.keyFilePath(), "/etc/x.key");
  EXPECT_EQ(c.socketMode, 0660u);
  ASSERT_EQ(c.systemUids.size(), 3u);
  EXPECT_EQ(c.systemUids[0], 1000u);
  EXPECT_EQ(c.systemUids[2], 1002u);
  EXPECT_EQ(c.logLevel, Level::DEBUG);
  EXPECT_TRUE(c.onlineMode);
  EXPECT_EQ(c.ticketLifetimeSeconds, 3600u);
  EXPECT_EQ(c.password.opsLimit, 3u);
  EXPECT_EQ(c.password.memLimit, 65536u);
  // A later setting replaces an earlier one (the command line after the file).
  applySetting(c, "system_uids", "42");
  ASSERT_EQ(c.systemUids.size(), 1u);
  EXPECT_EQ(c.systemUids[0], 42u);
}

TEST(Config, Bounds) {
  auto c = defaultConfig();
  applySetting(c, "socket_mode", "0777");
  EXPECT_NE(failureOf([&]() { applySetting(c, "socket_mode", "1000"); }), "");
  EXPECT_NE(failureOf([&]() { applySetting(c, "socket_mode", "0888"); }), "");
  applySetting(c, "ticket_lifetime", "60");
  applySetting(c, "ticket_lifetime", "2592000");
  EXPECT_NE(failureOf([&]() { applySetting(c, "ticket_lifetime", "59"); }), "");
  EXPECT_NE(failureOf([&]() { applySetting(c, "ticket_lifetime", "2592001"); }), "");
  applySetting(c, "password_ops_limit", "1");
  applySetting(c, "password_ops_limit", "64");
  EXPECT_NE(failureOf([&]() { applySetting(c, "password_ops_limit", "0"); }), "");
  EXPECT_NE(failureOf([&]() { applySetting(c, "password_ops_limit", "65"); }), "");
  applySetting(c, "password_mem_limit", "8192");
  EXPECT_NE(failureOf([&]() { applySetting(c, "password_mem_limit", "8191"); }), "");
  EXPECT_NE(failureOf([&]() { applySetting(c, "password_mem_limit", "4294967297"); }), "");
  EXPECT_NE(failureOf([&]() { applySetting(c, "system_uids", "4294967295"); }), "");
  EXPECT_NE(failureOf([&]() { applySetting(c, "system_uids", "-1"); }), "");
  EXPECT_NE(failureOf([&]() { applySetting(c, "system_uids", "12a"); }), "");
  EXPECT_NE(failureOf([&]() { applySetting(c, "ticket_lifetime", ""); }), "");
  EXPECT_NE(failureOf([&]() { applySetting(c, "password_ops_limit", "99999999999999999999999"); }),
            "");
  EXPECT_NE(failureOf([&]() { applySetting(c, "log_level", "loud"); }), "");
  EXPECT_NE(failureOf([&]() { applySetting(c, "mode", "cloud"); }), "");
}

TEST(Config, AuditSettings) {
  auto c = defaultConfig();
  applyConfigFile(c, "/etc/test.conf",
                  "audit_log = /var/log/credvault/audit.log\n"
                  "audit_failure = log\n");
  EXPECT_EQ(KJ_ASSERT_NONNULL(c.auditLog), "/var/log/credvault/audit.log");
  EXPECT_EQ(c.auditFailure, AuditFailureMode::LOG);
  auto options = c.auditOptions();
  EXPECT_EQ(KJ_ASSERT_NONNULL(options.path), "/var/log/credvault/audit.log");
  EXPECT_EQ(options.onFailure, AuditFailureMode::LOG);
  EXPECT_TRUE(options.journal);

  // As `--set` applies them, after the file: back to fail closed, and no file at all.
  applySetting(c, "audit_failure", "refuse");
  EXPECT_EQ(c.auditFailure, AuditFailureMode::REFUSE);
  applySetting(c, "audit_log", "");
  EXPECT_EQ(c.auditLog, nullptr);
  EXPECT_EQ(c.auditOptions().path, nullptr);
  EXPECT_EQ(c.auditOptions().onFailure, AuditFailureMode::REFUSE);
}

TEST(Config, AuditSettingsRejectBadValues) {
  auto c = defaultConfig();
  auto e = failureOf([&]() { applySetting(c, "audit_log", "audit.log"); });
  EXPECT_NE(e.find("audit_log must be an absolute path"), std::string::npos) << e;
  EXPECT_NE(e.find("audit.log"), std::string::npos) << e;
  e = failureOf([&]() { applySetting(c, "audit_log", "./var/log/audit.log"); });
  EXPECT_NE(e.find("absolute"), std::string::npos) << e;
  EXPECT_EQ(c.auditLog, nullptr);  // a rejected value changes nothing

  for (auto bad : {"deny", "Refuse", "", "log,refuse", "ignore"}) {
    e = failureOf([&]() { applySetting(c, "audit_failure", bad); });
    EXPECT_NE(e.find("audit_failure must be refuse or log"), std::string::npos) << bad << e;
  }
  EXPECT_EQ(c.auditFailure, AuditFailureMode::REFUSE);

  e = failureOf([&]() { applyConfigFile(c, "/etc/x.conf", "\naudit_failure = maybe\n"); });
  EXPECT_NE(e.find("audit_failure must be refuse or log"), std::string::npos) << e;
  EXPECT_NE(e.find("maybe"), std::string::npos) << e;
}

TEST(Config, TransportDefaults) {
  auto c = defaultConfig();
  EXPECT_EQ(c.transport.messageTimeout, 10 * kj::SECONDS);
  EXPECT_EQ(KJ_ASSERT_NONNULL(c.transport.idleTimeout), 600 * kj::SECONDS);
  EXPECT_EQ(c.transport.writeTimeout, 30 * kj::SECONDS);
  EXPECT_EQ(c.transport.maxBacklogBytes, size_t(4) << 20);
}

TEST(Config, TransportSettingsAtAndPastTheirBounds) {
  auto c = defaultConfig();
  applySetting(c, "message_timeout", "100ms");
  EXPECT_EQ(c.transport.messageTimeout, 100 * kj::MILLISECONDS);
  applySetting(c, "message_timeout", "10m");
  EXPECT_EQ(c.transport.messageTimeout, 10 * kj::MINUTES);
  EXPECT_NE(failureOf([&]() { applySetting(c, "message_timeout", "99ms"); }), "");
  EXPECT_NE(failureOf([&]() { applySetting(c, "message_timeout", "601"); }), "");
  applySetting(c, "idle_timeout", "0");
  EXPECT_EQ(c.transport.idleTimeout, nullptr);
  applySetting(c, "idle_timeout", "15s");
  EXPECT_EQ(KJ_ASSERT_NONNULL(c.transport.idleTimeout), 15 * kj::SECONDS);
  EXPECT_NE(failureOf([&]() { applySetting(c, "idle_timeout", "99ms"); }), "");
  applySetting(c, "write_timeout", "100ms");
  EXPECT_EQ(c.transport.writeTimeout, 100 * kj::MILLISECONDS);
  EXPECT_NE(failureOf([&]() { applySetting(c, "write_timeout", "0"); }), "");
  EXPECT_NE(failureOf([&]() { applySetting(c, "write_timeout", "11m"); }), "");
  EXPECT_NE(failureOf([&]() { applySetting(c, "write_timeout", "-1"); }), "");
  EXPECT_NE(failureOf([&]() { applySetting(c, "write_timeout", "5h"); }), "");
  applySetting(c, "max_write_backlog", "65536");
  EXPECT_EQ(c.transport.maxBacklogBytes, 65536u);
  applySetting(c, "max_write_backlog", "1073741824");
  EXPECT_EQ(c.transport.maxBacklogBytes, size_t(1) << 30);
  EXPECT_NE(failureOf([&]() { applySetting(c, "max_write_backlog", "65535"); }), "");
  EXPECT_NE(failureOf([&]() { applySetting(c, "max_write_backlog", "1073741825"); }), "");
}

TEST(Config, ErrorsNameTheProblem) {
  auto c = defaultConfig();
  auto e = failureOf([&]() { applySetting(c, "no_such_key", "1"); });
  EXPECT_NE(e.find("unknown configuration key"), std::string::npos) << e;
  EXPECT_NE(e.find("no_such_key"), std::string::npos) << e;
  e = failureOf([&]() { applyConfigFile(c, "/etc/x.conf", "# ok\nstate_dir = /x\njust words\n"); });
  EXPECT_NE(e.find("not `key = value`"), std::string::npos) << e;
  EXPECT_NE(e.find("3"), std::string::npos) << e;  // the line number
  e = failureOf([&]() { applyConfigFile(c, "/etc/x.conf", "\n\nsocket_mode = abc\n"); });
  EXPECT_NE(e.find("not a number"), std::string::npos) << e;
}

}  // namespace
}  // namespace credvault::daemon
