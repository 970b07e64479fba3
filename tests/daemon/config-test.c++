// Tests for daemon/config.h: defaults, the `key = value` file format, every setting's
// bounds, and errors that name the line.

#include "daemon/config.h"
#include "credvault-config.h"

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <kj/exception.h>
#include <kj/filesystem.h>
#include <string>

namespace credvault::daemon {
namespace {

// The error a setting was refused with ("" when it was applied).
std::string errorOf(kj::Maybe<kj::String> error) {
  KJ_IF_MAYBE(e, error) { return e->cStr(); }
  return "";
}

void ok(kj::Maybe<kj::String> error) {
  KJ_IF_MAYBE(e, error) { ADD_FAILURE() << e->cStr(); }
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
  ok(applyConfigFile(c, "/etc/test.conf",
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
                     "password_mem_limit = 65536"));  // no trailing newline
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
  ok(applySetting(c, "system_uids", "42"));
  ASSERT_EQ(c.systemUids.size(), 1u);
  EXPECT_EQ(c.systemUids[0], 42u);
}

TEST(Config, Bounds) {
  auto c = defaultConfig();
  ok(applySetting(c, "socket_mode", "0777"));
  EXPECT_NE(errorOf(applySetting(c, "socket_mode", "1000")), "");
  EXPECT_NE(errorOf(applySetting(c, "socket_mode", "0888")), "");
  ok(applySetting(c, "ticket_lifetime", "60"));
  ok(applySetting(c, "ticket_lifetime", "2592000"));
  EXPECT_NE(errorOf(applySetting(c, "ticket_lifetime", "59")), "");
  EXPECT_NE(errorOf(applySetting(c, "ticket_lifetime", "2592001")), "");
  ok(applySetting(c, "password_ops_limit", "1"));
  ok(applySetting(c, "password_ops_limit", "64"));
  EXPECT_NE(errorOf(applySetting(c, "password_ops_limit", "0")), "");
  EXPECT_NE(errorOf(applySetting(c, "password_ops_limit", "65")), "");
  ok(applySetting(c, "password_mem_limit", "8192"));
  EXPECT_NE(errorOf(applySetting(c, "password_mem_limit", "8191")), "");
  EXPECT_NE(errorOf(applySetting(c, "password_mem_limit", "4294967297")), "");
  EXPECT_NE(errorOf(applySetting(c, "system_uids", "4294967295")), "");
  EXPECT_NE(errorOf(applySetting(c, "system_uids", "-1")), "");
  EXPECT_NE(errorOf(applySetting(c, "system_uids", "12a")), "");
  EXPECT_NE(errorOf(applySetting(c, "ticket_lifetime", "")), "");
  EXPECT_NE(errorOf(applySetting(c, "password_ops_limit", "99999999999999999999999")), "");
  EXPECT_NE(errorOf(applySetting(c, "log_level", "loud")), "");
  EXPECT_NE(errorOf(applySetting(c, "mode", "cloud")), "");
}

TEST(Config, AuditSettings) {
  auto c = defaultConfig();
  ok(applyConfigFile(c, "/etc/test.conf",
                     "audit_log = /var/log/credvault/audit.log\n"
                     "audit_failure = log\n"));
  EXPECT_EQ(KJ_ASSERT_NONNULL(c.auditLog), "/var/log/credvault/audit.log");
  EXPECT_EQ(c.auditFailure, AuditFailureMode::LOG);
  auto options = c.auditOptions();
  EXPECT_EQ(KJ_ASSERT_NONNULL(options.path), "/var/log/credvault/audit.log");
  EXPECT_EQ(options.onFailure, AuditFailureMode::LOG);
  EXPECT_TRUE(options.journal);

  // As `--set` applies them, after the file: back to fail closed, and no file at all.
  ok(applySetting(c, "audit_failure", "refuse"));
  EXPECT_EQ(c.auditFailure, AuditFailureMode::REFUSE);
  ok(applySetting(c, "audit_log", ""));
  EXPECT_EQ(c.auditLog, nullptr);
  EXPECT_EQ(c.auditOptions().path, nullptr);
  EXPECT_EQ(c.auditOptions().onFailure, AuditFailureMode::REFUSE);
}

TEST(Config, AuditSettingsRejectBadValues) {
  auto c = defaultConfig();
  auto e = errorOf(applySetting(c, "audit_log", "audit.log"));
  EXPECT_NE(e.find("audit_log must be an absolute path"), std::string::npos) << e;
  e = errorOf(applySetting(c, "audit_log", "./var/log/audit.log"));
  EXPECT_NE(e.find("absolute"), std::string::npos) << e;
  EXPECT_EQ(c.auditLog, nullptr);  // a rejected value changes nothing

  for (auto bad : {"deny", "Refuse", "", "log,refuse", "ignore"}) {
    e = errorOf(applySetting(c, "audit_failure", bad));
    EXPECT_NE(e.find("audit_failure must be refuse or log"), std::string::npos) << bad << e;
  }
  EXPECT_EQ(c.auditFailure, AuditFailureMode::REFUSE);

  e = errorOf(applyConfigFile(c, "/etc/x.conf", "\naudit_failure = maybe\n"));
  EXPECT_EQ(e, "/etc/x.conf:2: audit_failure must be refuse or log");
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
  ok(applySetting(c, "message_timeout", "100ms"));
  EXPECT_EQ(c.transport.messageTimeout, 100 * kj::MILLISECONDS);
  ok(applySetting(c, "message_timeout", "10m"));
  EXPECT_EQ(c.transport.messageTimeout, 10 * kj::MINUTES);
  EXPECT_NE(errorOf(applySetting(c, "message_timeout", "99ms")), "");
  EXPECT_NE(errorOf(applySetting(c, "message_timeout", "601")), "");
  ok(applySetting(c, "idle_timeout", "0"));
  EXPECT_EQ(c.transport.idleTimeout, nullptr);
  ok(applySetting(c, "idle_timeout", "15s"));
  EXPECT_EQ(KJ_ASSERT_NONNULL(c.transport.idleTimeout), 15 * kj::SECONDS);
  EXPECT_NE(errorOf(applySetting(c, "idle_timeout", "99ms")), "");
  ok(applySetting(c, "write_timeout", "100ms"));
  EXPECT_EQ(c.transport.writeTimeout, 100 * kj::MILLISECONDS);
  EXPECT_NE(errorOf(applySetting(c, "write_timeout", "0")), "");
  EXPECT_NE(errorOf(applySetting(c, "write_timeout", "11m")), "");
  EXPECT_NE(errorOf(applySetting(c, "write_timeout", "-1")), "");
  EXPECT_NE(errorOf(applySetting(c, "write_timeout", "5h")), "");
  ok(applySetting(c, "max_write_backlog", "65536"));
  EXPECT_EQ(c.transport.maxBacklogBytes, 65536u);
  ok(applySetting(c, "max_write_backlog", "1073741824"));
  EXPECT_EQ(c.transport.maxBacklogBytes, size_t(1) << 30);
  EXPECT_NE(errorOf(applySetting(c, "max_write_backlog", "65535")), "");
  EXPECT_NE(errorOf(applySetting(c, "max_write_backlog", "1073741825")), "");
}

TEST(Config, ErrorsNameTheProblem) {
  auto c = defaultConfig();
  auto e = errorOf(applySetting(c, "no_such_key", "1"));
  EXPECT_EQ(e, "unknown setting 'no_such_key'");
  e = errorOf(applyConfigFile(c, "/etc/x.conf", "# ok\nstate_dir = /x\njust words\n"));
  EXPECT_EQ(e, "/etc/x.conf:3: expected `key = value`");
  e = errorOf(applyConfigFile(c, "/etc/x.conf", "\n\nsocket_mode = abc\n"));
  EXPECT_EQ(e, "/etc/x.conf:3: socket_mode must be a whole number (octal)");
  e = errorOf(applyConfigFile(c, "/etc/x.conf", "log_level = info\nlgo_level = debug\n"));
  EXPECT_EQ(e, "/etc/x.conf:2: unknown setting 'lgo_level' (did you mean 'log_level'?)");
  e = errorOf(applyOption(c, "--set", "ticket_lifetme=60"));
  EXPECT_EQ(e, "--set: unknown setting 'ticket_lifetme' (did you mean 'ticket_lifetime'?)");
  e = errorOf(applyOption(c, "--set", "ticket_lifetime=59"));
  EXPECT_EQ(e, "--set: ticket_lifetime must be between 60 seconds and 30 days (2592000)");
  EXPECT_EQ(errorOf(applyOption(c, "--set", "ticket_lifetime")), "--set: expected key=value");
}

}  // namespace
}  // namespace credvault::daemon

namespace credvault::daemon {
namespace {

kj::Vector<kj::String> splitLines(kj::StringPtr text) {
  kj::Vector<kj::String> out;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); i++) {
    if (i == text.size() || text[i] == '\n') {
      out.add(kj::heapString(text.slice(start, i)));
      start = i + 1;
    }
  }
  return out;
}

// The packaged file's comment says `#` starts a comment: it does, after a value too.
TEST(Config, CommentsAfterAValue) {
  auto c = defaultConfig();
  ok(applyConfigFile(c, "/etc/credvault/credvaultd.conf",
                     "log_level = info  # default\n"
                     "mode = online# no space\n"
                     "system_uids = 7, 8   # two\n"
                     "  # indented comment = not a setting\n"));
  EXPECT_EQ(c.logLevel, Level::INFO);
  EXPECT_TRUE(c.onlineMode);
  ASSERT_EQ(c.systemUids.size(), 2u);
  // --set reads a value as the file does.
  ok(applyOption(c, "--set", "log_level = debug # for now"));
  EXPECT_EQ(c.logLevel, Level::DEBUG);
}

// Every setting the packaged credvaultd.conf names (commented-out defaults included) is one
// the daemon knows, and the file loads with each of them uncommented.
TEST(Config, ThePackagedFileLoadsWithEveryDefaultUncommented) {
  auto fs = kj::newDiskFilesystem();
  auto text = fs->getRoot()
                  .openFile(kj::Path::parse(kj::StringPtr(PACKAGED_DAEMON_CONF).slice(1)))
                  ->readAllText();
  auto c = defaultConfig();
  ok(applyConfigFile(c, PACKAGED_DAEMON_CONF, text));
  kj::Vector<kj::String> lines;
  size_t uncommented = 0;
  for (auto& line : splitLines(text)) {
    if (line.size() > 1 && line[0] == '#' && line[1] >= 'a' && line[1] <= 'z' &&
        line.findFirst('=') != nullptr) {
      lines.add(kj::heapString(line.slice(1)));
      ++uncommented;
    } else {
      lines.add(kj::heapString(line));
    }
  }
  EXPECT_GT(uncommented, 5u);
  auto d = defaultConfig();
  ok(applyConfigFile(d, PACKAGED_DAEMON_CONF, kj::strArray(lines, "\n")));
}

TEST(Config, StorageDefaultsToLmdb) {
  auto c = defaultConfig();
  EXPECT_EQ(c.storage, Storage::LMDB);
  EXPECT_EQ(c.postgresql, nullptr);
  EXPECT_EQ(c.postgresqlConnections, 4u);
}

TEST(Config, PostgresqlSettings) {
  auto c = defaultConfig();
  ok(applyConfigFile(c, "/etc/x.conf",
                     "storage = postgresql\n"
                     "postgresql = host=db.example.org dbname=credvault user=credvault\n"
                     "postgresql_connections = 8\n"));
  EXPECT_EQ(c.storage, Storage::POSTGRESQL);
  EXPECT_EQ(KJ_ASSERT_NONNULL(c.postgresql), "host=db.example.org dbname=credvault user=credvault");
  EXPECT_EQ(c.postgresqlConnections, 8u);
  ok(applySetting(c, "postgresql", "service=credvault"));
  ok(applySetting(c, "storage", "lmdb"));
  EXPECT_EQ(c.storage, Storage::LMDB);

  EXPECT_EQ(errorOf(applySetting(c, "storage", "sqlite")), "storage must be lmdb or postgresql");
  ok(applySetting(c, "postgresql_connections", "1"));
  ok(applySetting(c, "postgresql_connections", "64"));
  EXPECT_EQ(errorOf(applySetting(c, "postgresql_connections", "0")),
            "postgresql_connections must be between 1 and 64");
  EXPECT_EQ(errorOf(applySetting(c, "postgresql_connections", "65")),
            "postgresql_connections must be between 1 and 64");
}

// The password never lives in the configuration file: a connection string that holds one is
// refused with one line that does not repeat it, and the setting keeps its earlier value.
TEST(Config, PostgresqlRefusesAPasswordWithoutRepeatingIt) {
  const char* withPassword[] = {
      "host=db password=Hunter2-secret dbname=credvault",
      "password=Hunter2-secret",
      "host=db password = Hunter2-secret",
      "host=db password='Hunter2 secret'",
      "postgresql://credvault:Hunter2-secret@db/credvault",
      "postgres://credvault:Hunter2-secret@db:5432/credvault?sslmode=require",
      "postgresql://db/credvault?sslmode=require&password=Hunter2-secret",
  };
  for (auto value : withPassword) {
    auto c = defaultConfig();
    ok(applySetting(c, "postgresql", "service=old"));
    auto error = errorOf(applySetting(c, "postgresql", value));
    EXPECT_NE(error.find("must not hold a password"), std::string::npos) << value;
    EXPECT_EQ(error.find("Hunter2"), std::string::npos) << error;
    EXPECT_EQ(KJ_ASSERT_NONNULL(c.postgresql), "service=old");
  }
  // A file line too: the message names the line, never the value.
  auto c = defaultConfig();
  auto error = errorOf(applyConfigFile(c, "/etc/x.conf", "postgresql = password=Hunter2-secret\n"));
  EXPECT_NE(error.find("/etc/x.conf:1"), std::string::npos) << error;
  EXPECT_EQ(error.find("Hunter2"), std::string::npos) << error;

  const char* withoutPassword[] = {
      "host=db dbname=credvault user=credvault",
      "service=credvault",
      "host=db dbname='pass word' passfile=/etc/x",  // a value or another keyword, not password
      "host=db application_name=password",
      "postgresql://credvault@db/credvault?sslmode=require",
      "postgresql:///credvault?host=/run/postgresql",
  };
  for (auto value : withoutPassword) { EXPECT_FALSE(conninfoHasPassword(value)) << value; }
}

}  // namespace
}  // namespace credvault::daemon
