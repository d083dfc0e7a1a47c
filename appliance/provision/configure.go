package provision

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/amt/ethernetport"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/amt/general"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/amt/redirection"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/cim/kvm"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/ips/optin"

	"github.com/amtedge/amtedge/appliance/agent"
	"github.com/amtedge/amtedge/appliance/profiles"
)

// configureAndReport applies the profile's configuration to an activated device (§5) and builds the success
// status. Configuration failures are reported in Network/Components, as RPS does; they do not turn the terminal
// message into an error because the device is activated and its password is known.
func (r *run) configureAndReport(prof profiles.Profile, statusText, mode string) outcome {
	r.s.Progress("Activation completed")
	activation := agent.Component{Result: agent.ResultSuccess, Mode: mode}
	if r.mebxErr != nil {
		activation.Details = sentence("The MEBx password was not set: " + r.mebxErr.Error())
	}
	comps := components(activation)

	r.s.Progress("Configuring network settings")
	network := "Wired Network Configured"
	if err := r.configureGeneralSettings(); err != nil {
		comps.WiredNetwork = agent.Component{Result: agent.ResultFailure, Details: sentence(err.Error())}
		network = "Wired network configuration failed: " + err.Error()
	} else if err := r.configureWired(prof); err != nil {
		comps.WiredNetwork = agent.Component{Result: agent.ResultFailure, Details: sentence(err.Error())}
		network = "Wired network configuration failed: " + err.Error()
	} else {
		comps.WiredNetwork = agent.Component{Result: agent.ResultSuccess}
		r.s.Progress("Wired network configuration completed")
	}

	r.s.Progress("Configuring AMT features")
	if err := r.configureFeatures(prof); err != nil {
		// Features have no Components key of their own in RPS; the detail goes with the activation.
		activation.Details = joinDetails(activation.Details, "Redirection and user consent were not configured: "+err.Error())
		comps.Activation = agent.Component{Result: activation.Result, Mode: mode, Details: sentence(activation.Details)}
	}
	if err := r.syncClock(); err != nil {
		comps.Activation.Details = sentence(joinDetails(comps.Activation.Details, "The clock was not synchronised: "+err.Error()))
	}

	// What the profile asks for and this box does not apply yet is reported, not skipped silently.
	for _, feature := range prof.Unsupported() {
		detail := feature + " is not supported by this box yet"
		r.skip("configure "+feature, detail)
		c := agent.Component{Result: agent.ResultFailure, Details: detail}
		switch {
		case strings.Contains(feature, "Wi-Fi"):
			comps.WirelessNetwork = c
			network += ". " + detail
		case strings.Contains(feature, "TLS"):
			comps.TLS = c
		case strings.Contains(feature, "CIRA"):
			comps.CIRAConnection = c
		case strings.Contains(feature, "proxies"):
			comps.CIRAProxy = c
		default:
			comps.WiredNetwork = agent.Component{Result: agent.ResultFailure, Details: joinDetails(comps.WiredNetwork.Details, detail)}
			network += ". " + detail
		}
	}
	st := agent.Status{Status: statusText, Network: network, CIRAConnection: "Not Configured", TLSConfiguration: "Not Configured",
		Components: comps}
	if comps.CIRAConnection.Result == agent.ResultFailure {
		st.CIRAConnection = comps.CIRAConnection.Details
	}
	if comps.TLS.Result == agent.ResultFailure {
		st.TLSConfiguration = comps.TLS.Details
	}
	return succeeded(st)
}

// configureGeneralSettings makes AMT's network reachable the way RPS leaves it: shared FQDN, AMT network
// enabled, RMCP ping answered.
func (r *run) configureGeneralSettings() error {
	return r.step("configure general settings", func() (string, error) {
		if r.settings == nil {
			resp, err := r.amt.GeneralSettings.Get()
			if err != nil {
				return "", r.wsmanError("read general settings", err)
			}
			r.settings = &resp.Body.GetResponse
		}
		gs := *r.settings
		if gs.SharedFQDN && gs.AMTNetworkEnabled == 1 && gs.RmcpPingResponseEnabled {
			return "already as required", nil
		}
		req := generalSettingsRequest(gs)
		req.SharedFQDN, req.AMTNetworkEnabled, req.RmcpPingResponseEnabled = true, 1, true
		if _, err := r.amt.GeneralSettings.Put(&req); err != nil {
			return "", r.wsmanError("update general settings", err)
		}
		return "shared FQDN, AMT network and RMCP ping enabled", nil
	})
}

// wiredSettings reads the wired port's settings (instance "… Settings 0").
func (r *run) wiredSettings() (ethernetport.SettingsResponse, bool, error) {
	enum, err := r.amt.EthernetPortSettings.Enumerate()
	if err != nil {
		return ethernetport.SettingsResponse{}, false, r.wsmanError("enumerate ethernet ports", err)
	}
	pull, err := r.amt.EthernetPortSettings.Pull(enum.Body.EnumerateResponse.EnumerationContext)
	if err != nil {
		return ethernetport.SettingsResponse{}, false, r.wsmanError("read ethernet ports", err)
	}
	for _, item := range pull.Body.PullResponse.EthernetPortItems {
		if strings.Contains(item.InstanceID, "Settings 0") {
			return item, true, nil
		}
	}
	return ethernetport.SettingsResponse{}, false, nil
}

// configureWired sets DHCP or static addressing on the wired port as the profile says (§5.2).
func (r *run) configureWired(prof profiles.Profile) error {
	return r.step("configure wired network", func() (string, error) {
		wired, ok, err := r.wiredSettings()
		if err != nil {
			return "", err
		}
		if !ok || wired.MACAddress == "" {
			return "the device has no wired port", nil
		}
		req := ethernetport.SettingsRequest{ElementName: wired.ElementName, InstanceID: wired.InstanceID,
			SharedMAC: wired.SharedMAC, LinkIsUp: wired.LinkIsUp}
		dhcp := prof.DHCPEnabled == nil || *prof.DHCPEnabled
		if dhcp {
			req.DHCPEnabled, req.IpSyncEnabled, req.SharedStaticIp = true, true, false
		} else {
			sync := prof.IPSyncEnabled == nil || *prof.IPSyncEnabled
			req.DHCPEnabled, req.IpSyncEnabled, req.SharedStaticIp = false, sync, sync
			if !sync {
				if wired.IPAddress == "" || wired.SubnetMask == "" {
					return "", fmt.Errorf("the profile asks for a static address without IP sync, but the device has no IP address and mask to keep")
				}
				req.IPAddress, req.SubnetMask, req.DefaultGateway = wired.IPAddress, wired.SubnetMask, wired.DefaultGateway
				req.PrimaryDNS, req.SecondaryDNS = wired.PrimaryDNS, wired.SecondaryDNS
			}
		}
		if wired.DHCPEnabled == req.DHCPEnabled && wired.IpSyncEnabled == req.IpSyncEnabled && wired.SharedStaticIp == req.SharedStaticIp {
			return "already as required", nil
		}
		if _, err := r.amt.EthernetPortSettings.Put(wired.InstanceID, req); err != nil {
			return "", r.wsmanError("update the wired port", err)
		}
		if dhcp {
			return "DHCP", nil
		}
		return "static", nil
	})
}

// configureFeatures sets KVM, SOL, IDER and user consent as the profile says (§5.3).
func (r *run) configureFeatures(prof profiles.Profile) error {
	return r.step("configure redirection and user consent", func() (string, error) {
		rs, err := r.amt.RedirectionService.Get()
		if err != nil {
			return "", r.wsmanError("read the redirection service", err)
		}
		cim := r.cim()
		kvmSAP, err := cim.KVMRedirectionSAP.Get()
		if err != nil {
			return "", r.wsmanError("read the KVM service", err)
		}
		opt, err := r.ips.OptInService.Get()
		if err != nil {
			return "", r.wsmanError("read the user consent service", err)
		}
		wantKVM, wantSOL, wantIDER := *prof.KVMEnabled, *prof.SOLEnabled, *prof.IDEREnabled
		state := redirection.DisableIDERAndSOL
		switch {
		case wantSOL && wantIDER:
			state = redirection.EnableIDERAndSOL
		case wantSOL:
			state = redirection.EnableSOLAndDisableIDER
		case wantIDER:
			state = redirection.EnableIDERAndDisableSOL
		}
		cur := rs.Body.GetAndPutResponse
		kvmState := int(kvmSAP.Body.GetResponse.EnabledState)
		kvmOn := kvmState == 2 || kvmState == 6 // 6: enabled but offline
		var done []string
		if int(cur.EnabledState) != int(state) || kvmOn != wantKVM || cur.ListenerEnabled != (wantKVM || wantSOL || wantIDER) {
			if _, err := r.amt.RedirectionService.RequestStateChange(state); err != nil {
				return "", r.wsmanError("set SOL/IDER", err)
			}
			kvmReq := kvm.RedirectionSAPDisable
			if wantKVM {
				kvmReq = kvm.RedirectionSAPEnable
			}
			if _, err := cim.KVMRedirectionSAP.RequestStateChange(kvmReq); err != nil {
				return "", r.wsmanError("set KVM", err)
			}
			put := redirection.RedirectionRequest{CreationClassName: cur.CreationClassName, ElementName: cur.ElementName,
				EnabledState: redirection.EnabledState(state), ListenerEnabled: wantKVM || wantSOL || wantIDER, Name: cur.Name,
				SystemCreationClassName: cur.SystemCreationClassName, SystemName: cur.SystemName}
			if _, err := r.amt.RedirectionService.Put(&put); err != nil {
				return "", r.wsmanError("update the redirection service", err)
			}
			done = append(done, fmt.Sprintf("KVM %v, SOL %v, IDER %v", wantKVM, wantSOL, wantIDER))
		}
		consent := consentValue(prof.UserConsent)
		o := opt.Body.GetAndPutResponse
		if o.OptInRequired != uint32(consent) {
			req := optin.OptInServiceRequest{CanModifyOptInPolicy: o.CanModifyOptInPolicy, CreationClassName: o.CreationClassName,
				ElementName: o.ElementName, Name: o.Name, OptInCodeTimeout: o.OptInCodeTimeout, OptInDisplayTimeout: o.OptInDisplayTimeout,
				OptInRequired: int(consent), OptInState: o.OptInState, SystemName: o.SystemName, SystemCreationClassName: o.SystemCreationClassName}
			if _, err := r.ips.OptInService.Put(req); err != nil {
				return "", r.wsmanError("set user consent", err)
			}
			done = append(done, "user consent "+prof.UserConsent)
		}
		if len(done) == 0 {
			return "already as required", nil
		}
		return strings.Join(done, "; "), nil
	})
}

func consentValue(c string) uint32 {
	switch c {
	case profiles.ConsentNone:
		return 0
	case profiles.ConsentKVM:
		return 1
	default:
		return 4294967295
	}
}

// syncClock sets AMT's clock from the box's (§5.5).
func (r *run) syncClock() error {
	return r.step("synchronise clock", func() (string, error) {
		low, err := r.amt.TimeSynchronizationService.GetLowAccuracyTimeSynch()
		if err != nil {
			return "", r.wsmanError("read the device clock", err)
		}
		ta0 := low.Body.GetLowAccuracyTimeSynchResponse.Ta0
		now := r.p.cfg.Now().Unix()
		resp, err := r.amt.TimeSynchronizationService.SetHighAccuracyTimeSynch(ta0, now, now)
		rv := int(resp.Body.SetHighAccuracyTimeSynchResponse.ReturnValue)
		switch classify(resp.XMLOutput, "SetHighAccuracyTimeSynch_OUTPUT", rv, err) {
		case callUnknown:
			if err == nil {
				err = errors.New("the reply holds no SetHighAccuracyTimeSynch_OUTPUT")
			}
			return "", r.wsmanError("set the device clock", err)
		case callRefused:
			return "", fmt.Errorf("AMT refused the clock: %s", ptStatusText(rv))
		}
		return fmt.Sprintf("device clock was %s off", (time.Duration(now-ta0) * time.Second).String()), nil
	})
}

// activationFailed is the failure status of an activation stage.
func (r *run) activationFailed(text, mode string) outcome {
	return failed(agent.Status{Status: text, Components: components(agent.Component{Result: agent.ResultFailure, Mode: mode, Details: sentence(text)})})
}

// partial is the result of a device that is activated (its password stored and confirmed) but could not be
// finished: it succeeded as far as the agent is concerned, and the record says what is missing.
func (r *run) partial(statusText, mode string, err error) outcome {
	comps := components(agent.Component{Result: agent.ResultSuccess, Mode: mode, Details: sentence("Activated, but " + err.Error())})
	return succeeded(agent.Status{Status: statusText, Network: "Not configured: " + err.Error(), Components: comps})
}

// components returns all six Components with the activation's result; the rest not applicable.
func components(activation agent.Component) *agent.Components {
	return &agent.Components{Activation: activation, WiredNetwork: agent.NotApplicable, WirelessNetwork: agent.NotApplicable,
		TLS: agent.NotApplicable, CIRAProxy: agent.NotApplicable, CIRAConnection: agent.NotApplicable}
}

// sentence makes a Components detail: sentence case, no trailing period (RPS's convention).
func sentence(s string) string {
	s = strings.TrimSpace(strings.TrimRight(strings.TrimSpace(s), "."))
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func joinDetails(a, b string) string {
	if a == "" {
		return b
	}
	return strings.TrimRight(a, ".") + ". " + b
}

// generalSettingsRequest copies what AMT reported into a Put request: AMT_GeneralSettings is replaced whole.
func generalSettingsRequest(gs general.GeneralSettingsResponse) general.GeneralSettingsRequest {
	return general.GeneralSettingsRequest{
		ElementName: gs.ElementName, InstanceID: gs.InstanceID, IdleWakeTimeout: gs.IdleWakeTimeout,
		HostName: gs.HostName, DomainName: gs.DomainName, PingResponseEnabled: gs.PingResponseEnabled,
		WsmanOnlyMode: gs.WsmanOnlyMode, PreferredAddressFamily: gs.PreferredAddressFamily,
		DHCPv6ConfigurationTimeout: gs.DHCPv6ConfigurationTimeout, DDNSUpdateEnabled: gs.DDNSUpdateEnabled,
		DDNSUpdateByDHCPServerEnabled: gs.DDNSUpdateByDHCPServerEnabled, SharedFQDN: gs.SharedFQDN, HostOSFQDN: gs.HostOSFQDN,
		DDNSTTL: gs.DDNSTTL, AMTNetworkEnabled: gs.AMTNetworkEnabled, RmcpPingResponseEnabled: gs.RmcpPingResponseEnabled,
		DDNSPeriodicUpdateInterval: gs.DDNSPeriodicUpdateInterval, PresenceNotificationInterval: gs.PresenceNotificationInterval,
		ThunderboltDockEnabled: gs.ThunderboltDockEnabled,
	}
}
