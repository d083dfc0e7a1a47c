package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := parseConfig([]byte("site: /etc/amtedge/site.yaml\ncustody:\n  seal: software\n"), "/etc/amtedge")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StateDir != "/var/lib/amtedge" || cfg.Agent.Listen != ":8080" || cfg.WSMAN.RequestTimeout != 12*time.Second ||
		cfg.WSMAN.Attempts != 3 || cfg.Agent.MaxSessions != 20000 || cfg.Log.Format != "text" ||
		cfg.Log.Output != "auto" || cfg.Metrics.Interval != time.Minute || cfg.ShutdownTimeout != 30*time.Second ||
		cfg.Admin.SessionIdle != 30*time.Minute || cfg.Admin.SessionMax != 12*time.Hour || cfg.Admin.LoginAttempts != 5 ||
		cfg.Admin.LoginWindow != 5*time.Minute {
		t.Fatalf("defaults: %+v", cfg)
	}
	if got := cfg.path("site.yaml"); got != "/etc/amtedge/site.yaml" {
		t.Errorf("relative path resolved to %s", got)
	}
}

func TestEmbeddedDefaultIsValid(t *testing.T) {
	cfg, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Demo.Enabled || cfg.Custody.Seal != "software" || !cfg.Custody.Standalone || cfg.Demo.Suffix != "demo.amtedge.test" {
		t.Fatalf("embedded default: %+v", cfg)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		yaml, want string
	}{
		{"demo: {enabled: true}\ncustody: {seal: software}\nagent: {listen: nonsense}", "agent.listen: \"nonsense\" is not host:port"},
		{"demo: {enabled: true}\ncustody: {seal: software}\nwsman: {attempts: 50}", "wsman.attempts: must be 1 to 10, not 50"},
		{"demo: {enabled: true}\ncustody: {seal: software}\nwsman: {requestTimeout: -1s}", "wsman.requestTimeout: must be positive"},
		{"demo: {enabled: true}\ncustody: {seal: paper}", `custody.seal: must be "tpm" or "software", not "paper"`},
		{"demo: {enabled: true}\ncustody: {tpm: {srkHandle: 0x80000001}}", "custody.tpm.srkHandle: 0x80000001 is not a persistent handle"},
		{"demo: {enabled: true}\ncustody: {tpm: {pcrs: [7, 30]}}", "custody.tpm.pcrs: PCR 30 is out of range 0-23"},
		{"demo: {enabled: true}\ncustody: {seal: software}\nagent: {allowedNetworks: [10.0.0.0/8, lan]}", `agent.allowedNetworks[1]: "lan" is not a network in CIDR notation`},
		{"demo: {enabled: true}\ncustody: {seal: software}\nvault: {address: 'https://vault:8200'}", `vault.auth.method: "" is not "approle" or "token"`},
		{"custody: {seal: software}", "site: required"},
		{"site: s.yaml\ndemo: {enabled: true}\ncustody: {seal: software}", "demo.enabled: cannot be combined with site"},
		{"demo: {enabled: true}\ncustody: {seal: software}\nagent: {tlsCertFile: a.pem}", "agent.tlsCertFile: tlsCertFile and tlsKeyFile go together"},
		{"demo: {enabled: true}\ncustody: {seal: software}\nlog: {level: loud}", `log.level: must be debug, info, warn or error, not "loud"`},
		{"demo: {enabled: true}\ncustody: {seal: software}\nagnet: {}", "parse: line 3: field agnet not found"},
		{"demo: {enabled: true}\ncustody: {seal: software}\nlog: {output: syslog}", `log.output: must be auto, journal or stderr, not "syslog"`},
		{"demo: {enabled: true}\ncustody: {seal: software}\nmetrics: {interval: 10ms}", "metrics.interval: must be at least 1s, not 10ms"},
		{"demo: {enabled: true}\ncustody: {seal: software}\nshutdownTimeout: -2s", "shutdownTimeout: must be positive"},
		{"demo: {enabled: true}\ncustody: {seal: software}\nagent: {sessionTimeout: soon}", "parse: line 3: cannot unmarshal"},
		{"demo: {enabled: true}\ncustody: {seal: software}\nadmin: {sessionIdle: 10s}", "admin.sessionIdle: must be at least 1m, not 10s"},
		{"demo: {enabled: true}\ncustody: {seal: software}\nadmin: {sessionIdle: 2h, sessionMax: 1h}", "admin.sessionMax: must be at least admin.sessionIdle (2h0m0s), not 1h0m0s"},
		{"demo: {enabled: true}\ncustody: {seal: software}\nadmin: {loginAttempts: -1}", "admin.loginAttempts: must be 1 to 1000, not -1"},
		{"demo: {enabled: true}\ncustody: {seal: software}\nadmin: {loginWindow: 10ms}", "admin.loginWindow: must be at least 1s, not 10ms"},
	} {
		_, err := parseConfig([]byte(tc.yaml), ".")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

func TestEmptyConfigFileNamesWhatIsMissing(t *testing.T) {
	_, err := parseConfig(nil, ".")
	if err == nil || !strings.Contains(err.Error(), "site: required") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add(defaultConfigYAML)
	f.Add([]byte("site: s.yaml\ncustody: {seal: software}\nagent: {listen: '127.0.0.1:1', maxSessions: 5}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseConfig(data, ".")
		if err != nil {
			return
		}
		if cfg.WSMAN.Attempts < 1 || cfg.Agent.Listen == "" || cfg.StateDir == "" {
			t.Fatalf("accepted an invalid config: %+v", cfg)
		}
	})
}
