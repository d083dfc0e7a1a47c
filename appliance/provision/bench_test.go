package provision_test

import (
	"fmt"
	"testing"

	"github.com/amtedge/amtedge/appliance/amtsim"
)

// BenchmarkActivate measures one activation end to end over real TLS, server and simulator in one process: use
// `make bench` for the server's own CPU time; this one is for profiling (-cpuprofile).
func BenchmarkActivate(b *testing.B) {
	for _, tc := range []struct{ profile, domain string }{{"ccm", ""}, {"acm", "corp"}} {
		b.Run(tc.profile, func(b *testing.B) {
			h := newHarness(b, harnessOptions{})
			var trust []string
			if tc.domain != "" {
				trust = append(trust, tc.domain)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				dev := h.device(amtsim.DeviceConfig{UUID: amtsim.DeviceUUID(fmt.Sprint(tc.profile, b.N), i), DHCPDNSSuffix: corpSuffix}, trust...)
				if res := h.run(amtsim.AgentConfig{Profile: tc.profile}, dev); !res.Succeeded() {
					b.Fatalf("%s %q %v", res.Method, res.Status, res.Err)
				}
			}
		})
	}
}
