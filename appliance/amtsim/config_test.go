package amtsim

import (
	"strings"
	"testing"
	"time"

	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/amt/ethernetport"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/amt/general"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/amt/redirection"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/cim/kvm"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/ips/optin"
)

func generalPutRequest(host string) general.GeneralSettingsRequest {
	return general.GeneralSettingsRequest{
		HostName: host, DomainName: "example.com", SharedFQDN: true, AMTNetworkEnabled: 1, RmcpPingResponseEnabled: true,
	}
}

func acmDevice(t *testing.T, cfg DeviceConfig) *Device {
	t.Helper()
	if cfg.Mode == ModePreProvisioning {
		cfg.Mode = ModeACM
	}
	cfg.AdminPassword = "Adm1n-pw!"
	return simDevice(t, cfg)
}

func TestGeneralSettingsPut(t *testing.T) {
	d := acmDevice(t, DeviceConfig{Hostname: "pc1", DHCPDNSSuffix: "corp.example.com"})
	m := libMessages(d, "admin", "Adm1n-pw!")
	g, err := m.AMT.GeneralSettings.Get()
	if err != nil {
		t.Fatal(err)
	}
	gr := g.Body.GetResponse
	if gr.HostName != "pc1" || gr.DomainName != "corp.example.com" || !gr.SharedFQDN || gr.RmcpPingResponseEnabled || gr.AMTNetworkEnabled != 1 {
		t.Errorf("factory general settings: %+v", gr)
	}
	if _, err := m.AMT.GeneralSettings.Put(generalPutRequest("pc-renamed")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	s := d.Snapshot()
	if s.Hostname != "pc-renamed" || s.DomainName != "example.com" || !s.RmcpPingResponseEnabled {
		t.Errorf("after Put: %+v", s)
	}
	if _, err := m.AMT.GeneralSettings.Put(generalPutRequest("bad_host name")); err == nil ||
		!strings.Contains(err.Error(), "InvalidRepresentation") {
		t.Errorf("Put of an invalid host name: %v", err)
	}
	if d.Snapshot().Hostname != "pc-renamed" {
		t.Error("invalid Put changed the host name")
	}
}

func TestTimeSynchronization(t *testing.T) {
	d := acmDevice(t, DeviceConfig{})
	ts := libMessages(d, "admin", "Adm1n-pw!").AMT.TimeSynchronizationService
	r, err := ts.GetLowAccuracyTimeSynch()
	if err != nil {
		t.Fatal(err)
	}
	ta0 := r.Body.GetLowAccuracyTimeSynchResponse.Ta0
	if now := time.Now().Unix(); ta0 < now-5 || ta0 > now+5 || r.Body.GetLowAccuracyTimeSynchResponse.ReturnValue != 0 {
		t.Fatalf("Ta0 %d, now %d", ta0, now)
	}
	tests := []struct {
		name string
		ta0  int64
		want int
	}{
		{"wrong Ta0", ta0 - 100, ptStatusInvalidParameter},
		{"issued Ta0", ta0, 0},
		{"Ta0 already used", ta0, ptStatusInvalidParameter},
	}
	tm := time.Now().Unix() + 3600 // move the device clock an hour ahead
	for _, tc := range tests {
		s, err := ts.SetHighAccuracyTimeSynch(tc.ta0, tm, tm)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := int(s.Body.SetHighAccuracyTimeSynchResponse.ReturnValue); got != tc.want {
			t.Errorf("%s: ReturnValue %d, want %d", tc.name, got, tc.want)
		}
	}
	if s := d.Snapshot(); !s.ClockSet || s.Tm1 != tm || s.Tm2 != tm {
		t.Errorf("snapshot %+v", s)
	}
	r, _ = ts.GetLowAccuracyTimeSynch()
	if got := r.Body.GetLowAccuracyTimeSynchResponse.Ta0; got < tm-5 || got > tm+5 {
		t.Errorf("device clock not moved: Ta0 %d, want ~%d", got, tm)
	}
}

func TestEthernetPortSettings(t *testing.T) {
	d := acmDevice(t, DeviceConfig{Wireless: true})
	eth := libMessages(d, "admin", "Adm1n-pw!").AMT.EthernetPortSettings
	e, err := eth.Enumerate()
	if err != nil {
		t.Fatal(err)
	}
	p, err := eth.Pull(e.Body.EnumerateResponse.EnumerationContext)
	if err != nil {
		t.Fatal(err)
	}
	items := p.Body.PullResponse.EthernetPortItems
	if len(items) != 2 || items[0].InstanceID != "Intel(r) AMT Ethernet Port Settings 0" || items[1].InstanceID != "Intel(r) AMT Ethernet Port Settings 1" {
		t.Fatalf("items %+v", items)
	}
	if w := items[0]; !w.DHCPEnabled || !w.IpSyncEnabled || w.MACAddress == "" || w.IPAddress == "" {
		t.Errorf("wired instance %+v", w)
	}
	// The context is single-use.
	if _, err := eth.Pull(e.Body.EnumerateResponse.EnumerationContext); err == nil {
		t.Error("second Pull with the same context succeeded")
	}

	const wired = "Intel(r) AMT Ethernet Port Settings 0"
	tests := []struct {
		name     string
		instance string
		req      ethernetport.SettingsRequest
		ok       bool
		check    func(s Snapshot) bool
	}{
		{"static without IP", wired, ethernetport.SettingsRequest{DHCPEnabled: false, IpSyncEnabled: false}, false, nil},
		{"static with a bad address", wired, ethernetport.SettingsRequest{IPAddress: "10.0.0.300", SubnetMask: "255.255.255.0"}, false, nil},
		{"static", wired, ethernetport.SettingsRequest{IPAddress: "192.168.1.20", SubnetMask: "255.255.255.0",
			DefaultGateway: "192.168.1.1", PrimaryDNS: "192.168.1.2"}, true, func(s Snapshot) bool {
			return !s.DHCPEnabled && !s.IpSyncEnabled && s.IPAddress == "192.168.1.20" && s.PrimaryDNS == "192.168.1.2"
		}},
		{"static with IP sync", wired, ethernetport.SettingsRequest{IpSyncEnabled: true, SharedStaticIp: true}, true, func(s Snapshot) bool {
			return !s.DHCPEnabled && s.IpSyncEnabled && s.SharedStaticIp
		}},
		{"DHCP", wired, ethernetport.SettingsRequest{DHCPEnabled: true, IpSyncEnabled: true}, true, func(s Snapshot) bool {
			return s.DHCPEnabled && s.IpSyncEnabled && !s.SharedStaticIp && s.IPAddress != "192.168.1.20"
		}},
		{"wireless static", "Intel(r) AMT Ethernet Port Settings 1", ethernetport.SettingsRequest{IPAddress: "192.168.1.20", SubnetMask: "255.255.255.0"}, false, nil},
		{"wireless DHCP", "Intel(r) AMT Ethernet Port Settings 1", ethernetport.SettingsRequest{DHCPEnabled: true, ConsoleTcpMaxRetransmissions: 7}, true, nil},
		{"unknown instance", "Intel(r) AMT Ethernet Port Settings 9", ethernetport.SettingsRequest{DHCPEnabled: true}, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.InstanceID = tc.instance
			tc.req.ElementName = "Intel(r) AMT Ethernet Port Settings"
			before := d.Snapshot()
			r, err := eth.Put(tc.instance, tc.req)
			if tc.ok != (err == nil) {
				t.Fatalf("Put error %v, want ok=%v (%s)", err, tc.ok, d.Snapshot().LastFailure)
			}
			s := d.Snapshot()
			if !tc.ok {
				if s.IPAddress != before.IPAddress || s.DHCPEnabled != before.DHCPEnabled {
					t.Error("refused Put changed the settings")
				}
				return
			}
			if r.Body.GetAndPutResponse.InstanceID != tc.instance {
				t.Errorf("PutResponse instance %q", r.Body.GetAndPutResponse.InstanceID)
			}
			if tc.check != nil && !tc.check(s) {
				t.Errorf("snapshot after Put: %+v", s)
			}
		})
	}
	g, err := eth.Get(wired)
	if err != nil || g.Body.GetAndPutResponse.InstanceID != wired {
		t.Errorf("Get by InstanceID: %v %+v", err, g.Body.GetAndPutResponse)
	}
}

func TestRedirectionKVMAndOptIn(t *testing.T) {
	for _, mode := range []Mode{ModeCCM, ModeACM} {
		t.Run(mode.String(), func(t *testing.T) {
			d := acmDevice(t, DeviceConfig{Mode: mode})
			m := libMessages(d, "admin", "Adm1n-pw!")

			red, err := m.AMT.RedirectionService.Get()
			if err != nil || red.Body.GetAndPutResponse.EnabledState != 32771 || !red.Body.GetAndPutResponse.ListenerEnabled {
				t.Fatalf("redirection Get: %v %+v", err, red.Body.GetAndPutResponse)
			}
			for _, tc := range []struct {
				state redirection.RequestedState
				want  int
			}{{32770, 0}, {32772, rscInvalidParam}, {1, rscInvalidParam}} {
				// The library reports a non-zero ReturnValue as an error and still fills the response.
				r, err := m.AMT.RedirectionService.RequestStateChange(tc.state)
				if (err == nil) != (tc.want == 0) || int(r.Body.RequestStateChange_OUTPUT.ReturnValue) != tc.want {
					t.Errorf("RequestStateChange(%d): %v %d, want %d", tc.state, err, r.Body.RequestStateChange_OUTPUT.ReturnValue, tc.want)
				}
			}
			if _, err := m.AMT.RedirectionService.Put(redirection.RedirectionRequest{
				CreationClassName: "AMT_RedirectionService", ElementName: "Intel(r) AMT Redirection Service",
				EnabledState: 32770, ListenerEnabled: false, Name: "Intel(r) AMT Redirection Service",
				SystemCreationClassName: "CIM_ComputerSystem", SystemName: "Intel(r) AMT",
			}); err != nil {
				t.Fatalf("redirection Put: %v", err)
			}

			k, err := m.CIM.KVMRedirectionSAP.Get()
			if err != nil || k.Body.GetResponse.EnabledState != 2 {
				t.Fatalf("KVM Get: %v %+v", err, k.Body.GetResponse)
			}
			for _, tc := range []struct{ req, want, enabled int }{{3, 0, 3}, {2, 0, 6}, {4, rscInvalidParam, 6}} {
				r, err := m.CIM.KVMRedirectionSAP.RequestStateChange(kvm.KVMRedirectionSAPRequestStateChangeInput(tc.req))
				if err != nil || int(r.Body.RequestStateChange_OUTPUT.ReturnValue) != tc.want {
					t.Errorf("KVM RequestStateChange(%d): %v %d", tc.req, err, r.Body.RequestStateChange_OUTPUT.ReturnValue)
				}
				if got := d.Snapshot().KVMEnabledState; got != tc.enabled {
					t.Errorf("after KVM RequestStateChange(%d): EnabledState %d, want %d", tc.req, got, tc.enabled)
				}
			}

			o, err := m.IPS.OptInService.Get()
			if err != nil || o.Body.GetAndPutResponse.OptInRequired != optInAll {
				t.Fatalf("opt-in Get: %v %+v", err, o.Body.GetAndPutResponse)
			}
			_, err = m.IPS.OptInService.Put(optin.OptInServiceRequest{OptInRequired: 1, CanModifyOptInPolicy: 1,
				CreationClassName: "IPS_OptInService", ElementName: "Intel(r) AMT OptIn Service", Name: "Intel(r) AMT OptIn Service",
				OptInCodeTimeout: 120, OptInDisplayTimeout: 300, SystemName: "Intel(r) AMT", SystemCreationClassName: "CIM_ComputerSystem"})
			if mode == ModeACM && (err != nil || d.Snapshot().OptInRequired != 1) {
				t.Errorf("ACM opt-in Put KVM: %v %d", err, d.Snapshot().OptInRequired)
			}
			if mode == ModeCCM && (err == nil || d.Snapshot().OptInRequired != optInAll) {
				t.Errorf("CCM relaxed user consent: %v", err)
			}
			if _, err := m.IPS.OptInService.Put(optin.OptInServiceRequest{OptInRequired: 7}); err == nil {
				t.Error("OptInRequired 7 accepted")
			}

			s := d.Snapshot()
			if s.RedirectionEnabledState != 32770 || s.RedirectionListener {
				t.Errorf("redirection snapshot %+v", s)
			}
		})
	}
}

func TestEnumerateEveryReadableClass(t *testing.T) {
	d := acmDevice(t, DeviceConfig{})
	c := newRawClient(t, d, "admin", "Adm1n-pw!")
	for uri, cls := range classes {
		if cls.instances == nil {
			continue
		}
		e := c.call(actionEnumerate, uri, "", `<Enumerate xmlns="`+nsEnum+`" />`)
		if e.status != 200 {
			t.Errorf("%s Enumerate: %d", cls.name, e.status)
			continue
		}
		ctx := xmlValue(t, e.body, "EnumerationContext")
		p := c.call(actionPull, uri, "", `<Pull xmlns="`+nsEnum+`"><EnumerationContext>`+ctx+`</EnumerationContext><MaxElements>999</MaxElements><MaxCharacters>99999</MaxCharacters></Pull>`)
		if p.status != 200 || !strings.Contains(string(p.body), "EndOfSequence") {
			t.Errorf("%s Pull: %d\n%s", cls.name, p.status, p.body)
		}
		if got, want := len(xmlValues(t, p.body, cls.name)), len(cls.instances(d)); got != want {
			t.Errorf("%s Pull: %d items, want %d", cls.name, got, want)
		}
	}
}

// TestReplyShapes compares the element order of our replies with captured AMT replies (amt-replies/).
func TestReplyShapes(t *testing.T) {
	d := acmDevice(t, DeviceConfig{})
	c := newRawClient(t, d, "admin", "Adm1n-pw!")
	tests := []struct {
		class string
		want  string
	}{
		{"AMT_GeneralSettings", "AMTNetworkEnabled DDNSPeriodicUpdateInterval DDNSTTL DDNSUpdateByDHCPServerEnabled DDNSUpdateEnabled DHCPSyncRequiresHostname DHCPv6ConfigurationTimeout DigestRealm DomainName ElementName HostName HostOSFQDN IdleWakeTimeout InstanceID NetworkInterfaceEnabled PingResponseEnabled PowerSource PreferredAddressFamily PresenceNotificationInterval PrivacyLevel RmcpPingResponseEnabled SharedFQDN ThunderboltDockEnabled WsmanOnlyMode"},
		{"IPS_HostBasedSetupService", "AllowedControlModes AllowedControlModes CertChainStatus ConfigurationNonce CreationClassName CurrentControlMode ElementName Name SystemCreationClassName SystemName"},
		{"AMT_RedirectionService", "CreationClassName ElementName EnabledState ListenerEnabled Name SystemCreationClassName SystemName"},
		{"CIM_KVMRedirectionSAP", "CreationClassName ElementName EnabledState KVMProtocol Name RequestedState SystemCreationClassName SystemName"},
		{"IPS_OptInService", "CanModifyOptInPolicy CreationClassName ElementName Name OptInCodeTimeout OptInDisplayTimeout OptInRequired OptInState SystemCreationClassName SystemName"},
		{"AMT_TimeSynchronizationService", "CreationClassName ElementName EnabledState LocalTimeSyncEnabled Name RequestedState SystemCreationClassName SystemName TimeSource"},
		{"AMT_SetupAndConfigurationService", "CreationClassName ElementName EnabledState Name PasswordModel ProvisioningMode ProvisioningState RequestedState SystemCreationClassName SystemName ZeroTouchConfigurationEnabled"},
		{"AMT_EthernetPortSettings", "DHCPEnabled DefaultGateway ElementName IPAddress InstanceID IpSyncEnabled LinkIsUp LinkPolicy LinkPolicy LinkPolicy MACAddress PhysicalConnectionType PrimaryDNS SharedDynamicIP SharedMAC SharedStaticIp SubnetMask"},
	}
	for _, tc := range tests {
		r := c.get(schemaFor(tc.class) + tc.class)
		if r.status != 200 {
			t.Errorf("%s: %d", tc.class, r.status)
			continue
		}
		if got := strings.Join(childNames(t, r.body, tc.class), " "); got != tc.want {
			t.Errorf("%s elements:\n got %s\nwant %s", tc.class, got, tc.want)
		}
		if !strings.Contains(string(r.body), `<b:Action a:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse</b:Action>`) ||
			!strings.Contains(string(r.body), `<g:`+tc.class+`>`) {
			t.Errorf("%s: header/prefixes differ from AMT's:\n%s", tc.class, r.body)
		}
	}
}

// childNames lists the local names of the children of the first element named parent.
func childNames(t *testing.T, doc []byte, parent string) []string {
	t.Helper()
	var names []string
	depth := -1
	dec := newTokenizer(doc)
	for {
		name, start, end, ok := dec()
		if !ok {
			return names
		}
		switch {
		case start && depth < 0 && name == parent:
			depth = 0
		case start && depth >= 0:
			depth++
			if depth == 1 {
				names = append(names, name)
			}
		case end && depth >= 0:
			depth--
			if depth < 0 {
				return names
			}
		}
	}
}
