package provision

import (
	"fmt"

	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/amt/setupandconfiguration"

	"github.com/amtedge/amtedge/appliance/agent"
	"github.com/amtedge/amtedge/secrets"
)

// deactivate is `rpc deactivate --password P [-f]`: check the password against the store unless forced, then
// Unprovision (§6.1). Unlike RPS, the ReturnValue is checked, and the stored passwords are dropped only once the
// device confirmed it is back in pre-provisioning mode.
func (r *run) deactivate() outcome {
	pl := r.req.Payload
	switch pl.CurrentMode {
	case modePre:
		return refuse("Device %s is in pre-provisioning mode.", r.uuid)
	case modeCCM, modeACM:
	default:
		return refuse("Device %s deactivation failed. It is in unknown mode: %d.", r.uuid, pl.CurrentMode)
	}
	if out, bad := r.checkFirmware("deactivation"); bad {
		return out
	}
	if r.req.Password() == "" {
		return refuse("Device %s deactivation failed. Missing password.", r.uuid)
	}
	if out, bad := r.checkPasswordUnlessForced(); bad {
		return out
	}
	r.connect("admin", r.req.Password())
	fail := func(err error) outcome {
		return failed(agent.Status{Status: fmt.Sprintf("Device %s deactivation failed. %v", r.uuid, err)})
	}
	_, err := r.methodStep("Unprovision", "Unprovision", "device is in pre-provisioning mode", func() (string, int, error) {
		resp, err := r.amt.SetupAndConfigurationService.Unprovision(setupandconfiguration.ProvisioningModeValue(1))
		return resp.XMLOutput, int(resp.Body.Unprovision_OUTPUT.ReturnValue), err
	}, func(rv int) error { return fmt.Errorf("AMT refused Unprovision: %s", ptStatusText(rv)) })
	if err != nil {
		return fail(err)
	}
	r.rec.ModeAfter = modePre
	_ = r.step("forget the device's AMT password", func() (string, error) {
		ctx, cancel := custodyCtx(r.ctx)
		defer cancel()
		// Unprovision does not reset the MEBx password (Intel's SDK: "The MEBx password is not restored to the
		// default"): the box keeps it, and only it.
		dev, err := r.p.store.Device(ctx, r.uuid)
		if isNotFound(err) {
			return "the box held no passwords for this device", nil
		}
		if err != nil {
			return "", fmt.Errorf("the device is deactivated but the box could not read its stored passwords: %w", err)
		}
		mebx := dev.MEBxPassword()
		if mebx == "" {
			if err := r.p.store.DeleteDevice(ctx, r.uuid); err != nil && !isNotFound(err) {
				return "", fmt.Errorf("the device is deactivated but its old passwords are still in the store: %w", err)
			}
			return "no MEBx password to keep", nil
		}
		now := r.p.cfg.Now()
		if err := r.p.store.PutDevice(ctx, r.uuid, secrets.Credentials{MEBxPassword: mebx, State: secrets.Confirmed, Created: now, Updated: now}); err != nil {
			return "", fmt.Errorf("the device is deactivated but the box could not record it: %w", err)
		}
		return "kept the MEBx password, which Unprovision does not reset", nil
	})
	return succeeded(agent.Status{Status: "Deactivated"})
}

// checkPasswordUnlessForced compares the operator's password with the stored one; -f skips the comparison
// (AMT's digest still checks the password). RPS hangs when its Vault is away here; the box answers.
func (r *run) checkPasswordUnlessForced() (outcome, bool) {
	if r.req.Method.Force {
		r.skip("check password against store", "forced (-f)")
		return outcome{}, false
	}
	matched, known, err := r.checkStoredPassword(r.req.Password())
	if err != nil {
		return failed(agent.Status{Status: fmt.Sprintf("Device %s: %v. Nothing was sent to the device; retry, or use -f to skip the check.", r.uuid, err)}), true
	}
	if !known {
		return refuse("AMT password DOES NOT match stored version for Device %s. The box holds no password for this device; "+
			"re-run with -f to use the given password without the check.", r.uuid), true
	}
	if !matched {
		return refuse("AMT password DOES NOT match stored version for Device %s", r.uuid), true
	}
	r.rec.Steps = append(r.rec.Steps, stepOK("check password against store", "matches"))
	return outcome{}, false
}
