package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/amtedge/amtedge/appliance/amtsim"
)

// simulateCommand runs simulated rpc-go agents and AMT devices against a box: a field smoke test and a load
// generator. Exit status 1 when any device did not succeed.
func simulateCommand(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("simulate", stderr)
	url := fs.String("url", "", "the box's agent URL, e.g. wss://box:8080/activate (required)")
	profile := fs.String("profile", "", "profile to activate with (required for --command activate)")
	command := fs.String("command", "activate", "activate, deactivate or maintenance")
	devices := fs.Int("devices", 1, "number of simulated devices")
	concurrency := fs.Int("concurrency", 10, "devices running at once")
	insecure := fs.Bool("insecure", false, "do not verify the box's TLS certificate (like rpc -n)")
	caFile := fs.String("ca-file", "", "PEM certificate(s) to verify the box's TLS certificate with")
	suffix := fs.String("dns-suffix", "demo.amtedge.test", "DNS suffix the devices got from DHCP option 15")
	var roots stringList
	fs.Var(&roots, "trusted-root", "hex hash of a provisioning root the devices trust (repeatable; @FILE reads hashes from a file)")
	seed := fs.String("seed", "amtsim", "seed for the devices' UUIDs (same seed, same devices)")
	mode := fs.Int("mode", 0, "control mode the devices start in: 0 pre-provisioning, 1 CCM, 2 ACM")
	password := fs.String("password", "", "AMT admin password of already-activated devices (deactivate, maintenance)")
	task := fs.String("task", "", "maintenance task: synctime, syncip, changepassword, synchostname, syncdeviceinfo")
	force := fs.Bool("force", false, "pass -f (deactivate without the stored-password check)")
	latency := fs.Duration("latency", 0, "simulated firmware latency per WSMAN call")
	timeout := fs.Duration("timeout", 10*time.Minute, "bound for the whole run")
	quiet := fs.Bool("quiet", false, "print only the summary, not the per-device table")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *url == "" {
		return usageError{fmt.Errorf("--url is required")}
	}
	if *command == "activate" && *profile == "" {
		return usageError{fmt.Errorf("--profile is required to activate")}
	}
	if *devices < 1 || *concurrency < 1 {
		return usageError{fmt.Errorf("--devices and --concurrency must be at least 1")}
	}
	tlsConfig := &tls.Config{InsecureSkipVerify: *insecure} //nolint:gosec // the operator asked for it, like rpc -n
	if *caFile != "" {
		pemData, err := os.ReadFile(*caFile)
		if err != nil {
			return fmt.Errorf("--ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return fmt.Errorf("--ca-file %s holds no PEM certificate", *caFile)
		}
		tlsConfig.RootCAs = pool
		// The box's self-signed certificate names localhost, its host name and its addresses.
	}
	hashes, err := roots.hashes()
	if err != nil {
		return usageError{fmt.Errorf("--trusted-root: %w", err)}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	sum := amtsim.Simulate(ctx, amtsim.SimulateConfig{
		URL: *url, TLS: tlsConfig, Profile: *profile, Devices: *devices, Concurrency: *concurrency,
		Device: func(i int) amtsim.DeviceConfig {
			return amtsim.DeviceConfig{UUID: amtsim.DeviceUUID(*seed, i), Mode: amtsim.Mode(*mode), AdminPassword: *password,
				DHCPDNSSuffix: *suffix, TrustedRootHashes: hashes, Hostname: fmt.Sprintf("pc-%04d", i), Latency: *latency}
		},
		Agent: func(i int, dev *amtsim.Device) amtsim.AgentConfig {
			return amtsim.AgentConfig{Command: *command, Profile: *profile, Password: *password, Force: *force, Task: *task,
				Progress: true}
		},
	})
	if *quiet {
		sum.Results = nil
	}
	sum.WriteTable(stdout)
	if sum.Failed > 0 {
		return fmt.Errorf("%d of %d devices did not succeed", sum.Failed, *devices)
	}
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// hashes expands @FILE entries (one hash per line) and checks every hash is hex of a SHA-1/256/384 length.
func (s stringList) hashes() ([]string, error) {
	var out []string
	for _, v := range s {
		if strings.HasPrefix(v, "@") {
			b, err := os.ReadFile(v[1:])
			if err != nil {
				return nil, err
			}
			out = append(out, strings.Fields(string(b))...)
			continue
		}
		out = append(out, v)
	}
	for i, h := range out {
		h = strings.ToLower(h)
		out[i] = h
		if len(h) != 40 && len(h) != 64 && len(h) != 96 || strings.Trim(h, "0123456789abcdef") != "" {
			return nil, fmt.Errorf("%q is not a SHA-1, SHA-256 or SHA-384 hex hash", h)
		}
	}
	return out, nil
}
