package amtsim

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/client"
)

const (
	testUUID  = "4c4c4544-0035-5910-804e-b4c04f564433"
	testRealm = "Digest:62FFAC181B3F3457C5B3894ED21F3E6E"
	testLSAPw = "lsa-secret-0123456789abcdef"
	hbsURI    = ipsSchema + "IPS_HostBasedSetupService"
	gsURI     = amtSchema + "AMT_GeneralSettings"
	sacURI    = amtSchema + "AMT_SetupAndConfigurationService"
)

func simDevice(t testing.TB, cfg DeviceConfig) *Device {
	t.Helper()
	if cfg.UUID == "" {
		cfg.UUID = testUUID
	}
	if cfg.Realm == "" {
		cfg.Realm = testRealm
	}
	if cfg.LSAPassword == "" {
		cfg.LSAPassword = testLSAPw
	}
	d, err := NewDevice(cfg)
	if err != nil {
		t.Fatalf("NewDevice: %v", err)
	}
	return d
}

// ---- hand-built requests ------------------------------------------------------------------------------------

// envelopeXML builds a request envelope the way Appendix A of rps-protocol.md describes it.
func envelopeXML(action, uri, msgID, selectors, body string) string {
	var sel string
	if selectors != "" {
		sel = "<w:SelectorSet>" + selectors + "</w:SelectorSet>"
	}
	return `<?xml version="1.0" encoding="utf-8"?><Envelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ` +
		`xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" ` +
		`xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns="http://www.w3.org/2003/05/soap-envelope">` +
		`<Header><a:Action>` + action + `</a:Action><a:To>/wsman</a:To><w:ResourceURI>` + uri + `</w:ResourceURI>` +
		`<a:MessageID>` + msgID + `</a:MessageID><a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>` +
		`<w:OperationTimeout>PT60S</w:OperationTimeout>` + sel + `</Header><Body>` + body + `</Body></Envelope>`
}

func methodXML(uri, method string, params ...string) string {
	var b strings.Builder
	b.WriteString(`<h:` + method + `_INPUT xmlns:h="` + uri + `">`)
	for i := 0; i+1 < len(params); i += 2 {
		b.WriteString(`<h:` + params[i] + `>` + params[i+1] + `</h:` + params[i] + `>`)
	}
	b.WriteString(`</h:` + method + `_INPUT>`)
	return b.String()
}

// rawRequest lays out an HTTP request byte for byte like RPS (§2.6): Authorization first, Host, chunked body as one
// chunk whose size is the UTF-8 byte length.
func rawRequest(host, auth, body string) []byte {
	var b strings.Builder
	b.WriteString("POST /wsman HTTP/1.1\r\n")
	if auth != "" {
		b.WriteString("Authorization: " + auth + "\r\n")
	}
	b.WriteString("Host: " + host + "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
	fmt.Fprintf(&b, "%X\r\n%s\r\n0\r\n\r\n", len(body), body)
	return []byte(b.String())
}

func md5hexT(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// digestHeader computes an Authorization header like RPS does (every value quoted).
func digestHeader(user, pass, realm, nonce string, nc int, cnonce string) string {
	ha1 := md5hexT(user + ":" + realm + ":" + pass)
	ha2 := md5hexT("POST:/wsman")
	ncs := fmt.Sprintf("%08x", nc)
	resp := md5hexT(ha1 + ":" + nonce + ":" + ncs + ":" + cnonce + ":auth:" + ha2)
	return fmt.Sprintf(`Digest username="%s",realm="%s",nonce="%s",uri="/wsman",qop="auth",response="%s",nc="%s",cnonce="%s"`,
		user, realm, nonce, resp, ncs, cnonce)
}

// httpReply is a parsed firmware reply.
type httpReply struct {
	status int
	header http.Header
	body   []byte
	raw    []byte
}

// parseReply parses a raw reply with net/http, an independent de-chunker.
func parseReply(t testing.TB, raw []byte) httpReply {
	t.Helper()
	if raw == nil {
		t.Fatal("no reply")
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		t.Fatalf("reply is not HTTP: %v\n%s", err, raw)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading reply body: %v\n%s", err, raw)
	}
	return httpReply{status: resp.StatusCode, header: resp.Header, body: body, raw: raw}
}

// challengeParams extracts realm, nonce and stale from a 401.
func challengeParams(t testing.TB, r httpReply) (realm, nonce, stale string) {
	t.Helper()
	h := r.header.Get("WWW-Authenticate")
	p, ok := parseDigest(h)
	if !ok {
		t.Fatalf("bad challenge %q", h)
	}
	for _, part := range strings.Split(h, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "stale="); ok {
			stale = strings.Trim(v, `"`)
		}
	}
	return p.realm, p.nonce, stale
}

// rawClient drives a Device with hand-built requests, doing the digest dance itself.
type rawClient struct {
	t          testing.TB
	d          *Device
	user, pass string
	nonce      string
	nc         int
	msgID      int
}

func newRawClient(t testing.TB, d *Device, user, pass string) *rawClient {
	return &rawClient{t: t, d: d, user: user, pass: pass}
}

func (c *rawClient) exchange(raw []byte) httpReply {
	c.t.Helper()
	out, err := c.d.Exchange(context.Background(), raw)
	if err != nil {
		c.t.Fatalf("Exchange: %v", err)
	}
	return parseReply(c.t, out)
}

// call sends one envelope body (built by build from a message ID) and answers a 401 by authenticating, like RPS.
func (c *rawClient) call(action, uri, selectors, body string) httpReply {
	c.t.Helper()
	c.msgID++
	env := envelopeXML(action, uri, fmt.Sprint(c.msgID), selectors, body)
	for attempt := 0; attempt < 3; attempt++ {
		auth := ""
		if c.nonce != "" {
			c.nc++
			auth = digestHeader(c.user, c.pass, c.d.cfg.Realm, c.nonce, c.nc, fmt.Sprintf("c%d", c.nc))
		}
		r := c.exchange(rawRequest(c.d.cfg.UUID+":16992", auth, env))
		if r.status != 401 {
			return r
		}
		_, c.nonce, _ = challengeParams(c.t, r)
	}
	c.t.Fatalf("%s: still 401 after retries (%s)", action, c.d.Snapshot().LastFailure)
	return httpReply{}
}

func (c *rawClient) get(uri string) httpReply {
	c.t.Helper()
	return c.call(actionGet, uri, "", "")
}

func (c *rawClient) invoke(uri, method string, params ...string) httpReply {
	c.t.Helper()
	return c.call(uri+"/"+method, uri, "", methodXML(uri, method, params...))
}

// returnValueOf reads <…_OUTPUT><ReturnValue> of a 200 reply.
func returnValueOf(t testing.TB, r httpReply) int {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d, want 200:\n%s", r.status, r.body)
	}
	v := xmlValue(t, r.body, "ReturnValue")
	var n int
	if _, err := fmt.Sscan(v, &n); err != nil {
		t.Fatalf("ReturnValue %q: %v", v, err)
	}
	return n
}

// xmlValue returns the text of the first element with the given local name.
func xmlValue(t testing.TB, doc []byte, local string) string {
	t.Helper()
	vals := xmlValues(t, doc, local)
	if len(vals) == 0 {
		t.Fatalf("no <%s> in\n%s", local, doc)
	}
	return vals[0]
}

func xmlValues(t testing.TB, doc []byte, local string) []string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var out []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reply is not XML: %v\n%s", err, doc)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == local {
			var s string
			if err := dec.DecodeElement(&s, &se); err != nil {
				t.Fatalf("decode %s: %v", local, err)
			}
			out = append(out, s)
		}
	}
}

// ---- go-wsman-messages --------------------------------------------------------------------------------------

// exchangeTransport is an http.RoundTripper that turns the library's request into the raw bytes RPS would send
// (chunked, Connection: close), runs Device.Exchange and parses the reply — what the appliance plus rpc-go do.
type exchangeTransport struct{ d *Device }

var errNoReply = errors.New("firmware did not answer")

func (t exchangeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
	}
	raw := rawRequest(req.URL.Host, req.Header.Get("Authorization"), string(body))
	out, err := t.d.Exchange(req.Context(), raw)
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, errNoReply
	}
	return http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), req)
}

func libMessages(d *Device, user, pass string) wsman.Messages {
	return wsman.NewMessages(client.Parameters{
		Target:    d.cfg.UUID,
		Username:  user,
		Password:  pass,
		UseDigest: true,
		Transport: exchangeTransport{d: d},
	})
}

// ---- provisioning certificates ------------------------------------------------------------------------------

var oidAMTProvisioningT = asn1.ObjectIdentifier{2, 16, 840, 1, 113741, 1, 2, 3}

type rsaKey = rsa.PrivateKey

type certKeys struct{ root, inter, leaf, other *rsa.PrivateKey }

var (
	simKeysOnce sync.Once
	simKeys     certKeys
)

// testKeys generates the RSA-2048 keys once per test binary; certificates are cheap to mint from them.
func testKeys(t testing.TB) certKeys {
	t.Helper()
	simKeysOnce.Do(func() {
		gen := func() *rsa.PrivateKey {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			return k
		}
		simKeys = certKeys{root: gen(), inter: gen(), leaf: gen(), other: gen()}
	})
	return simKeys
}

// chainOpts varies the provisioning chain for failure cases.
type chainOpts struct {
	leafCN     string // default "provision.example.com"
	noEKU      bool
	ouInstead  bool // OU "Intel(R) Client Setup Certificate" instead of the EKU
	expired    bool // leaf validity in the past
	rootKey    *rsa.PrivateKey
	leafSigner *rsa.PrivateKey // key that signs the leaf (default intermediate)
}

type testChain struct {
	der     [][]byte // leaf, intermediate, root
	leafKey *rsa.PrivateKey
}

func (c testChain) b64() []string {
	out := make([]string, len(c.der))
	for i, d := range c.der {
		out[i] = base64.StdEncoding.EncodeToString(d)
	}
	return out
}

func (c testChain) rootSHA256() string {
	h := sha256.Sum256(c.der[len(c.der)-1])
	return hex.EncodeToString(h[:])
}

func makeChain(t testing.TB, o chainOpts) testChain {
	t.Helper()
	k := testKeys(t)
	if o.leafCN == "" {
		o.leafCN = "provision.example.com"
	}
	if o.rootKey == nil {
		o.rootKey = k.root
	}
	if o.leafSigner == nil {
		o.leafSigner = k.inter
	}
	now := time.Now()
	rootT := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root CA", Organization: []string{"amtsim"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	rootDER := mustCert(t, rootT, rootT, &o.rootKey.PublicKey, o.rootKey)
	root, _ := x509.ParseCertificate(rootDER)
	interT := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Test Issuing CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	interDER := mustCert(t, interT, root, &k.inter.PublicKey, o.rootKey)
	inter, _ := x509.ParseCertificate(interDER)
	leafT := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: o.leafCN},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if !o.noEKU && !o.ouInstead {
		leafT.UnknownExtKeyUsage = []asn1.ObjectIdentifier{oidAMTProvisioningT}
	}
	if o.ouInstead {
		leafT.Subject.OrganizationalUnit = []string{"Intel(R) Client Setup Certificate"}
	}
	if o.expired {
		leafT.NotBefore, leafT.NotAfter = now.Add(-48*time.Hour), now.Add(-24*time.Hour)
	}
	leafParent := inter
	if o.leafSigner != k.inter {
		// An impostor CA with the intermediate's name: the leaf's issuer name matches, its signature does not.
		fakeDER := mustCert(t, interT, root, &o.leafSigner.PublicKey, o.rootKey)
		leafParent, _ = x509.ParseCertificate(fakeDER)
	}
	leafDER := mustCert(t, leafT, leafParent, &k.leaf.PublicKey, o.leafSigner)
	return testChain{der: [][]byte{leafDER, interDER, rootDER}, leafKey: k.leaf}
}

func mustCert(t testing.TB, tmpl, parent *x509.Certificate, pub *rsa.PublicKey, signer *rsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatalf("CreateCertificate: %v", err)
	}
	return der
}

// sign makes the AdminSetup/UpgradeClientToAdmin signature over fwNonce ‖ mcNonce.
func signNonces(t testing.TB, key *rsa.PrivateKey, fwNonceB64 string, mc []byte) string {
	t.Helper()
	fw, err := base64.StdEncoding.DecodeString(fwNonceB64)
	if err != nil || len(fw) != 20 {
		t.Fatalf("ConfigurationNonce %q is not base64 of 20 bytes", fwNonceB64)
	}
	h := sha256.Sum256(append(fw, mc...))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func newMcNonce() []byte {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return b
}

// newTokenizer yields (local name, is start, is end) for each element event of doc.
func newTokenizer(doc []byte) func() (string, bool, bool, bool) {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	return func() (string, bool, bool, bool) {
		for {
			tok, err := dec.Token()
			if err != nil {
				return "", false, false, false
			}
			switch tt := tok.(type) {
			case xml.StartElement:
				return tt.Name.Local, true, false, true
			case xml.EndElement:
				return tt.Name.Local, false, true, true
			}
		}
	}
}
