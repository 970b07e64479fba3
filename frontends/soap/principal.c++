#include "principal.h"

#include "frontends/soap/user.h"

#include <kj/debug.h>

namespace credvault::soap {

using frontends::Failure;
using frontends::makeFailure;

kj::OneOf<LoginRequest, Failure> readLogin(const xml::Element& op, kj::StringPtr ns) {
  LoginRequest req{kj::str(), frontends::SensitiveText()};
  for (kj::StringPtr name : {"UserName"_kj, "Password"_kj}) {
    if (op.count(ns, name) > 1) {
      return makeFailure(rpc::ErrorCode::INVALID_ARGUMENT, name,
                         kj::str(name, " appears more than once"));
    }
  }
  KJ_IF_MAYBE(u, op.child(ns, "UserName")) {
    if (!u->isNil()) req.userName = kj::heapString(u->text);
  }
  KJ_IF_MAYBE(p, op.child(ns, "Password")) {
    if (!p->isNil()) req.password = frontends::SensitiveText(p->text);
  }
  return kj::mv(req);
}

void writeLoginResponse(ResponseWriter& w, const frontends::LoginResult& r) {
  auto& x = w.xml();
  bool ok = r.failure == nullptr;
  w.newline(2);
  x.start(w.q("AuthenticateResponse"));
  w.newline(3);
  if (!ok) {
    x.start(w.q("Response")).attr("xsi:nil", "true").endEmpty();
    w.newline(3);
    x.start(w.q("Credentials")).attr("xsi:nil", "true").endEmpty();
  } else {
    bool system = r.kind == rpc::Kind::SYSTEM;
    x.start(w.q("Response"));
    auto field = [&](kj::StringPtr name, kj::StringPtr value) {
      w.newline(4);
      x.element(w.q(name), value);
    };
    // An empty array (the element without children, as WCF writes one).
    auto empty = [&](kj::StringPtr name) {
      w.newline(4);
      x.start(w.q(name)).end();
    };
    field("UserType", system ? "SystemAssociate" : "InternalAssociate");
    field("Associate", r.name);
    field("AssociateId", kj::str(r.associateId));
    field("IsPerson", "false");
    for (auto name :
         {"PersonId"_kj, "CountryId"_kj, "HomeCountryId"_kj, "ContactId"_kj, "GroupId"_kj,
          "BusinessId"_kj, "CategoryId"_kj, "ContactOwner"_kj, "RoleId"_kj}) {
      field(name, "0");
    }
    field("RoleName", "");
    field("RoleDescription", "");
    field("RoleType", system ? "System" : "Employee");
    empty("Licenses");
    field("FullName", r.name);
    field("EMailAddress", "");
    empty("FunctionRights");
    field("EjUserId", "0");
    field("EjAccessLevel", "0");
    field("EjUserStatus", "StatusNone");
    empty("ProvidedCredentials");
    empty("SecondaryGroups");
    field("DatabaseContextIdentifier", "");
    w.newline(3);
    x.end();
    w.newline(3);
    x.start(w.q("Credentials"));
    w.newline(4);
    x.element(w.q("Ticket"), r.ticket.reveal());
    w.newline(3);
    x.end();
  }
  w.newline(3);
  x.element(w.q("AuthenticationSucceeded"), ok ? "true" : "false");
  w.newline(2);
  x.end();
}

}  // namespace credvault::soap
