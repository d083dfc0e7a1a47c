package amtsim

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

const optInAll = 4294967295

func init() {
	register(&classDef{name: "AMT_GeneralSettings", lsa: lsaRead, instances: generalInstances, put: generalPut})
	register(&classDef{name: "AMT_EthernetPortSettings", instances: ethernetInstances, put: ethernetPut})
	register(&classDef{
		name:      "AMT_RedirectionService",
		instances: redirectionInstances,
		put:       redirectionPut,
		methods:   map[string]method{"RequestStateChange": redirectionRequestStateChange},
	})
	register(&classDef{
		name:      "CIM_KVMRedirectionSAP",
		instances: kvmInstances,
		methods:   map[string]method{"RequestStateChange": kvmRequestStateChange},
	})
	register(&classDef{name: "IPS_OptInService", instances: optInInstances, put: optInPut})
	register(&classDef{
		name:      "AMT_TimeSynchronizationService",
		instances: timeSyncInstances,
		methods: map[string]method{
			"GetLowAccuracyTimeSynch":  getLowAccuracyTimeSynch,
			"SetHighAccuracyTimeSynch": setHighAccuracyTimeSynch,
		},
	})
	register(&classDef{name: "AMT_EnvironmentDetectionSettingData", instances: environmentInstances, put: environmentPut})
	register(&classDef{name: "IPS_IEEE8021xSettings", instances: func(d *Device) [][]prop {
		return [][]prop{{
			{"ElementName", "Intel(r) AMT: 8021X Settings"},
			{"Enabled", "3"},
			{"InstanceID", "Intel(r) AMT: 8021X Settings"},
		}}
	}})
	register(&classDef{name: "AMT_TLSSettingData", instances: func(d *Device) [][]prop {
		return [][]prop{tlsSettingData("Intel(r) AMT 802.3 TLS Settings"), tlsSettingData("Intel(r) AMT LMS TLS Settings")}
	}})
	// Classes a factory-fresh device holds no instances of. Unconfiguration flows enumerate them (and delete what
	// they find), so they must exist and enumerate empty.
	for _, name := range []string{
		"CIM_WiFiEndpointSettings", "IPS_HTTPProxyAccessPoint", "AMT_ManagementPresenceRemoteSAP",
		"AMT_RemoteAccessPolicyRule", "AMT_PublicKeyCertificate", "AMT_PublicPrivateKeyPair",
		"AMT_TLSCredentialContext", "AMT_RemoteAccessPolicyAppliesToMPS",
	} {
		register(&classDef{name: name, instances: func(d *Device) [][]prop { return nil }})
	}
}

// generalSettings is the writable part of AMT_GeneralSettings.
type generalSettings struct {
	hostName, domainName, hostOSFQDN string
	sharedFQDN, rmcpPing, ping       bool
	ddnsUpdate, ddnsByDHCP           bool
	amtNetworkEnabled                int
	ddnsTTL, ddnsInterval            int
	idleWakeTimeout                  int
	preferredAddressFamily           int
}

func defaultGeneralSettings(cfg DeviceConfig) generalSettings {
	return generalSettings{
		hostName:          cfg.Hostname,
		domainName:        cfg.DHCPDNSSuffix,
		sharedFQDN:        true,
		rmcpPing:          false,
		ping:              true,
		ddnsByDHCP:        true,
		amtNetworkEnabled: 1,
		ddnsTTL:           900,
		ddnsInterval:      1440,
		idleWakeTimeout:   1,
	}
}

func generalInstances(d *Device) [][]prop {
	g := &d.general
	return [][]prop{{
		{"AMTNetworkEnabled", itoa(g.amtNetworkEnabled)},
		{"DDNSPeriodicUpdateInterval", itoa(g.ddnsInterval)},
		{"DDNSTTL", itoa(g.ddnsTTL)},
		{"DDNSUpdateByDHCPServerEnabled", boolText(g.ddnsByDHCP)},
		{"DDNSUpdateEnabled", boolText(g.ddnsUpdate)},
		{"DHCPSyncRequiresHostname", "1"},
		{"DHCPv6ConfigurationTimeout", "0"},
		{"DigestRealm", d.cfg.Realm},
		{"DomainName", g.domainName},
		{"ElementName", "Intel(r) AMT: General Settings"},
		{"HostName", g.hostName},
		{"HostOSFQDN", g.hostOSFQDN},
		{"IdleWakeTimeout", itoa(g.idleWakeTimeout)},
		{"InstanceID", "Intel(r) AMT: General Settings"},
		{"NetworkInterfaceEnabled", "true"},
		{"PingResponseEnabled", boolText(g.ping)},
		{"PowerSource", "0"},
		{"PreferredAddressFamily", itoa(g.preferredAddressFamily)},
		{"PresenceNotificationInterval", "0"},
		{"PrivacyLevel", "0"},
		{"RmcpPingResponseEnabled", boolText(g.rmcpPing)},
		{"SharedFQDN", boolText(g.sharedFQDN)},
		{"ThunderboltDockEnabled", "0"},
		{"WsmanOnlyMode", "false"},
	}}
}

// fields reads typed properties of a Put body into a copy of the state, so that an invalid value leaves the
// instance untouched. Absent properties keep their value (clients such as go-wsman-messages omit false booleans).
type fields struct {
	in  *node
	err string
}

func (f *fields) str(name string, dst *string) {
	if v, ok := f.in.value(name); ok {
		*dst = v
	}
}

func (f *fields) boolean(name string, dst *bool) {
	if v, ok := f.in.value(name); ok {
		b, ok := parseBool(v)
		if !ok && f.err == "" {
			f.err = name + " is not a boolean"
		}
		*dst = b
	}
}

func (f *fields) integer(name string, dst *int, lo, hi int) {
	if v, ok := f.in.value(name); ok {
		n, err := strconv.Atoi(v)
		if (err != nil || n < lo || n > hi) && f.err == "" {
			f.err = fmt.Sprintf("%s must be an integer in [%d, %d]", name, lo, hi)
		}
		*dst = n
	}
}

func generalPut(d *Device, _ int, in *node) *soapFault {
	g := d.general
	f := fields{in: in}
	f.str("HostName", &g.hostName)
	f.str("DomainName", &g.domainName)
	f.str("HostOSFQDN", &g.hostOSFQDN)
	f.boolean("SharedFQDN", &g.sharedFQDN)
	f.boolean("RmcpPingResponseEnabled", &g.rmcpPing)
	f.boolean("PingResponseEnabled", &g.ping)
	f.boolean("DDNSUpdateEnabled", &g.ddnsUpdate)
	f.boolean("DDNSUpdateByDHCPServerEnabled", &g.ddnsByDHCP)
	f.integer("AMTNetworkEnabled", &g.amtNetworkEnabled, 0, 1)
	f.integer("DDNSTTL", &g.ddnsTTL, 0, 1<<31-1)
	f.integer("DDNSPeriodicUpdateInterval", &g.ddnsInterval, 0, 1<<31-1)
	f.integer("IdleWakeTimeout", &g.idleWakeTimeout, 1, 65535)
	f.integer("PreferredAddressFamily", &g.preferredAddressFamily, 0, 1)
	if f.err == "" && !validHostLabel(g.hostName) {
		f.err = "HostName must be at most 63 letters, digits or hyphens"
	}
	if f.err == "" && !validDomain(g.domainName) {
		f.err = "DomainName is not a valid DNS name"
	}
	if f.err != "" {
		d.fail("general: %s", f.err)
		return faultInvalidRepresentation(f.err)
	}
	d.general = g
	return nil
}

func validHostLabel(s string) bool {
	if len(s) > 63 || strings.HasPrefix(s, "-") || strings.HasSuffix(s, "-") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func validDomain(s string) bool {
	if s == "" {
		return true
	}
	if len(s) > 191 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || !validHostLabel(label) {
			return false
		}
	}
	return true
}

// ethernetSettings is the writable part of one AMT_EthernetPortSettings instance.
type ethernetSettings struct {
	dhcp, ipSync, sharedStatic    bool
	ip, mask, gateway, dns1, dns2 string
	consoleTCPMaxRetransmissions  int
}

func defaultWired() ethernetSettings {
	return ethernetSettings{dhcp: true, ipSync: true}
}

// lease is the DHCP lease the simulated network hands this device: stable per UUID, in 10.0.0.0/8.
func (d *Device) lease() ethernetSettings {
	h := sha256.Sum256([]byte(d.cfg.UUID))
	return ethernetSettings{
		ip:      fmt.Sprintf("10.%d.%d.%d", h[0], h[1], 2+h[2]%250),
		mask:    "255.255.255.0",
		gateway: fmt.Sprintf("10.%d.%d.1", h[0], h[1]),
		dns1:    fmt.Sprintf("10.%d.%d.1", h[0], h[1]),
	}
}

// shown is what the firmware reports: the lease when DHCP (or IP sync without static values) is on, else the
// static configuration.
func (e ethernetSettings) shown(d *Device) ethernetSettings {
	if e.dhcp || (e.ipSync && e.ip == "") {
		l := d.lease()
		l.dhcp, l.ipSync, l.sharedStatic = e.dhcp, e.ipSync, e.sharedStatic
		return l
	}
	return e
}

func (d *Device) mac(port byte) string {
	h := sha256.Sum256([]byte(d.cfg.UUID))
	return fmt.Sprintf("a4-ae-%02x-%02x-%02x-%02x", h[3], h[4], h[5], h[6]+port)
}

func ethernetInstances(d *Device) [][]prop {
	w := d.wired.shown(d)
	wired := []prop{{"DHCPEnabled", boolText(w.dhcp)}}
	if w.gateway != "" {
		wired = append(wired, prop{"DefaultGateway", w.gateway})
	}
	wired = append(wired, prop{"ElementName", "Intel(r) AMT Ethernet Port Settings"})
	if w.ip != "" {
		wired = append(wired, prop{"IPAddress", w.ip})
	}
	wired = append(wired,
		prop{"InstanceID", "Intel(r) AMT Ethernet Port Settings 0"},
		prop{"IpSyncEnabled", boolText(w.ipSync)},
		prop{"LinkIsUp", "true"},
		prop{"LinkPolicy", "1"},
		prop{"LinkPolicy", "14"},
		prop{"LinkPolicy", "16"},
		prop{"MACAddress", d.mac(0)},
		prop{"PhysicalConnectionType", "0"},
	)
	if w.dns1 != "" {
		wired = append(wired, prop{"PrimaryDNS", w.dns1})
	}
	if w.dns2 != "" {
		wired = append(wired, prop{"SecondaryDNS", w.dns2})
	}
	wired = append(wired,
		prop{"SharedDynamicIP", "true"},
		prop{"SharedMAC", "true"},
		prop{"SharedStaticIp", boolText(w.sharedStatic)},
	)
	if w.mask != "" {
		wired = append(wired, prop{"SubnetMask", w.mask})
	}
	out := [][]prop{wired}
	if d.cfg.Wireless {
		retrans := d.wireless.consoleTCPMaxRetransmissions
		if retrans == 0 {
			retrans = 5
		}
		out = append(out, []prop{
			{"ConsoleTcpMaxRetransmissions", itoa(retrans)},
			{"DHCPEnabled", "true"},
			{"ElementName", "Intel(r) AMT Ethernet Port Settings"},
			{"InstanceID", "Intel(r) AMT Ethernet Port Settings 1"},
			{"LinkControl", "2"},
			{"LinkIsUp", "false"},
			{"LinkPreference", "2"},
			{"MACAddress", d.mac(1)},
			{"PhysicalConnectionType", "3"},
			{"SharedMAC", "true"},
			{"WLANLinkProtectionLevel", "1"},
		})
	}
	return out
}

// ethernetPut applies AMT's rules: DHCP clears the static configuration; static without IP synchronisation needs
// an IPAddress and SubnetMask; addresses must be IPv4; the wireless port only supports DHCP.
func ethernetPut(d *Device, i int, in *node) *soapFault {
	cur := d.wired
	if i == 1 {
		cur = d.wireless
	}
	e := cur
	f := fields{in: in}
	f.boolean("DHCPEnabled", &e.dhcp)
	f.boolean("IpSyncEnabled", &e.ipSync)
	f.boolean("SharedStaticIp", &e.sharedStatic)
	e.ip, e.mask, e.gateway, e.dns1, e.dns2 = "", "", "", "", ""
	f.str("IPAddress", &e.ip)
	f.str("SubnetMask", &e.mask)
	f.str("DefaultGateway", &e.gateway)
	f.str("PrimaryDNS", &e.dns1)
	f.str("SecondaryDNS", &e.dns2)
	f.integer("ConsoleTcpMaxRetransmissions", &e.consoleTCPMaxRetransmissions, 0, 7)
	for _, a := range []struct{ name, v string }{
		{"IPAddress", e.ip}, {"SubnetMask", e.mask}, {"DefaultGateway", e.gateway},
		{"PrimaryDNS", e.dns1}, {"SecondaryDNS", e.dns2},
	} {
		if a.v == "" || f.err != "" {
			continue
		}
		if addr, err := netip.ParseAddr(a.v); err != nil || !addr.Is4() {
			f.err = a.name + " " + a.v + " is not an IPv4 address"
		}
	}
	switch {
	case f.err != "":
	case i == 1 && !e.dhcp:
		f.err = "the wireless port supports DHCP only"
	case e.dhcp:
		e.ip, e.mask, e.gateway, e.dns1, e.dns2 = "", "", "", "", ""
	case !e.ipSync && (e.ip == "" || e.mask == ""):
		f.err = "a static configuration without IP synchronisation needs IPAddress and SubnetMask"
	}
	if f.err != "" {
		d.fail("ethernet: %s", f.err)
		return faultInvalidRepresentation(f.err)
	}
	if i == 1 {
		d.wireless = e
	} else {
		d.wired = e
	}
	return nil
}

func redirectionInstances(d *Device) [][]prop {
	return [][]prop{{
		{"CreationClassName", "AMT_RedirectionService"},
		{"ElementName", "Intel(r) AMT Redirection Service"},
		{"EnabledState", itoa(d.redirState)},
		{"ListenerEnabled", boolText(d.redirListener)},
		{"Name", "Intel(r) AMT Redirection Service"},
		{"SystemCreationClassName", "CIM_ComputerSystem"},
		{"SystemName", "Intel(r) AMT"},
	}}
}

// redirectionPut stores ListenerEnabled; EnabledState is changed only through RequestStateChange, as on AMT.
func redirectionPut(d *Device, _ int, in *node) *soapFault {
	l := d.redirListener
	f := fields{in: in}
	f.boolean("ListenerEnabled", &l)
	if f.err != "" {
		d.fail("redirection: %s", f.err)
		return faultInvalidRepresentation(f.err)
	}
	d.redirListener = l
	return nil
}

// CIM RequestStateChange return values.
const (
	rscCompleted    = 0
	rscInvalidParam = 5
)

func requestedState(in *node) (int, bool) {
	v, _ := in.value("RequestedState")
	n, err := strconv.Atoi(v)
	return n, err == nil
}

func redirectionRequestStateChange(d *Device, in *node) []prop {
	n, ok := requestedState(in)
	if !ok || n < 32768 || n > 32771 {
		d.fail("redirection: RequestedState must be 32768..32771")
		return returnValue(rscInvalidParam)
	}
	d.redirState = n
	return returnValue(rscCompleted)
}

func kvmInstances(d *Device) [][]prop {
	return [][]prop{{
		{"CreationClassName", "CIM_KVMRedirectionSAP"},
		{"ElementName", "KVM Redirection Service Access Point"},
		{"EnabledState", itoa(d.kvmState)},
		{"KVMProtocol", "4"},
		{"Name", "KVM Redirection Service Access Point"},
		{"RequestedState", itoa(d.kvmRequested)},
		{"SystemCreationClassName", "CIM_ComputerSystem"},
		{"SystemName", "ManagedSystem"},
	}}
}

// kvmRequestStateChange: 2 enables (reported as 6, "enabled but offline", while the redirection listener is off),
// 3 disables.
func kvmRequestStateChange(d *Device, in *node) []prop {
	n, ok := requestedState(in)
	if !ok || (n != 2 && n != 3) {
		d.fail("kvm: RequestedState must be 2 or 3")
		return returnValue(rscInvalidParam)
	}
	d.kvmRequested = n
	d.kvmState = n
	if n == 2 && !d.redirListener {
		d.kvmState = 6
	}
	return returnValue(rscCompleted)
}

func optInInstances(d *Device) [][]prop {
	canModify := "0"
	if d.mode == ModeACM {
		canModify = "1"
	}
	return [][]prop{{
		{"CanModifyOptInPolicy", canModify},
		{"CreationClassName", "IPS_OptInService"},
		{"ElementName", "Intel(r) AMT OptIn Service"},
		{"Name", "Intel(r) AMT OptIn Service"},
		{"OptInCodeTimeout", "120"},
		{"OptInDisplayTimeout", "300"},
		{"OptInRequired", strconv.FormatUint(uint64(d.optIn), 10)},
		{"OptInState", "0"},
		{"SystemCreationClassName", "CIM_ComputerSystem"},
		{"SystemName", "Intel(r) AMT"},
	}}
}

// optInPut: OptInRequired is 0 (none), 1 (KVM) or 4294967295 (all); only ACM may relax it, CCM always requires
// consent for everything.
func optInPut(d *Device, _ int, in *node) *soapFault {
	v, ok := in.value("OptInRequired")
	if !ok {
		return nil
	}
	n, err := strconv.ParseUint(v, 10, 32)
	msg := ""
	switch {
	case err != nil || (n != 0 && n != 1 && n != optInAll):
		msg = "OptInRequired must be 0, 1 or 4294967295"
	case d.mode != ModeACM && n != optInAll:
		msg = "user consent can only be relaxed in ACM"
	}
	if msg != "" {
		d.fail("optin: %s", msg)
		return faultInvalidRepresentation(msg)
	}
	d.optIn = uint32(n)
	return nil
}

func timeSyncInstances(d *Device) [][]prop {
	return [][]prop{{
		{"CreationClassName", "AMT_TimeSynchronizationService"},
		{"ElementName", "Intel(r) AMT Time Synchronization Service"},
		{"EnabledState", "5"},
		{"LocalTimeSyncEnabled", "0"},
		{"Name", "Intel(r) AMT Time Synchronization Service"},
		{"RequestedState", "12"},
		{"SystemCreationClassName", "CIM_ComputerSystem"},
		{"SystemName", "Intel(r) AMT"},
		{"TimeSource", "0"},
	}}
}

func getLowAccuracyTimeSynch(d *Device, in *node) []prop {
	d.ta0 = d.deviceNow().Unix()
	d.ta0Live = true
	return []prop{{"Ta0", strconv.FormatInt(d.ta0, 10)}, {"ReturnValue", "0"}}
}

// setHighAccuracyTimeSynch requires the Ta0 the firmware last issued (that is how AMT ties the two calls together)
// and sets the clock from Tm2.
func setHighAccuracyTimeSynch(d *Device, in *node) []prop {
	var vals [3]int64
	for i, name := range []string{"Ta0", "Tm1", "Tm2"} {
		v, _ := in.value(name)
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			d.fail("timesync: %s must be a positive number of seconds", name)
			return returnValue(ptStatusInvalidParameter)
		}
		vals[i] = n
	}
	if !d.ta0Live || vals[0] != d.ta0 {
		d.fail("timesync: Ta0 %d is not the value GetLowAccuracyTimeSynch issued", vals[0])
		return returnValue(ptStatusInvalidParameter)
	}
	d.ta0Live = false
	d.tm1, d.tm2 = vals[1], vals[2]
	d.clockOffset = vals[2] - time.Now().Unix()
	d.clockSet = true
	return returnValue(0)
}

func environmentInstances(d *Device) [][]prop {
	ps := []prop{{"ElementName", "Intel(r) AMT Environment Detection Settings"}}
	for _, s := range d.detectionStrings {
		ps = append(ps, prop{"DetectionStrings", s})
	}
	ps = append(ps, prop{"InstanceID", "Intel(r) AMT Environment Detection Settings"})
	return [][]prop{ps}
}

func environmentPut(d *Device, _ int, in *node) *soapFault {
	var vals []string
	for _, v := range in.values("DetectionStrings") {
		if v != "" {
			vals = append(vals, v)
		}
	}
	if len(vals) > 5 {
		d.fail("environment: at most 5 DetectionStrings")
		return faultInvalidRepresentation("at most 5 DetectionStrings")
	}
	d.detectionStrings = vals
	return nil
}

func tlsSettingData(id string) []prop {
	return []prop{
		{"AcceptNonSecureConnections", "true"},
		{"ElementName", id},
		{"Enabled", "false"},
		{"InstanceID", id},
		{"MutualAuthentication", "false"},
	}
}
