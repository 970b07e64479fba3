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
  kj::StringPtr p = w.prefix();
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
    x.start(w.q("Response")).attr("xsi:type", kj::str(p, ":SoPrincipalCarrier"));
    auto field = [&](kj::StringPtr name, kj::StringPtr type, kj::StringPtr value) {
      w.newline(4);
      x.element(w.q(name), type, value);
    };
    auto userType = kj::str(p, ":UserType");
    field("UserType", userType, system ? "SystemAssociate" : "InternalAssociate");
    field("Associate", "xsd:string", r.name);
    field("AssociateId", "xsd:int", kj::str(r.associateId));
    field("IsPerson", "xsd:boolean", "false");
    for (auto name :
         {"PersonId"_kj, "CountryId"_kj, "HomeCountryId"_kj, "ContactId"_kj, "GroupId"_kj,
          "BusinessId"_kj, "CategoryId"_kj, "ContactOwner"_kj, "RoleId"_kj}) {
      field(name, "xsd:int", "0");
    }
    field("RoleName", "xsd:string", "");
    field("RoleDescription", "xsd:string", "");
    field("RoleType", kj::str(p, ":RoleType"), system ? "System" : "Employee");
    w.newline(4);
    x.start(w.q("Licenses")).attr("xsi:type", kj::str(p, ":ArrayOfGrantedModuleLicense")).end();
    field("FullName", "xsd:string", r.name);
    field("EMailAddress", "xsd:string", "");
    w.newline(4);
    x.start(w.q("FunctionRights"))
        .attr("xsi:type", kj::str(w.arraysPrefix(), ":ArrayOfstring"))
        .end();
    field("EjUserId", "xsd:int", "0");
    field("EjAccessLevel", "xsd:int", "0");
    field("EjUserStatus", kj::str(p, ":EjUserStatus"), "StatusNone");
    w.newline(4);
    x.start(w.q("ProvidedCredentials"))
        .attr("xsi:type", kj::str(p, ":ArrayOfProvidedCredential"))
        .end();
    w.newline(4);
    x.start(w.q("SecondaryGroups"))
        .attr("xsi:type", kj::str(w.arraysPrefix(), ":ArrayOfint"))
        .end();
    field("DatabaseContextIdentifier", "xsd:string", "");
    w.newline(3);
    x.end();
    w.newline(3);
    x.start(w.q("Credentials")).attr("xsi:type", kj::str(p, ":SoCredentials"));
    w.newline(4);
    x.element(w.q("Ticket"), "xsd:string", r.ticket.reveal());
    w.newline(3);
    x.end();
  }
  w.newline(3);
  x.element(w.q("AuthenticationSucceeded"), "xsd:boolean", ok ? "true" : "false");
  w.newline(2);
  x.end();
}

}  // namespace credvault::soap
