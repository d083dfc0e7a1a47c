package provision_test

import (
	"context"
	"strings"
	"testing"

	"github.com/amtedge/amtedge/appliance/amtsim"
	"github.com/amtedge/amtedge/secrets"
)

func TestActivateCCM(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	dev := h.device(amtsim.DeviceConfig{DHCPDNSSuffix: corpSuffix})
	res := h.run(amtsim.AgentConfig{Profile: "ccm", Progress: true}, dev)
	if !res.Succeeded() || res.Status != "Client control mode." {
		t.Fatalf("result = %s %q (%v)", res.Method, res.Status, res.Err)
	}
	snap := dev.Snapshot()
	cur := h.current(dev.Config().UUID)
	if snap.Mode != amtsim.ModeCCM || !snap.AdminPasswordIs(cur.AMTPassword) || cur.State != secrets.Confirmed {
		t.Fatalf("device mode %v, store state %s, password matches %v", snap.Mode, cur.State, snap.AdminPasswordIs(cur.AMTPassword))
	}
	if c := res.Components["Activation"]; c.Result != "Success" || c.Mode != "CCM" {
		t.Errorf("Components.Activation = %+v", c)
	}
	if res.Components["WiredNetwork"].Result != "Success" || len(res.Components) != 6 {
		t.Errorf("Components = %+v", res.Components)
	}
	// CCM defaults: consent All, KVM on, SOL/IDER off; clock set; shared FQDN.
	if snap.OptInRequired != 4294967295 || snap.KVMEnabledState != 2 || snap.RedirectionEnabledState != 32768 || !snap.ClockSet || !snap.SharedFQDN {
		t.Errorf("configuration not applied: %+v", snap)
	}
	if len(res.Progress) == 0 {
		t.Error("no progress messages for an agent that advertises them")
	}
}

func TestActivateCCMStaticPasswordAndNoProgressForV3(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	dev := h.device(amtsim.DeviceConfig{DHCPDNSSuffix: corpSuffix})
	res := h.run(amtsim.AgentConfig{Profile: "ccmstatic", Progress: false}, dev)
	if !res.Succeeded() {
		t.Fatalf("result = %s %q (%v)", res.Method, res.Status, res.Err)
	}
	if !dev.Snapshot().AdminPasswordIs(staticAMT) {
		t.Error("device does not hold the profile's static password")
	}
	if len(res.Progress) != 0 {
		t.Errorf("progress sent to an agent that does not advertise it: %v", res.Progress)
	}
}

func TestActivateACM(t *testing.T) {
	for _, tc := range []struct {
		name, suffix, domain string
		chain                int
	}{
		{"3-cert chain", corpSuffix, "corp", 3},
		{"5-cert chain in shuffled PFX bags, subdomain suffix", "site1." + fiveSuffix, "five", 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{})
			dev := h.device(amtsim.DeviceConfig{DHCPDNSSuffix: tc.suffix}, tc.domain)
			res := h.run(amtsim.AgentConfig{Profile: "acm", Progress: true}, dev)
			if !res.Succeeded() || res.Status != "Activated to admin control mode." {
				t.Fatalf("result = %s %q (%v)", res.Method, res.Status, res.Err)
			}
			snap := dev.Snapshot()
			cur := h.current(dev.Config().UUID)
			if snap.Mode != amtsim.ModeACM || !snap.AdminPasswordIs(cur.AMTPassword) || snap.MEBxPassword != cur.MEBxPassword || cur.State != secrets.Confirmed {
				t.Fatalf("mode %v, state %s, admin ok %v, mebx ok %v", snap.Mode, cur.State, snap.AdminPasswordIs(cur.AMTPassword), snap.MEBxPassword == cur.MEBxPassword)
			}
			if len(snap.ChainInstalled) != tc.chain {
				t.Errorf("chain of %d certificates installed, want %d", len(snap.ChainInstalled), tc.chain)
			}
			if c := res.Components["Activation"]; c.Result != "Success" || c.Mode != "ACM" || c.Details != "" {
				t.Errorf("Components.Activation = %+v", c)
			}
			// Profile: SOL on, consent None.
			if snap.RedirectionEnabledState != 32770 || snap.OptInRequired != 0 {
				t.Errorf("features: redirection %d consent %d", snap.RedirectionEnabledState, snap.OptInRequired)
			}
			recs := h.inv.Device(dev.Config().UUID)
			if len(recs) != 1 || !recs[0].Success || recs[0].Domain != tc.domain || recs[0].ModeAfter != 2 {
				t.Errorf("record = %+v", recs)
			}
		})
	}
}

func TestActivateACMTrustedSuffixAndStaticAddressing(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	// DHCP gave an unrelated suffix, but the MEBx trusted suffix matches: the firmware accepts that.
	dev := h.device(amtsim.DeviceConfig{DHCPDNSSuffix: "other.test", TrustedDNSSuffix: corpSuffix}, "corp")
	res := h.run(amtsim.AgentConfig{Profile: "acmstatic"}, dev)
	if !res.Succeeded() {
		t.Fatalf("result = %s %q (%v)", res.Method, res.Status, res.Err)
	}
	snap := dev.Snapshot()
	if !snap.AdminPasswordIs(staticAMT) || snap.MEBxPassword != staticMEBx {
		t.Error("static passwords not set")
	}
	if snap.DHCPEnabled || !snap.IpSyncEnabled || !snap.SharedStaticIp {
		t.Errorf("wired: dhcp %v ipsync %v shared %v", snap.DHCPEnabled, snap.IpSyncEnabled, snap.SharedStaticIp)
	}
}

func TestUnsupportedFeaturesAreReported(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	dev := h.device(amtsim.DeviceConfig{DHCPDNSSuffix: corpSuffix}, "corp")
	res := h.run(amtsim.AgentConfig{Profile: "acmwifi"}, dev)
	if !res.Succeeded() {
		t.Fatalf("result = %s %q (%v)", res.Method, res.Status, res.Err)
	}
	if c := res.Components["WirelessNetwork"]; c.Result != "Failure" || !strings.Contains(c.Details, "not supported by this box yet") {
		t.Errorf("WirelessNetwork = %+v", c)
	}
}

func TestUpgradeCCMToACM(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	const old = "Old-Passw0rd!"
	dev := h.device(amtsim.DeviceConfig{DHCPDNSSuffix: corpSuffix, Mode: amtsim.ModeCCM, AdminPassword: old}, "corp")
	res := h.run(amtsim.AgentConfig{Profile: "acm", Password: old}, dev)
	if !res.Succeeded() || res.Status != "Upgraded to admin control mode." {
		t.Fatalf("result = %s %q (%v)", res.Method, res.Status, res.Err)
	}
	snap := dev.Snapshot()
	cur := h.current(dev.Config().UUID)
	if snap.Mode != amtsim.ModeACM || !snap.AdminPasswordIs(cur.AMTPassword) || snap.AdminPasswordIs(old) || snap.MEBxPassword != cur.MEBxPassword {
		t.Fatalf("mode %v, new password set %v", snap.Mode, snap.AdminPasswordIs(cur.AMTPassword))
	}
}

func TestReconfigureActivatedDevice(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	const old = "Old-Passw0rd!"
	dev := h.device(amtsim.DeviceConfig{DHCPDNSSuffix: corpSuffix, Mode: amtsim.ModeACM, AdminPassword: old}, "corp")
	uuid := dev.Config().UUID
	ctx := context.Background()
	if err := h.store.PutDevice(ctx, uuid, secrets.Credentials{AMTPassword: old, State: secrets.Confirmed}); err != nil {
		t.Fatal(err)
	}
	// A wrong password is refused against the store before anything is sent.
	res := h.run(amtsim.AgentConfig{Profile: "acm", Password: "Wrong-Passw0rd!"}, dev)
	if want := "AMT password DOES NOT match stored version for Device " + uuid; res.Method != "error" || res.Status != want {
		t.Fatalf("wrong password: %s %q, want %q", res.Method, res.Status, want)
	}
	res = h.run(amtsim.AgentConfig{Profile: "acm", Password: old}, dev)
	if !res.Succeeded() || res.Status != "already enabled in admin mode." {
		t.Fatalf("result = %s %q (%v)", res.Method, res.Status, res.Err)
	}
	cur := h.current(uuid)
	if !dev.Snapshot().AdminPasswordIs(cur.AMTPassword) || cur.AMTPassword == old {
		t.Fatal("password not rotated to the profile's")
	}
	// A CCM profile on an ACM device is refused as RPS does.
	res = h.run(amtsim.AgentConfig{Profile: "ccm", Password: cur.AMTPassword}, dev)
	if want := "Device " + uuid + " already enabled in admin control mode."; res.Status != want {
		t.Errorf("ccm on acm: %q, want %q", res.Status, want)
	}
}

func TestDeactivate(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	dev := h.device(amtsim.DeviceConfig{DHCPDNSSuffix: corpSuffix}, "corp")
	uuid := dev.Config().UUID
	if res := h.run(amtsim.AgentConfig{Profile: "acm"}, dev); !res.Succeeded() {
		t.Fatalf("activate: %q", res.Status)
	}
	pw := h.current(uuid).AMTPassword

	res := h.run(amtsim.AgentConfig{Command: "deactivate", Password: "Wrong-Passw0rd!"}, dev)
	if want := "AMT password DOES NOT match stored version for Device " + uuid; res.Status != want {
		t.Fatalf("wrong password: %q, want %q", res.Status, want)
	}
	if dev.Snapshot().Mode != amtsim.ModeACM {
		t.Fatal("a refused deactivation changed the device")
	}
	// -f skips the store comparison, but AMT still checks the password: a wrong one ends in an auth failure.
	res = h.run(amtsim.AgentConfig{Command: "deactivate", Password: "Wrong-Passw0rd!", Force: true}, dev)
	if res.Method != "error" || !strings.Contains(res.Status, `AMT rejected the credentials of user "admin"`) {
		t.Fatalf("forced wrong password: %s %q", res.Method, res.Status)
	}
	res = h.run(amtsim.AgentConfig{Command: "deactivate", Password: pw}, dev)
	if !res.Succeeded() || res.Status != "Deactivated" {
		t.Fatalf("deactivate: %s %q", res.Method, res.Status)
	}
	if dev.Snapshot().Mode != amtsim.ModePreProvisioning {
		t.Fatal("device still activated")
	}
	// Unprovision does not reset the MEBx password: the box keeps that one, and no AMT password.
	d, err := h.store.Device(context.Background(), uuid)
	if err != nil || d.MEBxPassword() != dev.Snapshot().MEBxPassword || len(d.Candidates()) != 0 || d.Current.State != secrets.Confirmed {
		t.Fatalf("store after deactivation: %+v %v", d.Current, err)
	}
	res = h.run(amtsim.AgentConfig{Command: "deactivate", Password: pw}, dev)
	if want := "Device " + uuid + " is in pre-provisioning mode."; res.Status != want {
		t.Errorf("deactivate pre-provisioned: %q, want %q", res.Status, want)
	}
}

func TestDeactivateForcedUnknownDevice(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	const pw = "Known-Passw0rd!"
	dev := h.device(amtsim.DeviceConfig{Mode: amtsim.ModeCCM, AdminPassword: pw})
	uuid := dev.Config().UUID
	res := h.run(amtsim.AgentConfig{Command: "deactivate", Password: pw}, dev)
	if !strings.HasPrefix(res.Status, "AMT password DOES NOT match stored version for Device "+uuid+". The box holds no password") {
		t.Fatalf("unknown device without -f: %q", res.Status)
	}
	res = h.run(amtsim.AgentConfig{Command: "deactivate", Password: pw, Force: true}, dev)
	if !res.Succeeded() || dev.Snapshot().Mode != amtsim.ModePreProvisioning {
		t.Fatalf("forced: %s %q", res.Method, res.Status)
	}
}

func TestMaintenance(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	dev := h.device(amtsim.DeviceConfig{DHCPDNSSuffix: corpSuffix, Hostname: "old-name"}, "corp")
	uuid := dev.Config().UUID
	if res := h.run(amtsim.AgentConfig{Profile: "acm"}, dev); !res.Succeeded() {
		t.Fatalf("activate: %q", res.Status)
	}
	maint := func(task, taskArg string, mutate func(*amtsim.AgentConfig)) amtsim.Result {
		cfg := amtsim.AgentConfig{Command: "maintenance", Task: task, TaskArg: taskArg, Password: h.current(uuid).AMTPassword}
		if mutate != nil {
			mutate(&cfg)
		}
		return h.run(cfg, dev)
	}

	res := maint("changepassword", "", nil)
	if !res.Succeeded() || res.Status != "changepassword completed succesfully" {
		t.Fatalf("changepassword: %s %q", res.Method, res.Status)
	}
	if cur := h.current(uuid); !dev.Snapshot().AdminPasswordIs(cur.AMTPassword) || cur.State != secrets.Confirmed {
		t.Fatal("random changepassword not applied and recorded")
	}
	res = maint("changepassword", "Static-New-P4ss!", nil)
	if !res.Succeeded() || !dev.Snapshot().AdminPasswordIs("Static-New-P4ss!") || h.current(uuid).AMTPassword != "Static-New-P4ss!" {
		t.Fatalf("static changepassword: %s %q", res.Method, res.Status)
	}
	res = maint("changepassword", "weak", nil)
	if res.Method != "error" || !strings.HasPrefix(res.Status, "changepassword failed the new password is not acceptable") {
		t.Fatalf("weak static password: %s %q", res.Method, res.Status)
	}

	res = maint("synctime", "", nil)
	if !res.Succeeded() || res.Status != "synctime completed succesfully" || !dev.Snapshot().ClockSet {
		t.Fatalf("synctime: %s %q", res.Method, res.Status)
	}

	res = maint("synchostname", "", func(c *amtsim.AgentConfig) {
		c.HostnameInfo = amtsim.HostnameInfo{Hostname: "new-name", DNSSuffixOS: corpSuffix}
	})
	if !res.Succeeded() || dev.Snapshot().Hostname != "new-name" {
		t.Fatalf("synchostname: %s %q", res.Method, res.Status)
	}
	res = maint("synchostname", "", func(c *amtsim.AgentConfig) { c.HostnameInfo = amtsim.HostnameInfo{Hostname: "new-name"} })
	if res.Status != "synchostname failed host name already synchronized" {
		t.Fatalf("synchostname again: %q", res.Status)
	}

	res = maint("syncip", "", func(c *amtsim.AgentConfig) {
		c.IPConfig = amtsim.IPConfiguration{Static: true, IPAddress: "10.0.0.7", Netmask: "255.255.255.0", Gateway: "10.0.0.1", PrimaryDNS: "10.0.0.2"}
	})
	if !res.Succeeded() {
		t.Fatalf("syncip: %s %q", res.Method, res.Status)
	}

	res = maint("syncdeviceinfo", "", nil)
	if !res.Succeeded() || res.Status != "syncdeviceinfo completed succesfully" {
		t.Fatalf("syncdeviceinfo: %s %q", res.Method, res.Status)
	}

	res = maint("synctime", "", func(c *amtsim.AgentConfig) { c.Password = "Wrong-Passw0rd!" })
	if want := "AMT password DOES NOT match stored version for Device " + uuid; res.Status != want {
		t.Fatalf("wrong password: %q", res.Status)
	}
}

func TestMaintenanceOnPreProvisionedDevice(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	dev := h.device(amtsim.DeviceConfig{})
	res := h.run(amtsim.AgentConfig{Command: "maintenance", Task: "synctime", Password: "Any-Passw0rd!"}, dev)
	if want := "Device " + dev.Config().UUID + " is in pre-provisioning mode."; res.Status != want {
		t.Fatalf("%q, want %q", res.Status, want)
	}
}
