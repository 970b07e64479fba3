#include "wsdl.h"

#include "frontends/common/operations.h"

#include <kj/debug.h>
#include <kj/vector.h>
#include <string.h>

namespace credvault::soap {

namespace {

constexpr kj::StringPtr HEAD =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
    "<wsdl:definitions name=\"@SERVICE@\" targetNamespace=\"@NS@\""
    " xmlns:wsdl=\"http://schemas.xmlsoap.org/wsdl/\" xmlns:tns=\"@NS@\""
    " xmlns:soap=\"http://schemas.xmlsoap.org/wsdl/soap/\""
    " xmlns:soap12=\"http://schemas.xmlsoap.org/wsdl/soap12/\""
    " xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">\n"
    "  <wsdl:types>\n"
    "    <xs:schema elementFormDefault=\"qualified\" targetNamespace=\"@NS@\""
    " xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n"_kj;

// Types every SuperOffice service shares: the request and response headers.
constexpr kj::StringPtr COMMON_TYPES =
    "      <xs:element name=\"ApplicationToken\" nillable=\"true\" type=\"xs:string\" />\n"
    "      <xs:complexType name=\"SoCredentials\">\n"
    "        <xs:sequence>\n"
    "          <xs:element minOccurs=\"0\" name=\"Ticket\" nillable=\"true\" type=\"xs:string\" "
    "/>\n"
    "        </xs:sequence>\n"
    "      </xs:complexType>\n"
    "      <xs:element name=\"SoCredentials\" nillable=\"true\" type=\"tns:SoCredentials\" />\n"
    "      <xs:element name=\"Credentials\" nillable=\"true\" type=\"tns:SoCredentials\" />\n"
    "      <xs:complexType name=\"SoTimeZone\">\n"
    "        <xs:sequence>\n"
    "          <xs:element minOccurs=\"0\" name=\"SoTimeZoneId\" type=\"xs:int\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"SoTimeZoneLocationCode\" nillable=\"true\""
    " type=\"xs:string\" />\n"
    "        </xs:sequence>\n"
    "      </xs:complexType>\n"
    "      <xs:element name=\"TimeZone\" nillable=\"true\" type=\"tns:SoTimeZone\" />\n"
    "      <xs:complexType name=\"SoExceptionInfo\">\n"
    "        <xs:sequence>\n"
    "          <xs:element minOccurs=\"0\" name=\"Message\" nillable=\"true\" type=\"xs:string\" "
    "/>\n"
    "          <xs:element minOccurs=\"0\" name=\"StackTrace\" nillable=\"true\" "
    "type=\"xs:string\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"FriendlyText\" nillable=\"true\" "
    "type=\"xs:string\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"ExceptionType\" nillable=\"true\" "
    "type=\"xs:string\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"Source\" nillable=\"true\" type=\"xs:string\" "
    "/>\n"
    "          <xs:element minOccurs=\"0\" name=\"InnerException\" nillable=\"true\""
    " type=\"tns:SoExceptionInfo\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"Parameters\" nillable=\"true\""
    " type=\"tns:SoExceptionInfoParameters\" />\n"
    "        </xs:sequence>\n"
    "      </xs:complexType>\n"
    "      <xs:complexType name=\"SoExceptionInfoParameters\">\n"
    "        <xs:sequence>\n"
    "          <xs:element minOccurs=\"0\" maxOccurs=\"unbounded\""
    " name=\"SoExceptionInfoParametersKeyValuePair\">\n"
    "            <xs:complexType>\n"
    "              <xs:sequence>\n"
    "                <xs:element name=\"Key\" nillable=\"true\" type=\"xs:string\" />\n"
    "                <xs:element name=\"Value\" nillable=\"true\" type=\"xs:string\" />\n"
    "              </xs:sequence>\n"
    "            </xs:complexType>\n"
    "          </xs:element>\n"
    "        </xs:sequence>\n"
    "      </xs:complexType>\n"
    "      <xs:element name=\"ExceptionInfo\" nillable=\"true\" type=\"tns:SoExceptionInfo\" />\n"
    "      <xs:complexType name=\"SoExtraInfo\">\n"
    "        <xs:sequence>\n"
    "          <xs:element minOccurs=\"0\" maxOccurs=\"unbounded\" "
    "name=\"ExtraInfoNameValuePair\">\n"
    "            <xs:complexType>\n"
    "              <xs:sequence>\n"
    "                <xs:element name=\"Key\" nillable=\"true\" type=\"xs:string\" />\n"
    "                <xs:element name=\"Value\" nillable=\"true\" type=\"xs:string\" />\n"
    "              </xs:sequence>\n"
    "            </xs:complexType>\n"
    "          </xs:element>\n"
    "        </xs:sequence>\n"
    "      </xs:complexType>\n"
    "      <xs:element name=\"ExtraInfo\" nillable=\"true\" type=\"tns:SoExtraInfo\" />\n"
    "      <xs:element name=\"Succeeded\" type=\"xs:boolean\" />\n"_kj;

constexpr kj::StringPtr USER_TYPES =
    "      <xs:complexType name=\"UntrustedCredentials\">\n"
    "        <xs:sequence>\n"
    "          <xs:element minOccurs=\"0\" name=\"ValidFrom\" type=\"xs:dateTime\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"ValidTo\" type=\"xs:dateTime\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"Comment\" nillable=\"true\" type=\"xs:string\" "
    "/>\n"
    "          <xs:element minOccurs=\"0\" name=\"SecretValue\" nillable=\"true\" "
    "type=\"xs:string\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"PublicValue\" nillable=\"true\" "
    "type=\"xs:string\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"IsActive\" type=\"xs:boolean\" />\n"
    "        </xs:sequence>\n"
    "      </xs:complexType>\n"
    "      <xs:element name=\"UntrustedCredentials\" nillable=\"true\""
    " type=\"tns:UntrustedCredentials\" />\n"
    "      <xs:complexType name=\"ArrayOfUntrustedCredentials\">\n"
    "        <xs:sequence>\n"
    "          <xs:element minOccurs=\"0\" maxOccurs=\"unbounded\" name=\"UntrustedCredentials\""
    " nillable=\"true\" type=\"tns:UntrustedCredentials\" />\n"
    "        </xs:sequence>\n"
    "      </xs:complexType>\n"
    "      <xs:element name=\"ArrayOfUntrustedCredentials\" nillable=\"true\""
    " type=\"tns:ArrayOfUntrustedCredentials\" />\n"_kj;

// XML Schema allows imports only before every declaration: PHP's SoapClient (and xmllint)
// refuse a schema with an import after its first element.
constexpr kj::StringPtr PRINCIPAL_IMPORTS =
    "      <xs:import namespace=\"http://schemas.microsoft.com/2003/10/Serialization/Arrays\" />\n"_kj;

constexpr kj::StringPtr PRINCIPAL_TYPES =
    "      <xs:simpleType name=\"UserType\">\n"
    "        <xs:restriction base=\"xs:string\">\n"
    "          <xs:enumeration value=\"Unknown\" />\n"
    "          <xs:enumeration value=\"InternalAssociate\" />\n"
    "          <xs:enumeration value=\"ResourceAssociate\" />\n"
    "          <xs:enumeration value=\"ExternalAssociate\" />\n"
    "          <xs:enumeration value=\"AnonymousAssociate\" />\n"
    "          <xs:enumeration value=\"SystemAssociate\" />\n"
    "        </xs:restriction>\n"
    "      </xs:simpleType>\n"
    "      <xs:simpleType name=\"RoleType\">\n"
    "        <xs:restriction base=\"xs:string\">\n"
    "          <xs:enumeration value=\"Employee\" />\n"
    "          <xs:enumeration value=\"ExternalUser\" />\n"
    "          <xs:enumeration value=\"Anonymous\" />\n"
    "          <xs:enumeration value=\"System\" />\n"
    "        </xs:restriction>\n"
    "      </xs:simpleType>\n"
    "      <xs:simpleType name=\"LicenseType\">\n"
    "        <xs:restriction base=\"xs:string\">\n"
    "          <xs:enumeration value=\"Unknown\" />\n"
    "          <xs:enumeration value=\"SiteLicense\" />\n"
    "          <xs:enumeration value=\"SatelliteLicense\" />\n"
    "          <xs:enumeration value=\"UserLicense\" />\n"
    "        </xs:restriction>\n"
    "      </xs:simpleType>\n"
    "      <xs:simpleType name=\"EjUserStatus\">\n"
    "        <xs:restriction base=\"xs:string\">\n"
    "          <xs:enumeration value=\"StatusNone\" />\n"
    "          <xs:enumeration value=\"StatusNormal\" />\n"
    "          <xs:enumeration value=\"StatusNotAvailable\" />\n"
    "          <xs:enumeration value=\"StatusDeleted\" />\n"
    "          <xs:enumeration value=\"StatusReadOnly\" />\n"
    "          <xs:enumeration value=\"StatusSpm\" />\n"
    "          <xs:enumeration value=\"StatusSystem\" />\n"
    "        </xs:restriction>\n"
    "      </xs:simpleType>\n"
    "      <xs:complexType name=\"GrantedModuleLicense\">\n"
    "        <xs:sequence>\n"
    "          <xs:element minOccurs=\"0\" name=\"OwnerId\" type=\"xs:int\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"OwnerName\" nillable=\"true\" type=\"xs:string\" "
    "/>\n"
    "          <xs:element minOccurs=\"0\" name=\"OwnerDescription\" nillable=\"true\""
    " type=\"xs:string\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"ModuleId\" type=\"xs:int\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"Name\" nillable=\"true\" type=\"xs:string\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"Description\" nillable=\"true\" "
    "type=\"xs:string\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"Version\" nillable=\"true\" type=\"xs:string\" "
    "/>\n"
    "          <xs:element minOccurs=\"0\" name=\"LicenseType\" type=\"tns:LicenseType\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"ExtraFlags\" type=\"xs:int\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"SortOrder\" type=\"xs:int\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"LicenseNumber\" type=\"xs:int\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"IsHidden\" type=\"xs:boolean\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"IsUnrestricted\" type=\"xs:boolean\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"ExpiryDate\" type=\"xs:dateTime\" />\n"
    "        </xs:sequence>\n"
    "      </xs:complexType>\n"
    "      <xs:complexType name=\"ArrayOfGrantedModuleLicense\">\n"
    "        <xs:sequence>\n"
    "          <xs:element minOccurs=\"0\" maxOccurs=\"unbounded\" name=\"GrantedModuleLicense\""
    " nillable=\"true\" type=\"tns:GrantedModuleLicense\" />\n"
    "        </xs:sequence>\n"
    "      </xs:complexType>\n"
    "      <xs:complexType name=\"ProvidedCredential\">\n"
    "        <xs:sequence>\n"
    "          <xs:element minOccurs=\"0\" name=\"Type\" nillable=\"true\" type=\"xs:string\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"SearchName\" nillable=\"true\" "
    "type=\"xs:string\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"DisplayName\" nillable=\"true\" "
    "type=\"xs:string\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"CredentialId\" type=\"xs:int\" />\n"
    "        </xs:sequence>\n"
    "      </xs:complexType>\n"
    "      <xs:complexType name=\"ArrayOfProvidedCredential\">\n"
    "        <xs:sequence>\n"
    "          <xs:element minOccurs=\"0\" maxOccurs=\"unbounded\" name=\"ProvidedCredential\""
    " nillable=\"true\" type=\"tns:ProvidedCredential\" />\n"
    "        </xs:sequence>\n"
    "      </xs:complexType>\n"
    "      <xs:complexType name=\"SoPrincipalCarrier\">\n"
    "        <xs:sequence>\n"
    "          <xs:element minOccurs=\"0\" name=\"UserType\" type=\"tns:UserType\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"Associate\" nillable=\"true\" type=\"xs:string\" "
    "/>\n"
    "          <xs:element minOccurs=\"0\" name=\"AssociateId\" type=\"xs:int\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"IsPerson\" type=\"xs:boolean\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"PersonId\" type=\"xs:int\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"CountryId\" type=\"xs:int\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"HomeCountryId\" type=\"xs:int\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"ContactId\" type=\"xs:int\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"GroupId\" type=\"xs:int\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"BusinessId\" type=\"xs:int\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"CategoryId\" type=\"xs:int\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"ContactOwner\" type=\"xs:int\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"RoleId\" type=\"xs:int\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"RoleName\" nillable=\"true\" type=\"xs:string\" "
    "/>\n"
    "          <xs:element minOccurs=\"0\" name=\"RoleDescription\" nillable=\"true\""
    " type=\"xs:string\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"RoleType\" type=\"tns:RoleType\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"Licenses\" nillable=\"true\""
    " type=\"tns:ArrayOfGrantedModuleLicense\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"FullName\" nillable=\"true\" type=\"xs:string\" "
    "/>\n"
    "          <xs:element minOccurs=\"0\" name=\"EMailAddress\" nillable=\"true\" "
    "type=\"xs:string\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"FunctionRights\" nillable=\"true\""
    " type=\"q1:ArrayOfstring\""
    " xmlns:q1=\"http://schemas.microsoft.com/2003/10/Serialization/Arrays\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"EjUserId\" type=\"xs:int\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"EjAccessLevel\" type=\"xs:int\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"EjUserStatus\" type=\"tns:EjUserStatus\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"ProvidedCredentials\" nillable=\"true\""
    " type=\"tns:ArrayOfProvidedCredential\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"SecondaryGroups\" nillable=\"true\""
    " type=\"q2:ArrayOfint\""
    " xmlns:q2=\"http://schemas.microsoft.com/2003/10/Serialization/Arrays\" />\n"
    "          <xs:element minOccurs=\"0\" name=\"DatabaseContextIdentifier\" nillable=\"true\""
    " type=\"xs:string\" />\n"
    "        </xs:sequence>\n"
    "      </xs:complexType>\n"
    "      <xs:element name=\"AuthenticateUsernamePassword\">\n"
    "        <xs:complexType>\n"
    "          <xs:sequence>\n"
    "            <xs:element minOccurs=\"0\" name=\"UserName\" nillable=\"true\" "
    "type=\"xs:string\" />\n"
    "            <xs:element minOccurs=\"0\" name=\"Password\" nillable=\"true\" "
    "type=\"xs:string\" />\n"
    "          </xs:sequence>\n"
    "        </xs:complexType>\n"
    "      </xs:element>\n"
    "      <xs:element name=\"AuthenticateResponse\">\n"
    "        <xs:complexType>\n"
    "          <xs:sequence>\n"
    "            <xs:element minOccurs=\"0\" name=\"Response\" nillable=\"true\""
    " type=\"tns:SoPrincipalCarrier\" />\n"
    "            <xs:element minOccurs=\"0\" name=\"Credentials\" nillable=\"true\""
    " type=\"tns:SoCredentials\" />\n"
    "            <xs:element minOccurs=\"0\" name=\"AuthenticationSucceeded\" type=\"xs:boolean\" "
    "/>\n"
    "          </xs:sequence>\n"
    "        </xs:complexType>\n"
    "      </xs:element>\n"_kj;

constexpr kj::StringPtr ARRAYS_SCHEMA =
    "    <xs:schema elementFormDefault=\"qualified\""
    " targetNamespace=\"http://schemas.microsoft.com/2003/10/Serialization/Arrays\""
    " xmlns:xs=\"http://www.w3.org/2001/XMLSchema\""
    " xmlns:tns=\"http://schemas.microsoft.com/2003/10/Serialization/Arrays\">\n"
    "      <xs:complexType name=\"ArrayOfstring\">\n"
    "        <xs:sequence>\n"
    "          <xs:element minOccurs=\"0\" maxOccurs=\"unbounded\" name=\"string\" "
    "nillable=\"true\""
    " type=\"xs:string\" />\n"
    "        </xs:sequence>\n"
    "      </xs:complexType>\n"
    "      <xs:complexType name=\"ArrayOfint\">\n"
    "        <xs:sequence>\n"
    "          <xs:element minOccurs=\"0\" maxOccurs=\"unbounded\" name=\"int\" type=\"xs:int\" "
    "/>\n"
    "        </xs:sequence>\n"
    "      </xs:complexType>\n"
    "    </xs:schema>\n"_kj;

kj::String substitute(kj::StringPtr text, kj::StringPtr key, kj::StringPtr value) {
  kj::Vector<char> out;
  const char* p = text.begin();
  const char* end = text.end();
  while (p < end) {
    const char* hit = strstr(p, key.cStr());
    if (hit == nullptr) hit = end;
    out.addAll(kj::ArrayPtr<const char>(p, hit));
    if (hit == end) break;
    out.addAll(value.asArray());
    p = hit + key.size();
  }
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

struct OperationSpec {
  kj::String name;          // operation and request element
  kj::String responseName;  // response element
  kj::String requestHeaders;
  kj::String elements;  // request and response element declarations
};

kj::String userElements(frontends::Op op) {
  using frontends::Op;
  auto name = frontends::opName(op);
  kj::String params;
  auto p = [](kj::StringPtr n, kj::StringPtr type, bool nillable) {
    return kj::str("            <xs:element minOccurs=\"0\" name=\"", n, "\"",
                   nillable ? " nillable=\"true\"" : "", " type=\"", type, "\" />\n");
  };
  if (frontends::opHasAssociate(op)) params = kj::str(params, p("AssociateId", "xs:int", false));
  if (op != Op::CREATE_DEFAULT) params = kj::str(params, p("Type", "xs:string", true));
  if (frontends::opHasCredential(op)) {
    params = kj::str(params, p("Credentials", "tns:UntrustedCredentials", true));
  }
  if (frontends::opHasPublicValue(op))
    params = kj::str(params, p("PublicValue", "xs:string", true));
  kj::String response;
  if (op == Op::CREATE_DEFAULT) response = p("Response", "tns:UntrustedCredentials", true);
  if (frontends::opReturnsList(op))
    response = p("Response", "tns:ArrayOfUntrustedCredentials", true);
  auto seq = [](kj::StringPtr inner) {
    return inner.size() == 0
               ? kj::str("          <xs:sequence />\n")
               : kj::str("          <xs:sequence>\n", inner, "          </xs:sequence>\n");
  };
  return kj::str("      <xs:element name=\"", name, "\">\n        <xs:complexType>\n", seq(params),
                 "        </xs:complexType>\n      </xs:element>\n", "      <xs:element name=\"",
                 name, "Response\">\n        <xs:complexType>\n", seq(response),
                 "        </xs:complexType>\n      </xs:element>\n");
}

kj::String render(kj::StringPtr serviceName, kj::StringPtr portType, kj::StringPtr ns,
                  kj::StringPtr location, kj::StringPtr imports, kj::StringPtr types,
                  kj::StringPtr extraSchemas, kj::ArrayPtr<OperationSpec> ops) {
  kj::Vector<kj::String> parts;
  parts.add(substitute(substitute(HEAD, "@NS@", ns), "@SERVICE@", serviceName));
  parts.add(kj::str(imports));
  parts.add(kj::str(COMMON_TYPES));
  parts.add(kj::str(types));
  for (auto& op : ops) parts.add(kj::str(op.elements));
  parts.add(kj::str("    </xs:schema>\n", extraSchemas, "  </wsdl:types>\n"));

  for (auto& op : ops) {
    parts.add(kj::str("  <wsdl:message name=\"", op.name,
                      "Request\">\n"
                      "    <wsdl:part name=\"parameters\" element=\"tns:",
                      op.name,
                      "\" />\n"
                      "  </wsdl:message>\n"
                      "  <wsdl:message name=\"",
                      op.name, "Request_Headers\">\n", op.requestHeaders,
                      "  </wsdl:message>\n"
                      "  <wsdl:message name=\"",
                      op.name,
                      "Response\">\n"
                      "    <wsdl:part name=\"parameters\" element=\"tns:",
                      op.responseName,
                      "\" />\n"
                      "  </wsdl:message>\n"
                      "  <wsdl:message name=\"",
                      op.name,
                      "Response_Headers\">\n"
                      "    <wsdl:part name=\"ExceptionInfo\" element=\"tns:ExceptionInfo\" />\n"
                      "    <wsdl:part name=\"ExtraInfo\" element=\"tns:ExtraInfo\" />\n"
                      "    <wsdl:part name=\"Succeeded\" element=\"tns:Succeeded\" />\n"
                      "    <wsdl:part name=\"TimeZone\" element=\"tns:TimeZone\" />\n"
                      "  </wsdl:message>\n"));
  }

  parts.add(kj::str("  <wsdl:portType name=\"", portType, "\">\n"));
  for (auto& op : ops) {
    parts.add(kj::str("    <wsdl:operation name=\"", op.name,
                      "\">\n"
                      "      <wsdl:input wsaw:Action=\"",
                      ns, "/", portType, "/", op.name, "\" name=\"", op.name,
                      "Request\" message=\"tns:", op.name,
                      "Request\""
                      " xmlns:wsaw=\"http://www.w3.org/2006/05/addressing/wsdl\" />\n"
                      "      <wsdl:output wsaw:Action=\"",
                      ns, "/", portType, "/", op.name, "Response\" name=\"", op.name,
                      "Response\" message=\"tns:", op.name,
                      "Response\""
                      " xmlns:wsaw=\"http://www.w3.org/2006/05/addressing/wsdl\" />\n"
                      "    </wsdl:operation>\n"));
  }
  parts.add(kj::str("  </wsdl:portType>\n"));

  parts.add(kj::str("  <wsdl:binding name=\"BasicHttpBinding_", portType,
                    "\" type=\"tns:", portType,
                    "\">\n"
                    "    <soap:binding transport=\"http://schemas.xmlsoap.org/soap/http\" />\n"));
  for (auto& op : ops) {
    kj::Vector<kj::String> inHeaders;
    for (kj::StringPtr part : {"ApplicationToken"_kj, "Credentials"_kj, "TimeZone"_kj}) {
      if (strstr(op.requestHeaders.cStr(), kj::str("\"", part, "\"").cStr()) == nullptr) continue;
      inHeaders.add(kj::str("        <soap:header message=\"tns:", op.name,
                            "Request_Headers\" part=\"", part, "\" use=\"literal\" />\n"));
    }
    kj::Vector<kj::String> outHeaders;
    for (kj::StringPtr part : {"ExceptionInfo"_kj, "ExtraInfo"_kj, "Succeeded"_kj, "TimeZone"_kj}) {
      outHeaders.add(kj::str("        <soap:header message=\"tns:", op.name,
                             "Response_Headers\" part=\"", part, "\" use=\"literal\" />\n"));
    }
    parts.add(kj::str("    <wsdl:operation name=\"", op.name,
                      "\">\n"
                      "      <soap:operation soapAction=\"",
                      ns, "/", portType, "/", op.name,
                      "\" style=\"document\" />\n"
                      "      <wsdl:input name=\"",
                      op.name, "Request\">\n", kj::strArray(inHeaders, ""),
                      "        <soap:body use=\"literal\" />\n"
                      "      </wsdl:input>\n"
                      "      <wsdl:output name=\"",
                      op.name, "Response\">\n", kj::strArray(outHeaders, ""),
                      "        <soap:body use=\"literal\" />\n"
                      "      </wsdl:output>\n"
                      "    </wsdl:operation>\n"));
  }
  parts.add(
      kj::str("  </wsdl:binding>\n"
              "  <wsdl:service name=\"",
              serviceName,
              "\">\n"
              "    <wsdl:port name=\"BasicHttpBinding_",
              portType, "\" binding=\"tns:BasicHttpBinding_", portType,
              "\">\n"
              "      <soap:address location=\"",
              location,
              "\" />\n"
              "    </wsdl:port>\n"
              "  </wsdl:service>\n"
              "</wsdl:definitions>\n"));
  return kj::strArray(parts, "");
}

constexpr kj::StringPtr USER_REQUEST_HEADERS =
    "    <wsdl:part name=\"ApplicationToken\" element=\"tns:ApplicationToken\" />\n"
    "    <wsdl:part name=\"Credentials\" element=\"tns:Credentials\" />\n"
    "    <wsdl:part name=\"TimeZone\" element=\"tns:TimeZone\" />\n"_kj;

constexpr kj::StringPtr PRINCIPAL_REQUEST_HEADERS =
    "    <wsdl:part name=\"ApplicationToken\" element=\"tns:ApplicationToken\" />\n"_kj;

}  // namespace

kj::String userWsdl(kj::StringPtr ns, kj::StringPtr location) {
  kj::Vector<OperationSpec> ops;
  for (size_t i = 0; i < frontends::OP_COUNT; i++) {
    auto op = static_cast<frontends::Op>(i);
    auto name = frontends::opName(op);
    ops.add(OperationSpec{kj::str(name), kj::str(name, "Response"), kj::str(USER_REQUEST_HEADERS),
                          userElements(op)});
  }
  return render("WcfUserService", "User", ns, location, "", USER_TYPES, "", ops);
}

kj::String principalWsdl(kj::StringPtr ns, kj::StringPtr location) {
  kj::Vector<OperationSpec> ops;
  ops.add(OperationSpec{kj::str("AuthenticateUsernamePassword"), kj::str("AuthenticateResponse"),
                        kj::str(PRINCIPAL_REQUEST_HEADERS), kj::str()});
  return render("WcfSoPrincipalService", "SoPrincipal", ns, location, PRINCIPAL_IMPORTS,
                PRINCIPAL_TYPES, ARRAYS_SCHEMA, ops);
}

}  // namespace credvault::soap
