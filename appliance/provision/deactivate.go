package provision

import (
	"fmt"

	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/amt/setupandconfiguration"

	"github.com/amtedge/amtedge/appliance/agent"
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
	err := r.step("Unprovision", func() (string, error) {
		resp, err := r.amt.SetupAndConfigurationService.Unprovision(setupandconfiguration.ProvisioningModeValue(1))
		if transportFailed(resp.XMLOutput, err) {
			return "", r.wsmanError("Unprovision", err)
		}
		if rv := int(resp.Body.Unprovision_OUTPUT.ReturnValue); rv != 0 {
			return "", fmt.Errorf("AMT refused Unprovision: %s", ptStatusText(rv))
		}
		return "device is in pre-provisioning mode", nil
	})
	if err != nil {
		return fail(err)
	}
	r.rec.ModeAfter = modePre
	_ = r.step("forget device passwords", func() (string, error) {
		ctx, cancel := custodyCtx(r.ctx)
		defer cancel()
		if err := r.p.store.DeleteDevice(ctx, r.uuid); err != nil && !isNotFound(err) {
			return "", fmt.Errorf("the device is deactivated but its old passwords are still in the store: %w", err)
		}
		return "", nil
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
