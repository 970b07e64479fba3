<?php
// Drives the gateway through PHP's SoapClient (php-soap) in WSDL mode, the client of most
// SuperOffice web integrations. Same protocol as soap-client.js:
// tests/frontends/gateway_clients_test.py writes a script of calls to stdin and checks the
// JSON this prints; this file only makes the calls.
//
// stdin:  {"base", "ns", "soap": "1.1" | "1.2", "calls": [{"service", "op", "args",
//          "ticket": "<kept name>" | {"literal": "7T:..."}, "appToken", "keep"}]}
//          ({"$date": "ISO"} in args is sent as that text: PHP has no date type of its own
//          for xsd:dateTime.)
// stdout: per call {"body", "header", "envelopeNs"} or {"fault"}, as SoapClient decoded them.

function revive($value) {
    if (is_array($value)) {
        if (count($value) === 1 && isset($value['$date'])) return $value['$date'];
        return array_map('revive', $value);
    }
    return $value;
}

$input = json_decode(stream_get_contents(STDIN), true);
$options = [
    'soap_version' => $input['soap'] === '1.2' ? SOAP_1_2 : SOAP_1_1,
    'cache_wsdl' => WSDL_CACHE_NONE,
    'exceptions' => true,
    'trace' => true,
    'features' => SOAP_SINGLE_ELEMENT_ARRAYS,
];
$clients = [];
$tickets = [];
$results = [];
foreach ($input['calls'] as $call) {
    $service = $call['service'];
    if (!isset($clients[$service])) {
        $clients[$service] = new SoapClient($input['base'] . $service . '.svc?wsdl', $options);
    }
    $client = $clients[$service];
    $headers = [];
    if (array_key_exists('appToken', $call)) {
        $headers[] = new SoapHeader($input['ns'], 'ApplicationToken', $call['appToken']);
    }
    if (array_key_exists('ticket', $call)) {
        $ticket = is_string($call['ticket']) ? $tickets[$call['ticket']] : $call['ticket']['literal'];
        $headers[] = new SoapHeader($input['ns'], 'Credentials', ['Ticket' => $ticket]);
    }
    $outputHeaders = [];
    try {
        $body = $client->__soapCall($call['op'], [revive($call['args'] ?? [])], null, $headers,
                                    $outputHeaders);
        if (isset($call['keep']) && isset($body->Credentials->Ticket)) {
            $tickets[$call['keep']] = $body->Credentials->Ticket;
        }
        $ns = null;
        if (preg_match('/<([\w-]+):Envelope\b[^>]*\bxmlns:\1="([^"]+)"/',
                       (string)$client->__getLastRequest(), $m)) {
            $ns = $m[2];
        }
        $results[] = ['body' => $body, 'header' => $outputHeaders, 'envelopeNs' => $ns];
    } catch (SoapFault $f) {
        $results[] = ['fault' => $f->getMessage()];
    }
}
echo json_encode($results, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
