package provision

import (
	"errors"
	"fmt"
	"net"

	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/amt/ethernetport"

	"github.com/amtedge/amtedge/appliance/agent"
	"github.com/amtedge/amtedge/appliance/inventory"
	"github.com/amtedge/amtedge/appliance/profiles"
	"github.com/amtedge/amtedge/secrets"
)

// maintain is rpc-go 2.x's `maintenance -password P --<task>` (§6.2).
func (r *run) maintain() outcome {
	pl := r.req.Payload
	task := r.req.Method.Task
	if task == "" {
		return refuse("%s - missing maintenance task in message", r.s.ID())
	}
	if pl.CurrentMode <= modePre {
		return refuse("Device %s is in pre-provisioning mode.", r.uuid)
	}
	if pl.CurrentMode > modeACM {
		return refuse("Device %s maintenance failed. It is in unknown mode: %d.", r.uuid, pl.CurrentMode)
	}
	switch task {
	case agent.TaskSyncIP:
		if pl.IPConfiguration == nil {
			return refuse("%s - missing ipConfiguration", r.s.ID())
		}
	case agent.TaskSyncHostname:
		if pl.HostnameInfo == nil {
			return refuse("%s - missing HostnameInfo", r.s.ID())
		}
	case agent.TaskChangePassword, agent.TaskSyncTime, agent.TaskSyncDeviceInfo:
	default:
		return refuse("%s - unknown task %s", r.s.ID(), task)
	}
	if r.req.Password() == "" {
		return refuse("Device %s maintenance failed. Missing password.", r.uuid)
	}
	if out, bad := r.checkPasswordUnlessForced(); bad {
		return out
	}
	r.connect("admin", r.req.Password())
	var detail string
	var err error
	switch task {
	case agent.TaskChangePassword:
		err = r.changePassword()
	case agent.TaskSyncTime:
		err = r.syncClock()
	case agent.TaskSyncIP:
		detail, err = r.syncIP()
	case agent.TaskSyncHostname:
		detail, err = r.syncHostname()
	case agent.TaskSyncDeviceInfo:
		r.rec.Steps = append(r.rec.Steps, stepOK("record device info", fmt.Sprintf("AMT %s build %s, mode %d", pl.Ver, pl.Build, pl.CurrentMode)))
	}
	if err != nil {
		return failed(agent.Status{Status: fmt.Sprintf("%s failed %v", task, err)})
	}
	if task != agent.TaskChangePassword && task != agent.TaskSyncDeviceInfo {
		r.confirmOperatorPassword() // AMT just accepted it
	}
	// "succesfully" is RPS's spelling on the wire; scripts match it.
	st := task + " completed succesfully"
	if detail != "" {
		st += ". " + detail
	}
	return succeeded(agent.Status{Status: st})
}

// changePassword sets a new admin password: the static one given with --changepassword, else a random one.
func (r *run) changePassword() error {
	gs, err := r.readGeneralSettings()
	if err != nil {
		return err
	}
	newPassword := r.req.Method.TaskArg
	if newPassword != "" {
		if err := profiles.CheckPassword(newPassword); err != nil {
			return fmt.Errorf("the new password is not acceptable: %w", err)
		}
	} else if newPassword, err = profiles.GeneratePassword(); err != nil {
		return err
	}
	return r.setAdminPassword(gs.DigestRealm, newPassword)
}

// syncIP applies the host's addressing (from the agent) to AMT's wired port.
func (r *run) syncIP() (string, error) {
	var detail string
	err := r.step("synchronise IP", func() (string, error) {
		wired, ok, err := r.wiredSettings()
		if err != nil {
			return "", err
		}
		if !ok {
			return "", errors.New("Device has no wired configuration settings")
		}
		if wired.MACAddress == "" {
			return "", errors.New("Not applicable for wireless only device")
		}
		ipc := r.req.Payload.IPConfiguration
		req := ethernetport.SettingsRequest{ElementName: wired.ElementName, InstanceID: wired.InstanceID,
			SharedMAC: wired.SharedMAC, LinkIsUp: wired.LinkIsUp}
		if wired.DHCPEnabled {
			req.DHCPEnabled, req.IpSyncEnabled = true, true
			detail = "DHCP: IP sync enabled"
		} else {
			for name, v := range map[string]string{"ipAddress": ipc.IPAddress, "netmask": ipc.Netmask} {
				if net.ParseIP(v) == nil {
					return "", fmt.Errorf("the agent's %s %q is not an IP address", name, clip(v))
				}
			}
			if wired.IPAddress == ipc.IPAddress && wired.SubnetMask == ipc.Netmask && wired.DefaultGateway == ipc.Gateway &&
				wired.PrimaryDNS == ipc.PrimaryDNS && wired.SecondaryDNS == ipc.SecondaryDNS {
				return "", errors.New("IPAddress already synchronized")
			}
			req.IPAddress, req.SubnetMask, req.DefaultGateway = ipc.IPAddress, ipc.Netmask, ipc.Gateway
			req.PrimaryDNS, req.SecondaryDNS = ipc.PrimaryDNS, ipc.SecondaryDNS
			detail = "static " + ipc.IPAddress
		}
		if _, err := r.amt.EthernetPortSettings.Put(wired.InstanceID, req); err != nil {
			return "", r.wsmanError("update the wired port", err)
		}
		return detail, nil
	})
	return detail, err
}

// syncHostname sets AMT's host name to the OS's.
func (r *run) syncHostname() (string, error) {
	var detail string
	err := r.step("synchronise host name", func() (string, error) {
		hi := r.req.Payload.HostnameInfo
		if hi.Hostname == "" {
			return "", errors.New("host name was not provided")
		}
		resp, err := r.amt.GeneralSettings.Get()
		if err != nil {
			return "", r.wsmanError("read general settings", err)
		}
		gs := resp.Body.GetResponse
		if gs.HostName == hi.Hostname {
			return "", errors.New("host name already synchronized")
		}
		req := generalSettingsRequest(gs)
		req.HostName = hi.Hostname
		if _, err := r.amt.GeneralSettings.Put(&req); err != nil {
			return "", r.wsmanError("update general settings", err)
		}
		detail = "host name " + hi.Hostname
		return detail, nil
	})
	return detail, err
}

func stepOK(name, detail string) inventory.Step {
	return inventory.Step{Name: name, Result: inventory.StepOK, Detail: detail}
}

func isNotFound(err error) bool { return errors.Is(err, secrets.ErrNotFound) }
