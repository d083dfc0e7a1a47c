package amtsim

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"time"
)

// Return values of the host-based setup methods (rps-protocol.md §4.5–4.7).
const (
	setupSuccess          = 0
	setupInvalidState     = 2
	setupInvalidParam     = 3
	setupCertVerifyFailed = 4 // the simulator's code for every certificate check AdminSetup/Upgrade make
	setupAuthFailed       = 5

	addCertInvalidParam         = 1
	addCertInvalidState         = 3
	addCertChainLengthExceeded  = 5
	maxChainLength              = 10
	configurationNonceBytes     = 20
	ptStatusNotPermitted        = 16
	ptStatusInvalidParameter    = 36
	provisioningModeEnterprise  = "1"
	netAdminPassEncryptionMD5A1 = "2"
	signingAlgorithmRSASHA256   = "2"
)

// oidAMTProvisioning is the extended key usage Intel assigns to AMT provisioning certificates.
var oidAMTProvisioning = asn1.ObjectIdentifier{2, 16, 840, 1, 113741, 1, 2, 3}

// ouAMTProvisioning is the older alternative to the EKU that firmware also accepts: this exact OU in the leaf subject.
const ouAMTProvisioning = "Intel(R) Client Setup Certificate"

func init() {
	register(&classDef{
		name:      "IPS_HostBasedSetupService",
		lsa:       lsaAll,
		instances: hbsInstances,
		methods: map[string]method{
			"Setup":                hbsSetup,
			"AddNextCertInChain":   hbsAddNextCertInChain,
			"AdminSetup":           hbsAdminSetup,
			"UpgradeClientToAdmin": hbsUpgradeClientToAdmin,
		},
	})
	register(&classDef{
		name:      "AMT_SetupAndConfigurationService",
		lsa:       lsaRead,
		instances: setupAndConfigurationInstances,
		methods: map[string]method{
			"CommitChanges":   func(d *Device, in *node) []prop { return returnValue(0) },
			"SetMEBxPassword": setMEBxPassword,
			"Unprovision":     unprovision,
			"GetUuid":         getUUID,
		},
	})
	register(&classDef{
		name: "AMT_AuthorizationService",
		instances: func(d *Device) [][]prop {
			return [][]prop{serviceProps("AMT_AuthorizationService", "Intel(r) AMT Authorization Service")}
		},
		methods: map[string]method{"SetAdminAclEntryEx": setAdminACLEntryEx},
	})
}

// serviceProps are the properties every AMT service instance carries, in AMT's (ASCII) order.
func serviceProps(class, name string) []prop {
	return []prop{
		{"CreationClassName", class},
		{"ElementName", name},
		{"EnabledState", "5"},
		{"Name", name},
		{"RequestedState", "12"},
		{"SystemCreationClassName", "CIM_ComputerSystem"},
		{"SystemName", "Intel(r) AMT"},
	}
}

// hbsInstances renders IPS_HostBasedSetupService. Every read issues a fresh ConfigurationNonce, and the firmware
// remembers only the last one: the signature in AdminSetup must cover exactly that nonce.
func hbsInstances(d *Device) [][]prop {
	nonce := make([]byte, configurationNonceBytes)
	mustRand(nonce)
	d.configNonce = nonce
	return [][]prop{{
		{"AllowedControlModes", "2"},
		{"AllowedControlModes", "1"},
		{"CertChainStatus", itoa(d.chainStatus)},
		{"ConfigurationNonce", base64.StdEncoding.EncodeToString(nonce)},
		{"CreationClassName", "IPS_HostBasedSetupService"},
		{"CurrentControlMode", itoa(int(d.mode))},
		{"ElementName", "Intel(r) AMT Host Based Setup Service"},
		{"Name", "Intel(r) AMT Host Based Setup Service"},
		{"SystemCreationClassName", "CIM_ComputerSystem"},
		{"SystemName", "Intel(r) AMT"},
	}}
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// adminHA1Param validates the encryption type and the HA1 hex of Setup/AdminSetup.
func (d *Device) adminHA1Param(in *node) (string, bool) {
	enc, _ := in.value("NetAdminPassEncryptionType")
	if enc != netAdminPassEncryptionMD5A1 {
		d.fail("setup: NetAdminPassEncryptionType %q, want 2 (HTTP digest MD5 A1)", enc)
		return "", false
	}
	pw, _ := in.value("NetworkAdminPassword")
	if !isHex(pw, 32) {
		d.fail("setup: NetworkAdminPassword is not 32 hex digits (md5 of admin:realm:password)")
		return "", false
	}
	return strings.ToLower(pw), true
}

func hbsSetup(d *Device, in *node) []prop {
	if d.mode != ModePreProvisioning {
		d.fail("setup: Setup is only allowed in pre-provisioning; device is in %s", d.mode)
		return returnValue(setupInvalidState)
	}
	ha1, ok := d.adminHA1Param(in)
	if !ok {
		return returnValue(setupInvalidParam)
	}
	d.adminHA1 = ha1
	d.mode = ModeCCM
	d.chain, d.chainB64, d.chainStatus = nil, nil, 0
	d.expireNonces()
	return returnValue(setupSuccess)
}

// hbsAddNextCertInChain accepts the provisioning chain one certificate at a time, leaf first, root last. It checks
// only structure (decodable DER, flags in order, length); the cryptographic checks happen in AdminSetup and
// UpgradeClientToAdmin, where the whole chain is known. A certificate flagged IsLeafCertificate always starts a new
// chain, so that a console retrying an activation can simply send the chain again.
func hbsAddNextCertInChain(d *Device, in *node) []prop {
	if d.mode == ModeACM {
		d.fail("addcert: the device is already in ACM")
		return returnValue(addCertInvalidState)
	}
	certText, ok1 := in.value("NextCertificate")
	leafText, ok2 := in.value("IsLeafCertificate")
	rootText, ok3 := in.value("IsRootCertificate")
	isLeaf, ok4 := parseBool(leafText)
	isRoot, ok5 := parseBool(rootText)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		d.fail("addcert: NextCertificate, IsLeafCertificate and IsRootCertificate are required")
		return returnValue(addCertInvalidParam)
	}
	der, err := base64.StdEncoding.DecodeString(stripSpace(certText))
	if err != nil {
		d.fail("addcert: NextCertificate is not base64: %v", err)
		return returnValue(addCertInvalidParam)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		d.fail("addcert: NextCertificate is not a DER certificate: %v", err)
		return returnValue(addCertInvalidParam)
	}
	switch {
	case isLeaf:
		d.chain, d.chainB64, d.chainStatus = nil, nil, 0
	case d.chainStatus == 0:
		d.fail("addcert: the first certificate must be flagged IsLeafCertificate")
		return returnValue(addCertInvalidState)
	case d.chainStatus == 2:
		d.fail("addcert: the chain is already complete (root received)")
		return returnValue(addCertInvalidState)
	}
	if len(d.chain) >= maxChainLength {
		d.fail("addcert: chain longer than %d certificates", maxChainLength)
		return returnValue(addCertChainLengthExceeded)
	}
	d.chain = append(d.chain, cert)
	d.chainB64 = append(d.chainB64, stripSpace(certText))
	d.chainStatus = 1
	if isRoot {
		d.chainStatus = 2
	}
	return returnValue(0)
}

func stripSpace(s string) string {
	if !strings.ContainsAny(s, " \t\r\n") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
}

// takeNonce consumes the last ConfigurationNonce. Every AdminSetup/UpgradeClientToAdmin attempt consumes it,
// successful or not, so that a signature can never be replayed against the same nonce.
func (d *Device) takeNonce() []byte {
	n := d.configNonce
	d.configNonce = nil
	return n
}

// signedSetupParams reads McNonce, SigningAlgorithm and DigitalSignature.
func (d *Device) signedSetupParams(in *node) (mc, sig []byte, ok bool) {
	mcText, _ := in.value("McNonce")
	algo, _ := in.value("SigningAlgorithm")
	sigText, _ := in.value("DigitalSignature")
	mc, err := base64.StdEncoding.DecodeString(stripSpace(mcText))
	if err != nil || len(mc) != configurationNonceBytes {
		d.fail("setup: McNonce must be base64 of %d bytes", configurationNonceBytes)
		return nil, nil, false
	}
	if algo != signingAlgorithmRSASHA256 {
		d.fail("setup: SigningAlgorithm %q, want 2 (RSA SHA-256)", algo)
		return nil, nil, false
	}
	sig, err = base64.StdEncoding.DecodeString(stripSpace(sigText))
	if err != nil || len(sig) == 0 {
		d.fail("setup: DigitalSignature is not base64")
		return nil, nil, false
	}
	return mc, sig, true
}

func hbsAdminSetup(d *Device, in *node) []prop {
	if d.mode != ModePreProvisioning {
		d.fail("adminsetup: only allowed in pre-provisioning; device is in %s", d.mode)
		return returnValue(setupInvalidState)
	}
	fwNonce := d.takeNonce()
	ha1, ok := d.adminHA1Param(in)
	if !ok {
		return returnValue(setupInvalidParam)
	}
	mc, sig, ok := d.signedSetupParams(in)
	if !ok {
		return returnValue(setupInvalidParam)
	}
	if code := d.verifyProvisioning(fwNonce, mc, sig); code != setupSuccess {
		return returnValue(code)
	}
	d.adminHA1 = ha1
	d.mode = ModeACM
	d.installChain()
	return returnValue(setupSuccess)
}

func hbsUpgradeClientToAdmin(d *Device, in *node) []prop {
	if d.mode != ModeCCM {
		d.fail("upgrade: only allowed in CCM; device is in %s", d.mode)
		return returnValue(setupInvalidState)
	}
	fwNonce := d.takeNonce()
	mc, sig, ok := d.signedSetupParams(in)
	if !ok {
		return returnValue(setupInvalidParam)
	}
	if code := d.verifyProvisioning(fwNonce, mc, sig); code != setupSuccess {
		return returnValue(code)
	}
	d.mode = ModeACM
	d.installChain()
	return returnValue(setupSuccess)
}

// installChain completes an ACM activation: the chain is kept for Snapshot and the session is dropped.
func (d *Device) installChain() {
	d.chainInstalled = d.chainB64
	d.chain, d.chainB64, d.chainStatus = nil, nil, 0
	d.expireNonces()
}

// deviceNow is the firmware clock, which SetHighAccuracyTimeSynch may have moved away from the host's.
func (d *Device) deviceNow() time.Time {
	return time.Now().Add(time.Duration(d.clockOffset) * time.Second)
}

// verifyProvisioning makes the checks AMT makes before entering ACM: a complete chain whose links verify, a
// self-issued root whose hash is in the firmware's trusted list, a leaf with the provisioning EKU (or OU) whose
// domain covers the network's DNS suffix, every certificate within validity, and an RSA PKCS#1 v1.5 SHA-256
// signature by the leaf key over fwNonce ‖ mcNonce. It returns a ReturnValue and records the reason.
func (d *Device) verifyProvisioning(fwNonce, mcNonce, sig []byte) int {
	if d.chainStatus != 2 {
		d.fail("setup: no complete provisioning certificate chain (CertChainStatus %d)", d.chainStatus)
		return setupInvalidState
	}
	if why := d.chainProblem(); why != "" {
		d.fail("setup: certificate verification failed: %s", why)
		return setupCertVerifyFailed
	}
	if fwNonce == nil {
		d.fail("setup: no ConfigurationNonce outstanding (read IPS_HostBasedSetupService first; each nonce is single-use)")
		return setupAuthFailed
	}
	pub, _ := d.chain[0].PublicKey.(*rsa.PublicKey)
	digest := sha256.Sum256(append(append(make([]byte, 0, 40), fwNonce...), mcNonce...))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		d.fail("setup: DigitalSignature does not verify over ConfigurationNonce‖McNonce with the leaf key")
		return setupAuthFailed
	}
	return setupSuccess
}

// chainProblem returns why the pending chain is unacceptable, or "".
func (d *Device) chainProblem() string {
	chain := d.chain
	now := d.deviceNow()
	for i, c := range chain {
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			return "certificate " + itoa(i) + " (" + c.Subject.CommonName + ") is not valid at " + now.UTC().Format(time.RFC3339)
		}
	}
	for i := 0; i+1 < len(chain); i++ {
		child, parent := chain[i], chain[i+1]
		if !bytes.Equal(child.RawIssuer, parent.RawSubject) {
			return "certificate " + itoa(i) + " (" + child.Subject.CommonName + ") was not issued by the next one (" +
				parent.Subject.CommonName + "): wrong order or missing intermediate"
		}
		if err := checkSignature(child, parent); err != nil {
			return "certificate " + itoa(i) + " (" + child.Subject.CommonName + ") signature: " + err.Error()
		}
	}
	root := chain[len(chain)-1]
	if !bytes.Equal(root.RawIssuer, root.RawSubject) {
		return "the last certificate (" + root.Subject.CommonName + ") is not a self-issued root"
	}
	if !d.rootTrusted(root.Raw) {
		return "root " + root.Subject.CommonName + " is not among the trusted root hashes of the firmware"
	}
	leaf := chain[0]
	if !isProvisioningCert(leaf) {
		return "leaf " + leaf.Subject.CommonName + " has neither the AMT provisioning EKU (2.16.840.1.113741.1.2.3) nor OU \"" + ouAMTProvisioning + "\""
	}
	if _, ok := leaf.PublicKey.(*rsa.PublicKey); !ok {
		return "leaf key is not RSA"
	}
	suffixes := []string{d.cfg.TrustedDNSSuffix, d.cfg.DHCPDNSSuffix}
	matched := false
	for _, s := range suffixes {
		if domainMatches(leaf.Subject.CommonName, s) {
			matched = true
		}
	}
	if !matched {
		return "leaf CN " + leaf.Subject.CommonName + " does not match the DHCP DNS suffix \"" + d.cfg.DHCPDNSSuffix +
			"\" or the trusted DNS suffix \"" + d.cfg.TrustedDNSSuffix + "\""
	}
	return ""
}

// checkSignature verifies child's signature with parent's key, including SHA-1 signed links that crypto/x509
// refuses by policy but older provisioning chains still use.
func checkSignature(child, parent *x509.Certificate) error {
	err := child.CheckSignatureFrom(parent)
	var insecure x509.InsecureAlgorithmError
	if err != nil && errors.As(err, &insecure) && child.SignatureAlgorithm == x509.SHA1WithRSA {
		if !parent.BasicConstraintsValid || !parent.IsCA {
			return errors.New("issuer is not a CA")
		}
		pub, ok := parent.PublicKey.(*rsa.PublicKey)
		if !ok {
			return err
		}
		h := sha1.Sum(child.RawTBSCertificate)
		return rsa.VerifyPKCS1v15(pub, crypto.SHA1, h[:], child.Signature)
	}
	return err
}

func (d *Device) rootTrusted(der []byte) bool {
	var s1, s384 string
	s256 := sha256.Sum256(der)
	h256 := hex.EncodeToString(s256[:])
	for _, t := range d.trusted {
		switch len(t) {
		case 40:
			if s1 == "" {
				h := sha1.Sum(der)
				s1 = hex.EncodeToString(h[:])
			}
			if t == s1 {
				return true
			}
		case 64:
			if t == h256 {
				return true
			}
		case 96:
			if s384 == "" {
				h := sha512.Sum384(der)
				s384 = hex.EncodeToString(h[:])
			}
			if t == s384 {
				return true
			}
		}
	}
	return false
}

func isProvisioningCert(c *x509.Certificate) bool {
	for _, oid := range c.UnknownExtKeyUsage {
		if oid.Equal(oidAMTProvisioning) {
			return true
		}
	}
	for _, ou := range c.Subject.OrganizationalUnit {
		if ou == ouAMTProvisioning {
			return true
		}
	}
	return false
}

// domainMatches is AMT's rule for the leaf CN versus a DNS suffix: the CN (lower-cased, "*." and a trailing dot
// stripped) equals the suffix, or — with D the CN minus its first label, D having at least two labels — the suffix
// is D or ends with "."+D. So "*.example.com" covers only "example.com" (its parent "com" is a single label). The
// appliance's pre-check (domains.CertMatchesSuffix) applies the same rule.
func domainMatches(cn, suffix string) bool {
	cn = strings.TrimSuffix(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(cn)), "*."), ".")
	if cn == "" || suffix == "" {
		return false
	}
	if suffix == cn {
		return true
	}
	_, parent, ok := strings.Cut(cn, ".")
	if !ok || !strings.Contains(parent, ".") {
		return false
	}
	return suffix == parent || strings.HasSuffix(suffix, "."+parent)
}

func setupAndConfigurationInstances(d *Device) [][]prop {
	state := "2" // post-provisioning
	if d.mode == ModePreProvisioning {
		state = "0"
	}
	ps := make([]prop, 0, 14)
	ps = append(ps, prop{"CreationClassName", "AMT_SetupAndConfigurationService"})
	if d.cfg.DHCPDNSSuffix != "" {
		ps = append(ps, prop{"DhcpDNSSuffix", d.cfg.DHCPDNSSuffix})
	}
	ps = append(ps,
		prop{"ElementName", "Intel(r) AMT Setup and Configuration Service"},
		prop{"EnabledState", "5"},
		prop{"Name", "Intel(r) AMT Setup and Configuration Service"},
		prop{"PasswordModel", "1"},
		prop{"ProvisioningMode", "1"},
		prop{"ProvisioningState", state},
		prop{"RequestedState", "12"},
		prop{"SystemCreationClassName", "CIM_ComputerSystem"},
		prop{"SystemName", "Intel(r) AMT"},
	)
	if d.cfg.TrustedDNSSuffix != "" {
		ps = append(ps, prop{"TrustedDNSSuffix", d.cfg.TrustedDNSSuffix})
	}
	ps = append(ps, prop{"ZeroTouchConfigurationEnabled", "true"})
	return [][]prop{ps}
}

// strongPassword is AMT's rule for MEBx (and admin) passwords: 8–32 printable ASCII characters with a digit, a
// lower-case and an upper-case letter and a non-alphanumeric character other than '"', ',' and ':'.
func strongPassword(pw string) bool {
	if len(pw) < 8 || len(pw) > 32 {
		return false
	}
	var digit, lower, upper, special bool
	for i := 0; i < len(pw); i++ {
		c := pw[i]
		switch {
		case c < 0x21 || c > 0x7e:
			return false
		case '0' <= c && c <= '9':
			digit = true
		case 'a' <= c && c <= 'z':
			lower = true
		case 'A' <= c && c <= 'Z':
			upper = true
		case c == '"' || c == ',' || c == ':':
			return false
		default:
			special = true
		}
	}
	return digit && lower && upper && special
}

func setMEBxPassword(d *Device, in *node) []prop {
	if d.mode != ModeACM {
		d.fail("mebx: SetMEBxPassword is only permitted in ACM; device is in %s", d.mode)
		return returnValue(ptStatusNotPermitted)
	}
	c := in.child("Password")
	if c == nil || !strongPassword(c.text) {
		d.fail("mebx: password missing or not strong (8-32 chars, digit, lower, upper, special)")
		return returnValue(ptStatusInvalidParameter)
	}
	d.mebx = c.text
	return returnValue(0)
}

// unprovision returns the device to pre-provisioning: admin credentials cleared, configuration reset; the local
// system account authenticates again. The MEBx password stays: Intel's SDK says a full unprovision does not
// restore it to the default.
func unprovision(d *Device, in *node) []prop {
	if v, _ := in.value("ProvisioningMode"); v != provisioningModeEnterprise {
		d.fail("unprovision: ProvisioningMode %q, want 1", v)
		return returnValue(ptStatusInvalidParameter)
	}
	d.mode = ModePreProvisioning
	d.adminHA1 = ""
	d.configNonce = nil
	d.chainInstalled = nil
	d.resetConfiguration()
	d.expireNonces()
	return returnValue(0)
}

// getUUID returns the raw 16 UUID bytes, the first three groups little-endian as SMBIOS stores them.
func getUUID(d *Device, in *node) []prop {
	b, _ := hex.DecodeString(strings.ReplaceAll(d.cfg.UUID, "-", ""))
	b[0], b[1], b[2], b[3] = b[3], b[2], b[1], b[0]
	b[4], b[5] = b[5], b[4]
	b[6], b[7] = b[7], b[6]
	return []prop{{"UUID", base64.StdEncoding.EncodeToString(b)}, {"ReturnValue", "0"}}
}

func setAdminACLEntryEx(d *Device, in *node) []prop {
	user, _ := in.value("Username")
	if user != "admin" {
		d.fail("acl: the simulator only supports the admin user name \"admin\", got %q", user)
		return returnValue(ptStatusInvalidParameter)
	}
	pwText, _ := in.value("DigestPassword")
	raw, err := base64.StdEncoding.DecodeString(stripSpace(pwText))
	if err != nil || len(raw) != 16 {
		d.fail("acl: DigestPassword must be base64 of the 16-byte md5(admin:realm:password)")
		return returnValue(ptStatusInvalidParameter)
	}
	d.adminHA1 = hex.EncodeToString(raw)
	return returnValue(0)
}
