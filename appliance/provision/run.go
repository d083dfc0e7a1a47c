package provision

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/amt"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/amt/authorization"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/amt/ethernetport"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/amt/general"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/amt/redirection"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/amt/setupandconfiguration"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/amt/timesynchronization"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/cim"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/ips"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/ips/hostbasedsetup"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/ips/optin"

	"github.com/amtedge/amtedge/appliance/agent"
	"github.com/amtedge/amtedge/appliance/inventory"
	"github.com/amtedge/amtedge/appliance/wsman"
	"github.com/amtedge/amtedge/secrets"
)

// run is one session's flow: the session, the device's WSMAN client and the record being written.
type run struct {
	p    *Provisioner
	s    *agent.Session
	req  *agent.Request
	ctx  context.Context
	uuid string
	rec  inventory.Record

	exchanges int // WSMAN exchanges relayed, for the record
	user      string
	amt       amtClasses
	ips       ipsClasses
	wsmanConn *wsman.Client

	mebxErr error // why the MEBx password was not set, when it was not

	// settings is AMT_GeneralSettings as read at the start of the flow; configuration reuses it rather than asking
	// again (activation does not change it).
	settings *general.GeneralSettingsResponse

	secrets []string // passwords this run handles; see redact
}

// connect makes the session's WSMAN client with the given digest credentials.
func (r *run) connect(user, password string) {
	r.user = user
	r.remember(password)
	c := wsman.NewClient(r.s, r.uuid, wsman.Credentials{Username: user, Password: password}, wsman.Options{
		RequestTimeout: r.p.cfg.RequestTimeout,
		Attempts:       r.p.cfg.Attempts,
		Observe:        func(wsman.Exchange) { r.exchanges++ },
	}).WithContext(r.ctx)
	r.wsmanConn = c
	a, i := amt.NewMessages(c), ips.NewMessages(c)
	r.amt = amtClasses{GeneralSettings: a.GeneralSettings, SetupAndConfigurationService: a.SetupAndConfigurationService,
		AuthorizationService: a.AuthorizationService, EthernetPortSettings: a.EthernetPortSettings,
		RedirectionService: a.RedirectionService, TimeSynchronizationService: a.TimeSynchronizationService}
	r.ips = ipsClasses{HostBasedSetupService: i.HostBasedSetupService, OptInService: i.OptInService}
}

// amtClasses and ipsClasses are the classes the flows use. A run keeps only these, not the library's message
// builders for every class: thousands of sessions waiting for AMT would each hold them.
type amtClasses struct {
	GeneralSettings              general.Settings
	SetupAndConfigurationService setupandconfiguration.Service
	AuthorizationService         authorization.Service
	EthernetPortSettings         ethernetport.Settings
	RedirectionService           redirection.Service
	TimeSynchronizationService   timesynchronization.Service
}

type ipsClasses struct {
	HostBasedSetupService hostbasedsetup.Service
	OptInService          optin.Service
}

// cim returns the CIM classes' messages. They are made on first use: only configuration needs one of them, and a
// set of message builders per session is memory that thousands of waiting sessions would hold.
func (r *run) cim() cim.Messages {
	return cim.NewMessages(r.wsmanConn)
}

// useAdmin switches the digest credentials to admin and the given password (after Setup/AdminSetup).
func (r *run) useAdmin(password string) {
	r.user = "admin"
	r.wsmanConn.SetCredentials(wsman.Credentials{Username: "admin", Password: password})
}

// step runs one named step, records its result and duration, and shows it as the session's current step.
// fn returns a detail for the record (never a secret).
func (r *run) step(name string, fn func() (string, error)) error {
	r.s.SetStep(name)
	start := time.Now()
	detail, err := fn()
	st := inventory.Step{Name: name, Result: inventory.StepOK, Detail: detail, Duration: time.Since(start)}
	if err != nil {
		st.Result = inventory.StepFailed
		st.Detail = r.redact(err.Error())
	}
	r.rec.Steps = append(r.rec.Steps, st)
	return err
}

// skip records a step that did not run, and why.
func (r *run) skip(name, why string) {
	r.rec.Steps = append(r.rec.Steps, inventory.Step{Name: name, Result: inventory.StepSkipped, Detail: why})
}

var realmPattern = regexp.MustCompile(`^Digest:[0-9A-Fa-f]{32}$`)

// readGeneralSettings reads AMT_GeneralSettings; its DigestRealm is needed for every password hash.
func (r *run) readGeneralSettings() (general.GeneralSettingsResponse, error) {
	var gs general.GeneralSettingsResponse
	err := r.step("read general settings", func() (string, error) {
		resp, err := r.amt.GeneralSettings.Get()
		if err != nil {
			return "", r.wsmanError("read AMT general settings", err)
		}
		gs = resp.Body.GetResponse
		r.settings = &gs
		if !realmPattern.MatchString(gs.DigestRealm) {
			return "", fmt.Errorf("Not a valid digest realm. The device reported %q; AMT realms are \"Digest:\" and 32 hex digits", clip(gs.DigestRealm))
		}
		return "realm " + gs.DigestRealm, nil
	})
	return gs, err
}

// readSetupService reads IPS_HostBasedSetupService: control mode, and the firmware nonce for ACM.
func (r *run) readSetupService(stepName string) (hostbasedsetup.HostBasedSetupService, error) {
	var hbs hostbasedsetup.HostBasedSetupService
	err := r.step(stepName, func() (string, error) {
		resp, err := r.ips.HostBasedSetupService.Get()
		if err != nil {
			return "", r.wsmanError("read the host-based setup service", err)
		}
		hbs = resp.Body.GetResponse
		return fmt.Sprintf("control mode %d, chain status %d", hbs.CurrentControlMode, hbs.CertChainStatus), nil
	})
	return hbs, err
}

// recheckMode re-reads the control mode after a one-shot call (Setup, AdminSetup, UpgradeClientToAdmin) whose
// reply did not arrive: the call is never sent twice. If AMT no longer accepts the old credentials the
// activation took, and the new ones are tried. It returns the mode read, or -1 when it could not be read.
func (r *run) recheckMode(newPassword string) int {
	hbs, err := r.readSetupService("re-read control mode")
	if err != nil && errors.Is(err, wsman.ErrUnauthorized) && newPassword != "" {
		r.useAdmin(newPassword)
		hbs, err = r.readSetupService("re-read control mode as admin")
	}
	if err != nil {
		return -1
	}
	return int(hbs.CurrentControlMode)
}

// waitReady polls AMT as admin with bounded backoff until it answers: after activation the firmware may take a
// moment before it serves the new account (RPS sleeps a fixed 12 s instead).
func (r *run) waitReady() error {
	return r.step("wait for AMT as admin", func() (string, error) {
		deadline := time.Now().Add(r.p.cfg.ReadyTimeout)
		backoff := 100 * time.Millisecond
		tries := 0
		for {
			tries++
			_, err := r.amt.GeneralSettings.Get()
			if err == nil {
				return fmt.Sprintf("answered after %d attempt(s)", tries), nil
			}
			// A 401 is retried too: right after activation the firmware may not serve the new account yet.
			if r.ctx.Err() != nil || time.Now().Add(backoff).After(deadline) {
				return "", r.wsmanError("reach AMT with the new admin password", err)
			}
			select {
			case <-time.After(backoff):
			case <-r.ctx.Done():
				return "", r.ctx.Err()
			}
			backoff = min(backoff*2, 5*time.Second)
		}
	})
}

// wsmanError turns a transport error into a sentence a technician can act on.
func (r *run) wsmanError(what string, err error) error {
	switch {
	case errors.Is(err, wsman.ErrUnauthorized):
		return fmt.Errorf("%s: AMT rejected the credentials of user %q (%w)", what, r.user, err)
	case errors.Is(err, wsman.ErrTimeout):
		return fmt.Errorf("%s: AMT did not answer through the agent in time; check that LMS runs on the device and AMT is enabled (%w)", what, err)
	case errors.Is(err, agent.ErrAgentGone):
		return fmt.Errorf("%s: the agent disconnected (%w)", what, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: the session ran out of time or the box is stopping (%w)", what, err)
	default: // SOAP faults and HTTP errors say what AMT answered
		return fmt.Errorf("%s: %w", what, err)
	}
}

// custodyPending writes the credentials the box is about to send, durably, before the send. A set that does not
// change the MEBx password carries the stored one forward, so it never drifts out of custody into old history.
func (r *run) custodyPending(amtPassword, mebxPassword string) error {
	return r.step("store new passwords (before sending)", func() (string, error) {
		ctx, cancel := custodyCtx(r.ctx)
		defer cancel()
		if mebxPassword == "" {
			dev, err := r.p.store.Device(ctx, r.uuid)
			switch {
			case err == nil:
				mebxPassword = dev.MEBxPassword()
			case !errors.Is(err, secrets.ErrNotFound):
				return "", fmt.Errorf("the box could not read the device's stored passwords, so it did not send a new one: %w", err)
			}
		}
		now := r.p.cfg.Now()
		err := r.p.store.PutDevice(ctx, r.uuid, secrets.Credentials{AMTPassword: amtPassword, MEBxPassword: mebxPassword,
			State: secrets.Pending, Created: now, Updated: now})
		if err != nil {
			return "", fmt.Errorf("the box could not store the device's new password, so it did not send it: %w", err)
		}
		r.remember(amtPassword, mebxPassword)
		return "pending", nil
	})
}

// confirmOperatorPassword records that AMT accepted the operator's password: if it is the device's current,
// still pending set (a reply was lost earlier), the set is now known to be on the device.
func (r *run) confirmOperatorPassword() {
	ctx, cancel := custodyCtx(r.ctx)
	defer cancel()
	dev, err := r.p.store.Device(ctx, r.uuid)
	if err != nil || dev.Current.State != secrets.Pending || dev.Current.AMTPassword != r.req.Password() {
		return
	}
	r.custodyMark(secrets.Confirmed)
}

// remember notes secrets this run handles, so that no device-reported text echoing one reaches a record or the
// agent (a relay can put anything into a fault reason).
func (r *run) remember(secrets ...string) {
	for _, s := range secrets {
		if len(s) >= 4 && !slices.Contains(r.secrets, s) {
			r.secrets = append(r.secrets, s)
		}
	}
}

// redact replaces every remembered secret in s.
func (r *run) redact(s string) string {
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	return s
}

// custodyMark records the device's answer about the credentials sent last.
func (r *run) custodyMark(state secrets.State) {
	_ = r.step("mark passwords "+string(state), func() (string, error) {
		ctx, cancel := custodyCtx(r.ctx)
		defer cancel()
		if err := r.p.store.MarkDevice(ctx, r.uuid, state); err != nil {
			// The pending record stays: the password is still recoverable, only its state is unknown.
			return "", fmt.Errorf("record the device's answer in the store: %w", err)
		}
		return string(state), nil
	})
}

// checkStoredPassword compares the operator's password with what the Store holds for the device (RPS compares
// with Vault). ok=false with a nil error means the Store holds nothing for the device.
func (r *run) checkStoredPassword(given string) (matched bool, known bool, err error) {
	ctx, cancel := custodyCtx(r.ctx)
	defer cancel()
	dev, err := r.p.store.Device(ctx, r.uuid)
	if errors.Is(err, secrets.ErrNotFound) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("read the device's stored password: %w", err)
	}
	cands := dev.Candidates()
	if len(cands) == 0 {
		return false, false, nil
	}
	for _, c := range cands {
		if c == given {
			return true, true, nil
		}
	}
	return false, true, nil
}

// clip shortens a device-reported value for a message.
func clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
