package wsman

import "testing"

// The fast header scan must agree with the XML decoder on what go-wsman-messages writes, and step aside for
// anything else.
func TestScanHeaderAgreesWithDecoder(t *testing.T) {
	lib := `<?xml version="1.0" encoding="utf-8"?><Envelope xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns="http://www.w3.org/2003/05/soap-envelope"><Header><a:Action>http://intel.com/wbem/wscim/1/ips-schema/1/IPS_HostBasedSetupService/AdminSetup</a:Action><a:To>/wsman</a:To><w:ResourceURI>http://intel.com/wbem/wscim/1/ips-schema/1/IPS_HostBasedSetupService</w:ResourceURI><a:MessageID>7</a:MessageID></Header><Body><h:AdminSetup_INPUT xmlns:h="x"><h:McNonce>a:Action</h:McNonce></h:AdminSetup_INPUT></Body></Envelope>`
	a1, r1, m1, ok := scanHeader(lib)
	a2, r2, m2 := readHeader(lib)
	if !ok || a1 != a2 || r1 != r2 || m1 != m2 || m1 != "7" {
		t.Fatalf("scan (%q %q %q %v) != decode (%q %q %q)", a1, r1, m1, ok, a2, r2, m2)
	}
	for _, other := range []string{
		`<s:Envelope xmlns:s="x"><s:Header><wsa:Action>y</wsa:Action></s:Header><s:Body/></s:Envelope>`, // other prefixes
		`<Envelope><Header><a:Action>a&amp;b</a:Action><w:ResourceURI>r</w:ResourceURI><a:MessageID>1</a:MessageID></Header><Body/></Envelope>`,
		`no envelope`,
	} {
		if _, _, _, ok := scanHeader(other); ok {
			t.Errorf("scanHeader claimed %q", other)
		}
	}
}
