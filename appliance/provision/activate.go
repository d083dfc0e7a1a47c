package provision

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/ips/hostbasedsetup"

	"github.com/amtedge/amtedge/appliance/agent"
	"github.com/amtedge/amtedge/appliance/domains"
	"github.com/amtedge/amtedge/appliance/profiles"
	"github.com/amtedge/amtedge/appliance/wsman"
	"github.com/amtedge/amtedge/secrets"
)

// Control modes as AMT and rpc-go number them.
const (
	modePre = 0
	modeCCM = 1
	modeACM = 2
)

// activate is `rpc activate --profile X`: pre-flight checks in RPS's order (§4.1), then the flow the device's
// control mode and the profile call for, then configuration.
func (r *run) activate() outcome {
	pl := r.req.Payload
	if out, bad := r.checkFirmware("activation"); bad {
		return out
	}
	if r.req.Password() == "" {
		return refuse("Device %s activation failed. Missing password.", r.uuid)
	}
	if pl.TLSEnforced {
		return refuse("Device %s activation failed. The device enforces TLS on its local AMT ports (AMT 19 or later); "+
			"this box does not support the TLS-tunnel activation yet, so it did not touch the device.", r.uuid)
	}
	name := r.req.Method.Profile
	if name == "" {
		return refuse("Device %s activation failed. No profile was given: run rpc activate with --profile <name>. Profiles on this box: %s.",
			r.uuid, profileList(r.p.catalog))
	}
	prof, ok := r.p.catalog.Profile(name)
	if !ok {
		return refuse("Device %s activation failed. %s does not match list of available AMT profiles. Profiles on this box: %s.",
			r.uuid, name, profileList(r.p.catalog))
	}
	prof = prof.WithDefaults()

	switch pl.CurrentMode {
	case modePre:
		if prof.IsACM() {
			return r.activateACM(prof)
		}
		return r.activateCCM(prof)
	case modeCCM:
		if prof.IsACM() {
			return r.upgradeToACM(prof)
		}
		return r.reconfigure(prof, "already enabled in client mode.")
	case modeACM:
		if !prof.IsACM() {
			return refuse("Device %s already enabled in admin control mode.", r.uuid)
		}
		return r.reconfigure(prof, "already enabled in admin mode.")
	default:
		return refuse("Device %s activation failed. It is in unknown mode.", r.uuid)
	}
}

// checkFirmware applies RPS's firmware gate (§4.1 step 2).
func (r *run) checkFirmware(what string) (outcome, bool) {
	ver := r.req.Payload.Ver
	major, minor, ok := parseVersion(ver)
	if !ok {
		return refuse("Device %s %s failed. The agent reported AMT version %q, which the box cannot read.", r.uuid, what, clip(ver)), true
	}
	if major < 7 {
		return refuse("Device %s %s failed. AMT version: %s. Version less than 7 cannot be remotely configured ", r.uuid, what, ver), true
	}
	build, _ := strconv.Atoi(r.req.Payload.Build)
	v := fmt.Sprintf("%d.%d", major, minor)
	switch v {
	case "7.0", "7.1", "8.0", "8.1", "9.0", "9.1", "9.5", "10.0", "11.0", "11.5", "11.6":
		if build < 3000 {
			return refuse("Device %s %s failed. Please check with your OEM for a firmware update.", r.uuid, what), true
		}
	}
	return outcome{}, false
}

func parseVersion(v string) (major, minor int, ok bool) {
	parts := strings.SplitN(v, ".", 3)
	major, err := strconv.Atoi(parts[0])
	if err != nil {
		return 0, 0, false
	}
	if len(parts) > 1 {
		if minor, err = strconv.Atoi(parts[1]); err != nil {
			return 0, 0, false
		}
	}
	return major, minor, true
}

// activateCCM: GeneralSettings (realm) → store the password → Setup → re-auth as admin → configure (§4.6).
func (r *run) activateCCM(prof profiles.Profile) outcome {
	fail := func(text string) outcome { return r.activationFailed(text, "CCM") }
	r.connect(r.req.Payload.Username, r.req.Password())
	gs, err := r.readGeneralSettings()
	if err != nil {
		return fail(err.Error())
	}
	amtPassword, _, err := r.newPasswords(prof)
	if err != nil {
		return fail(err.Error())
	}
	if err := r.custodyPending(amtPassword, ""); err != nil {
		return fail(err.Error())
	}
	sent, err := r.setupCall("Setup (client control mode)", "Setup", "device is in client control mode", func() (string, int, error) {
		resp, err := r.ips.HostBasedSetupService.Setup(hostbasedsetup.AdminPassEncryptionTypeHTTPDigestMD5A1, gs.DigestRealm, amtPassword)
		return resp.XMLOutput, int(resp.Body.Setup_OUTPUT.ReturnValue), err
	})
	if err != nil && !r.resolveLostActivation(sent, amtPassword, modeCCM) {
		return fail("Failed to activate in client control mode. " + err.Error())
	}
	r.rec.ModeAfter = modeCCM
	r.custodyMark(secrets.Confirmed)
	r.useAdmin(amtPassword)
	if err := r.waitReady(); err != nil {
		return r.partial("Client control mode.", "CCM", err)
	}
	return r.configureAndReport(prof, "Client control mode.", "CCM")
}

// activateACM: domain → chain → GeneralSettings → suffix pre-check → HostBasedSetupService (nonce) →
// AddNextCertInChain ×N → store the password → AdminSetup → re-auth as admin → MEBx → configure (§4.5).
func (r *run) activateACM(prof profiles.Profile) outcome {
	dom, out, bad := r.chooseDomain()
	if bad {
		return out
	}
	fail := func(text string) outcome { return r.activationFailed(text, "ACM") }
	r.connect(r.req.Payload.Username, r.req.Password())
	realm, mcNonce, sig, err := r.prepareACM(dom, "Failed to activate in admin control mode.", modePre)
	if err != nil {
		return fail(err.Error())
	}
	amtPassword, mebxPassword, err := r.newPasswords(prof)
	if err != nil {
		return fail(err.Error())
	}
	if err := r.custodyPending(amtPassword, ""); err != nil {
		return fail(err.Error())
	}
	sent, err := r.setupCall("AdminSetup (admin control mode)", "AdminSetup", "device is in admin control mode", func() (string, int, error) {
		resp, err := r.ips.HostBasedSetupService.AdminSetup(hostbasedsetup.AdminPassEncryptionTypeHTTPDigestMD5A1, realm,
			amtPassword, base64.StdEncoding.EncodeToString(mcNonce), hostbasedsetup.SigningAlgorithmRSASHA2256,
			base64.StdEncoding.EncodeToString(sig))
		return resp.XMLOutput, int(resp.Body.AdminSetup_OUTPUT.ReturnValue), err
	})
	if err != nil && !r.resolveLostActivation(sent, amtPassword, modeACM) {
		return fail("Failed to activate in admin control mode. " + err.Error())
	}
	r.rec.ModeAfter = modeACM
	r.custodyMark(secrets.Confirmed)
	r.useAdmin(amtPassword)
	if err := r.waitReady(); err != nil {
		return r.partial("Activated to admin control mode.", "ACM", err)
	}
	r.setMEBxPassword(amtPassword, mebxPassword)
	return r.configureAndReport(prof, "Activated to admin control mode.", "ACM")
}

// upgradeToACM: a CCM device with an ACM profile — chain, UpgradeClientToAdmin, then the profile's password by
// SetAdminAclEntryEx, MEBx and configuration (§4.7).
func (r *run) upgradeToACM(prof profiles.Profile) outcome {
	if out, bad := r.verifyOperatorPassword(); bad {
		return out
	}
	dom, out, bad := r.chooseDomain()
	if bad {
		return out
	}
	fail := func(text string) outcome { return r.activationFailed(text, "ACM") }
	r.connect("admin", r.req.Password())
	realm, mcNonce, sig, err := r.prepareACM(dom, "Failed to upgrade to admin control mode.", modeCCM)
	if err != nil {
		return fail(err.Error())
	}
	r.confirmOperatorPassword()
	sent, err := r.setupCall("UpgradeClientToAdmin", "UpgradeClientToAdmin", "device is in admin control mode", func() (string, int, error) {
		resp, err := r.ips.HostBasedSetupService.UpgradeClientToAdmin(base64.StdEncoding.EncodeToString(mcNonce),
			hostbasedsetup.SigningAlgorithmRSASHA2256, base64.StdEncoding.EncodeToString(sig))
		return resp.XMLOutput, int(resp.Body.UpgradeClientToAdmin_OUTPUT.ReturnValue), err
	})
	if err != nil && !(sent && r.recheckMode("") == modeACM) {
		return fail("Failed to upgrade to admin control mode. " + err.Error())
	}
	r.rec.ModeAfter = modeACM
	amtPassword, mebxPassword, err := r.newPasswords(prof)
	if err != nil {
		return r.partial("Upgraded to admin control mode.", "ACM", err)
	}
	if err := r.setAdminPassword(realm, amtPassword); err != nil {
		return r.partial("Upgraded to admin control mode.", "ACM", err)
	}
	r.setMEBxPassword(amtPassword, mebxPassword)
	return r.configureAndReport(prof, "Upgraded to admin control mode.", "ACM")
}

// reconfigure: an activated device run again with a profile — the profile's password by SetAdminAclEntryEx,
// MEBx (ACM), configuration (§4.8).
func (r *run) reconfigure(prof profiles.Profile, statusText string) outcome {
	if out, bad := r.verifyOperatorPassword(); bad {
		return out
	}
	mode := "CCM"
	if r.req.Payload.CurrentMode == modeACM {
		mode = "ACM"
	}
	r.connect("admin", r.req.Password())
	gs, err := r.readGeneralSettings()
	if err != nil {
		return r.activationFailed(err.Error(), mode)
	}
	r.confirmOperatorPassword()
	amtPassword, mebxPassword, err := r.newPasswords(prof)
	if err != nil {
		return r.activationFailed(err.Error(), mode)
	}
	if err := r.setAdminPassword(gs.DigestRealm, amtPassword); err != nil {
		return r.activationFailed(err.Error(), mode)
	}
	if mode == "ACM" {
		r.setMEBxPassword(amtPassword, mebxPassword)
	}
	return r.configureAndReport(prof, statusText, mode)
}

// prepareACM is what ACM activation and the CCM→ACM upgrade do before their one-shot call: read the realm, check
// the firmware's DNS suffixes against the certificate, read the firmware nonce (the device must be in wantMode),
// inject the chain, and sign the nonces. Errors are texts for the agent, starting with failText.
func (r *run) prepareACM(dom *domains.Domain, failText string, wantMode int) (realm string, mcNonce, sig []byte, err error) {
	gs, err := r.readGeneralSettings()
	if err != nil {
		return "", nil, nil, err
	}
	if err := r.checkFirmwareSuffix(dom); err != nil {
		return "", nil, nil, err
	}
	hbs, err := r.readSetupService("read host-based setup service (nonce)")
	if err != nil {
		return "", nil, nil, err
	}
	if mode := int(hbs.CurrentControlMode); mode != wantMode {
		return "", nil, nil, fmt.Errorf("%s The agent reported control mode %d but the firmware reports %d; run rpc again", failText, wantMode, mode)
	}
	fwNonce, err := base64.StdEncoding.DecodeString(hbs.ConfigurationNonce)
	if err != nil || len(fwNonce) != 20 {
		return "", nil, nil, fmt.Errorf("%s The firmware's configuration nonce %q is not 20 bytes of base64", failText, clip(hbs.ConfigurationNonce))
	}
	if err := r.injectChain(dom); err != nil {
		return "", nil, nil, err
	}
	mcNonce, sig, err = signNonces(dom, fwNonce)
	return gs.DigestRealm, mcNonce, sig, err
}

// callResult is what became of a WSMAN method call.
type callResult int

const (
	callDone    callResult = iota // AMT answered with ReturnValue 0
	callRefused                   // AMT answered with a non-zero ReturnValue: it did not do it
	callUnknown                   // no readable answer: AMT may or may not have done it
)

// classify reads a go-wsman-messages method call: the reply XML, the name of the <Method>_OUTPUT element, its
// ReturnValue and the library's error. Only a reply that holds the output element is an answer; the library
// leaves ReturnValue at 0 when it could not decode one, so "no error and 0" is not enough.
func classify(xmlOutput, outputElem string, rv int, err error) callResult {
	switch {
	case xmlOutput == "" || !strings.Contains(xmlOutput, outputElem):
		return callUnknown
	case rv != 0:
		return callRefused
	case err != nil:
		return callUnknown
	default:
		return callDone
	}
}

// methodStep runs one WSMAN method call as a step: call returns the reply XML, the ReturnValue and the
// library's error; refusal words a non-zero ReturnValue. It returns what became of the call with the step's
// error (nil only for callDone).
func (r *run) methodStep(step, method, done string, call func() (string, int, error), refusal func(rv int) error) (callResult, error) {
	result := callUnknown
	err := r.step(step, func() (string, error) {
		xmlOutput, rv, err := call()
		switch result = classify(xmlOutput, method+"_OUTPUT", rv, err); result {
		case callRefused:
			return "", refusal(rv)
		case callUnknown:
			if err == nil {
				err = fmt.Errorf("the reply holds no %s_OUTPUT", method)
			}
			return "", r.wsmanError(method, err)
		}
		return done, nil
	})
	return result, err
}

// setupCall runs one of the one-shot IPS_HostBasedSetupService calls (Setup, AdminSetup, UpgradeClientToAdmin)
// as a step. sent reports a call that may have reached the device without its answer coming back; a refusal
// is not sent.
func (r *run) setupCall(step, method, done string, call func() (string, int, error)) (sent bool, err error) {
	result, err := r.methodStep(step, method, done, call, func(rv int) error {
		return fmt.Errorf("AMT refused %s: %s", method, setupReturnText(rv))
	})
	return result == callUnknown, err
}

// verifyOperatorPassword compares the operator's password with the stored one, as RPS does with Vault.
func (r *run) verifyOperatorPassword() (outcome, bool) {
	matched, known, err := r.checkStoredPassword(r.req.Password())
	if err != nil {
		return failed(agent.Status{Status: fmt.Sprintf("Device %s: %v. Nothing was sent to the device.", r.uuid, err)}), true
	}
	if known && !matched {
		return refuse("AMT password DOES NOT match stored version for Device %s", r.uuid), true
	}
	return outcome{}, false
}

// chooseDomain picks the domain by the device's DNS suffix and checks its chain against the device's trusted
// roots — all before any WSMAN traffic (§4.1 step 9, §4.2–4.4).
func (r *run) chooseDomain() (*domains.Domain, outcome, bool) {
	pl := r.req.Payload
	if len(pl.CertHashes) == 0 {
		return nil, refuse("Device %s activation failed. Missing certificate hashes from the device.", r.uuid), true
	}
	if strings.TrimSpace(pl.FQDN) == "" {
		return nil, refuse("Device %s activation failed. Missing DNS Suffix. The agent reported no DNS suffix: set the PKI DNS suffix in MEBx, "+
			"give the device a DHCP option 15 suffix, or pass rpc -d <suffix>.", r.uuid), true
	}
	refs := r.p.catalog.Domains()
	suffixes := make([]string, len(refs))
	for i, d := range refs {
		suffixes[i] = d.Suffix
	}
	i, ok := domains.MatchSuffix(pl.FQDN, suffixes)
	if !ok {
		return nil, refuse("Device %s activation failed. Specified AMT domain suffix: %s does not match list of available AMT domain suffixes. Domain suffixes on this box: %s.",
			r.uuid, clip(pl.FQDN), suffixList(refs)), true
	}
	ref := refs[i]
	r.rec.Domain = ref.Name
	var dom *domains.Domain
	err := r.step("load provisioning certificate", func() (string, error) {
		d, err := r.p.domain(r.ctx, ref)
		if err != nil {
			return "", err
		}
		dom = d
		return fmt.Sprintf("domain %s, leaf %s, %d certificates, expires %s", d.Name, d.LeafCN(), len(d.Chain), d.Expires.UTC().Format("2006-01-02")), nil
	})
	if err != nil {
		return nil, failed(agent.Status{Status: fmt.Sprintf("Failed to get amt domain certificate from database. Domain %s: %v", ref.Name, err)}), true
	}
	if err := r.step("check root against device's trusted hashes", func() (string, error) {
		if dom.TrustedBy(pl.CertHashes) {
			return "trusted", nil
		}
		_, sha256Hex, _ := dom.RootHashes()
		return "", fmt.Errorf("Invalid domain certificate, hash does not exists in list of trusted root certificates on AMT. "+
			"The root of domain %s (SHA-256 %s) is not among the %d root hashes the device reported; use a provisioning "+
			"certificate from a CA the firmware trusts, or add the root's hash in MEBx.", dom.Name, sha256Hex, len(pl.CertHashes))
	}); err != nil {
		return nil, failed(agent.Status{Status: err.Error(), Components: components(agent.Component{Result: agent.ResultFailure, Mode: "ACM", Details: sentence(err.Error())})}), true
	}
	return dom, outcome{}, false
}

// checkFirmwareSuffix reads the DNS suffixes the firmware itself will check the certificate against and refuses
// early, naming them, when the chosen certificate cannot match: the most common ACM failure in the field, which RPS
// only reports after AdminSetup fails.
func (r *run) checkFirmwareSuffix(dom *domains.Domain) error {
	return r.step("check device DNS suffix against certificate", func() (string, error) {
		resp, err := r.amt.SetupAndConfigurationService.Get()
		if err != nil {
			return "", r.wsmanError("read the device's DNS suffixes", err)
		}
		dhcp := strings.TrimSuffix(strings.TrimSpace(resp.Body.GetResponse.DhcpDNSSuffix), ".")
		trusted := strings.TrimSuffix(strings.TrimSpace(resp.Body.GetResponse.TrustedDNSSuffix), ".")
		if dhcp == "" && trusted == "" {
			return "the firmware reports neither a DHCP nor a MEBx trusted DNS suffix; AdminSetup will tell", nil
		}
		for _, s := range []string{trusted, dhcp} {
			if s != "" && domains.CertMatchesSuffix(dom.LeafCN(), s) {
				return fmt.Sprintf("certificate %s covers %s", dom.LeafCN(), s), nil
			}
		}
		return "", fmt.Errorf("Failed to activate in admin control mode. The device will refuse the provisioning certificate of domain %s (CN %s): "+
			"the firmware checks it against the DNS suffix from DHCP option 15 (%q) and the PKI DNS suffix set in MEBx (%q), "+
			"while the agent reported %q. Give this network segment the right DHCP option 15, set the suffix in MEBx, or add a domain for %q; nothing was changed on the device.",
			dom.Name, dom.LeafCN(), dhcp, trusted, r.req.Payload.FQDN, firstNonEmpty(trusted, dhcp))
	})
}

// injectChain sends the provisioning chain, leaf first, root last (§4.5 step 3).
func (r *run) injectChain(dom *domains.Domain) error {
	chain := dom.ChainBase64()
	return r.step("inject certificate chain", func() (string, error) {
		for i, cert := range chain {
			resp, err := r.ips.HostBasedSetupService.AddNextCertInChain(cert, i == 0, i == len(chain)-1)
			rv := int(resp.Body.AddNextCertInChain_OUTPUT.ReturnValue)
			switch classify(resp.XMLOutput, "AddNextCertInChain_OUTPUT", rv, err) {
			case callUnknown:
				if err == nil {
					err = errors.New("the reply holds no AddNextCertInChain_OUTPUT")
				}
				return "", r.wsmanError(fmt.Sprintf("add certificate %d of %d to AMT", i+1, len(chain)), err)
			case callRefused:
				return "", fmt.Errorf("Device %s activation failed. Error while adding the certificates to AMT. "+
					"Certificate %d of %d (%s) was refused: %s", r.uuid, i+1, len(chain), certLabel(dom, i), chainReturnText(rv))
			}
		}
		return fmt.Sprintf("%d certificates", len(chain)), nil
	})
}

func certLabel(dom *domains.Domain, i int) string {
	if i < len(dom.Chain) {
		return "CN " + dom.Chain[i].Subject.CommonName
	}
	return "?"
}

// signNonces makes our 20-byte nonce and the signature over firmware nonce ‖ our nonce (§4.5 step 4).
func signNonces(dom *domains.Domain, fwNonce []byte) (mcNonce, sig []byte, err error) {
	mcNonce = make([]byte, 20)
	if _, err := rand.Read(mcNonce); err != nil {
		return nil, nil, fmt.Errorf("make a nonce: %w", err)
	}
	sig, err = dom.Sign(fwNonce, mcNonce)
	if err != nil {
		return nil, nil, fmt.Errorf("sign the activation nonces with the provisioning key of domain %s: %w", dom.Name, err)
	}
	return mcNonce, sig, nil
}

// newPasswords returns the AMT and MEBx passwords the profile gives this device: random per device, or the
// profile's static ones from the Store.
func (r *run) newPasswords(prof profiles.Profile) (amtPassword, mebxPassword string, err error) {
	var static secrets.ProfileSecret
	if !prof.GenerateRandomPassword || (prof.IsACM() && !prof.GenerateRandomMEBxPassword) {
		ctx, cancel := custodyCtx(r.ctx)
		defer cancel()
		static, err = r.p.store.Profile(ctx, prof.ProfileName)
		if err != nil {
			return "", "", fmt.Errorf("read the static passwords of profile %s from the store: %w", prof.ProfileName, err)
		}
	}
	amtPassword = static.AMTPassword
	if prof.GenerateRandomPassword {
		if amtPassword, err = profiles.GeneratePassword(); err != nil {
			return "", "", err
		}
	}
	if prof.IsACM() {
		mebxPassword = static.MEBxPassword
		if prof.GenerateRandomMEBxPassword {
			if mebxPassword, err = profiles.GeneratePassword(); err != nil {
				return "", "", err
			}
		}
	}
	if amtPassword == "" || (prof.IsACM() && mebxPassword == "") {
		return "", "", fmt.Errorf("profile %s has no stored static password; set it again on the box", prof.ProfileName)
	}
	return amtPassword, mebxPassword, nil
}

// setAdminPassword sets the admin password of an activated device (SetAdminAclEntryEx), custody first.
func (r *run) setAdminPassword(realm, password string) error {
	if err := r.custodyPending(password, ""); err != nil {
		return err
	}
	result, err := r.methodStep("set admin password", "SetAdminAclEntryEx", "", func() (string, int, error) {
		resp, err := r.amt.AuthorizationService.SetAdminAclEntryEx("admin", digestPassword(realm, password))
		return resp.XMLOutput, int(resp.Body.SetAdminResponse.ReturnValue), err
	}, func(rv int) error { return fmt.Errorf("AMT refused the new admin password: %s", ptStatusText(rv)) })
	switch {
	case result == callRefused:
		r.custodyMark(secrets.Abandoned)
		return err
	case result == callUnknown && !r.probePassword(password):
		return err
	}
	r.custodyMark(secrets.Confirmed)
	r.useAdmin(password)
	return nil
}

// resolveLostActivation settles a Setup/AdminSetup that failed. A refusal means the device does not hold the
// new password (abandoned). A reply that never came is resolved by re-reading the control mode — the call is
// never sent twice: in the wanted mode it succeeded (true); still pre-provisioned, it did not (abandoned); if
// the mode cannot be read, the password stays pending, so it is not lost whichever way it went.
func (r *run) resolveLostActivation(sent bool, newPassword string, want int) bool {
	if !sent {
		r.custodyMark(secrets.Abandoned)
		return false
	}
	switch r.recheckMode(newPassword) {
	case want:
		return true
	case modePre:
		r.custodyMark(secrets.Abandoned)
	default:
		r.skip("mark passwords", "the device's answer never arrived and its mode could not be read: the new password stays stored as pending")
	}
	return false
}

// probePassword settles a SetAdminAclEntryEx whose reply never came by asking AMT with the new password: accepted
// means the device holds it (true); rejected means it kept the old one (abandoned); no answer leaves it pending.
// A refused call (a reply with a non-zero ReturnValue) needs no probe: it is abandoned.
func (r *run) probePassword(newPassword string) bool {
	r.wsmanConn.SetCredentials(wsman.Credentials{Username: "admin", Password: newPassword})
	err := r.step("check which password the device holds", func() (string, error) {
		_, err := r.amt.GeneralSettings.Get()
		return "", err
	})
	switch {
	case err == nil:
		return true
	case errors.Is(err, wsman.ErrUnauthorized):
		r.useAdmin(r.req.Password())
		r.custodyMark(secrets.Abandoned)
	default:
		r.skip("mark passwords", "the device's answer never arrived: the new password stays stored as pending")
	}
	return false
}

// setMEBxPassword sets the MEBx password of an ACM device, custody first. A failure is reported in the
// Components, not as a failed activation (the device is activated and reachable).
func (r *run) setMEBxPassword(amtPassword, mebxPassword string) {
	if err := r.custodyPending(amtPassword, mebxPassword); err != nil {
		r.mebxErr = err
		return
	}
	result, err := r.methodStep("set MEBx password", "SetMEBxPassword", "", func() (string, int, error) {
		resp, err := r.amt.SetupAndConfigurationService.SetMEBXPassword(mebxPassword)
		return resp.XMLOutput, int(resp.Body.SetMEBxPassword_OUTPUT.ReturnValue), err
	}, func(rv int) error { return fmt.Errorf("AMT refused the MEBx password: %s", ptStatusText(rv)) })
	switch result {
	case callDone:
		r.custodyMark(secrets.Confirmed)
	case callRefused:
		// The device kept its MEBx password; the AMT password of this set it does hold, and the previous,
		// confirmed set has it too.
		r.custodyMark(secrets.Abandoned)
		r.mebxErr = err
	default:
		r.skip("mark passwords", "SetMEBxPassword's answer never arrived: the MEBx password stays stored as pending, so it is not lost")
		r.mebxErr = err
	}
}

// digestPassword is SetAdminAclEntryEx's DigestPassword: base64 of the raw MD5 of admin:realm:password
// (AdminSetup/Setup take the same hash in hex).
func digestPassword(realm, password string) string {
	sum := md5.Sum([]byte("admin:" + realm + ":" + password))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
