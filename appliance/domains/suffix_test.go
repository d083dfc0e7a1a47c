package domains

import "testing"

func TestMatchSuffix(t *testing.T) {
	suffixes := []string{"corp.com", "b.corp.com", "Other.ORG.", "com", "a.b.corp.com.example"}
	tests := []struct {
		name    string
		fqdn    string
		list    []string // default suffixes
		wantIdx int
		wantOK  bool
	}{
		{"exact", "corp.com", nil, 0, true},
		{"longest candidate wins over list order", "x.b.corp.com", nil, 1, true},
		{"falls back to the last two labels", "a.c.corp.com", nil, 0, true},
		{"full name is a candidate", "b.corp.com", nil, 1, true},
		{"fqdn upper case", "HOST.B.CORP.COM", nil, 1, true},
		{"stored suffix upper case with trailing dot", "pc1.other.org", nil, 2, true},
		{"fqdn trailing dot", "pc1.b.corp.com.", nil, 1, true},
		{"single label never matched", "com", nil, -1, false},
		{"single label stored suffix never matched", "host.com", nil, -1, false},
		{"suffix is not a substring match", "xcorp.com", nil, -1, false},
		{"no match", "pc1.example.net", nil, -1, false},
		{"empty", "", nil, -1, false},
		{"only a dot", ".", nil, -1, false},
		{"empty label does not make a leading-dot candidate", "a..corp.com", []string{".corp.com"}, -1, false},
		{"empty list", "corp.com", []string{}, -1, false},
		{"first of duplicate entries", "pc.corp.com", []string{"x.org", "CORP.com", "corp.com"}, 1, true},
		{"deep name", "a.b.c.d.e.f.corp.com", nil, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			list := suffixes
			if tc.list != nil {
				list = tc.list
			}
			idx, ok := MatchSuffix(tc.fqdn, list)
			if idx != tc.wantIdx || ok != tc.wantOK {
				t.Errorf("MatchSuffix(%q, %q) = %d, %v; want %d, %v", tc.fqdn, list, idx, ok, tc.wantIdx, tc.wantOK)
			}
		})
	}
}

func TestCertMatchesSuffix(t *testing.T) {
	tests := []struct {
		cn, suffix string
		want       bool
	}{
		{"provision.corp.com", "corp.com", true},
		{"provision.corp.com", "site1.corp.com", true},
		{"provision.corp.com", "a.b.corp.com", true},
		{"provision.corp.com", "provision.corp.com", true},
		{"Provision.CORP.com", "Site1.Corp.Com.", true},
		{"provision.corp.com.", "corp.com", true},
		{"*.corp.com", "corp.com", true},               // wildcard stripped: cn corp.com, parent "com" too short
		{"*.corp.com", "site1.corp.com", false},        // ...so only the exact name
		{"provision.corp.com", "com", false},           // never a bare TLD
		{"provision.corp.com", "othercorp.com", false}, // label boundary
		{"provision.corp.com", "corp.com.evil.net", false},
		{"provision.site1.corp.com", "site2.corp.com", false}, // RPS's last-two-labels rule would accept this
		{"provision.site1.corp.com", "corp.com", false},       // a parent of the cert's domain is not covered
		{"provision.site1.corp.com", "x.site1.corp.com", true},
		{"corp.com", "corp.com", true},
		{"corp.com", "site1.corp.com", false}, // D = "com" has one label
		{"localhost", "localhost", true},
		{"provision", "corp.com", false},
		{"", "corp.com", false},
		{"provision.corp.com", "", false},
		{"provision.corp.com", ".", false},
	}
	for _, tc := range tests {
		if got := CertMatchesSuffix(tc.cn, tc.suffix); got != tc.want {
			t.Errorf("CertMatchesSuffix(%q, %q) = %v, want %v", tc.cn, tc.suffix, got, tc.want)
		}
	}
}

func TestValidateSuffix(t *testing.T) {
	tests := []struct {
		suffix string
		ok     bool
	}{
		{"corp.com", true},
		{"a-b.c0rp.example.com", true},
		{"xn--bcher-kva.example", true},
		{"", false},
		{"corp", false},
		{"corp..com", false},
		{".corp.com", false},
		{"-corp.com", false},
		{"corp-.com", false},
		{"co rp.com", false},
		{"my_corp.com", false},
		{"bücher.example", false},
		{string(make([]byte, 64)) + ".com", false},
	}
	for _, tc := range tests {
		err := validateSuffix(normaliseSuffix(tc.suffix))
		if (err == nil) != tc.ok {
			t.Errorf("validateSuffix(%q) = %v, want ok=%v", tc.suffix, err, tc.ok)
		}
	}
	long := "a"
	for len(long) < 250 {
		long += ".abcdefgh"
	}
	if err := validateSuffix(long + ".example"); err == nil {
		t.Errorf("validateSuffix of a %d-character name succeeded", len(long)+8)
	}
}
