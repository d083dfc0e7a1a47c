package secrets

import (
	"slices"
	"testing"
)

func TestStateValid(t *testing.T) {
	for _, s := range []State{Pending, Confirmed, Abandoned} {
		if !s.Valid() {
			t.Errorf("State(%q).Valid() = false, want true", s)
		}
	}
	for _, s := range []State{"", "Pending", "confirmed ", "unknown"} {
		if s.Valid() {
			t.Errorf("State(%q).Valid() = true, want false", s)
		}
	}
}

func TestCandidates(t *testing.T) {
	c := func(pw string, st State) Credentials { return Credentials{AMTPassword: pw, State: st} }
	tests := []struct {
		name string
		dev  Device
		want []string
	}{
		{"empty device", Device{}, nil},
		{"confirmed current only", Device{Current: c("a", Confirmed)}, []string{"a"}},
		{"pending current only", Device{Current: c("a", Pending)}, []string{"a"}},
		{"abandoned current only", Device{Current: c("a", Abandoned)}, nil},
		{
			"confirmed current hides history",
			Device{Current: c("b", Confirmed), History: []Credentials{c("a", Confirmed)}},
			[]string{"b"},
		},
		{
			"pending current then newest confirmed",
			Device{Current: c("c", Pending), History: []Credentials{c("b", Confirmed), c("a", Confirmed)}},
			[]string{"c", "b"},
		},
		{
			"abandoned current falls back to newest confirmed",
			Device{Current: c("c", Abandoned), History: []Credentials{c("b", Confirmed), c("a", Confirmed)}},
			[]string{"b"},
		},
		{
			// A lost reply can leave the device holding a pending set that is no longer current.
			"pending history entries count, abandoned ones do not",
			Device{Current: c("d", Pending), History: []Credentials{c("c", Pending), c("b", Abandoned), c("a", Confirmed)}},
			[]string{"d", "c", "a"},
		},
		{
			"no confirmed history",
			Device{Current: c("b", Pending), History: []Credentials{c("a", Pending)}},
			[]string{"b", "a"},
		},
		{
			"same password twice is listed once",
			Device{Current: c("a", Pending), History: []Credentials{c("a", Confirmed)}},
			[]string{"a"},
		},
		{
			"empty pending sets are skipped",
			Device{Current: c("", Pending), History: []Credentials{c("a", Confirmed)}},
			[]string{"a"},
		},
		{
			"a confirmed set without AMT password (deactivated) ends the list",
			Device{Current: c("", Confirmed), History: []Credentials{c("a", Confirmed)}},
			nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.dev.Candidates(); !slices.Equal(got, tt.want) {
				t.Errorf("Candidates() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMEBxPassword(t *testing.T) {
	c := func(m string, st State) Credentials { return Credentials{AMTPassword: "x", MEBxPassword: m, State: st} }
	for _, tt := range []struct {
		name string
		dev  Device
		want string
	}{
		{"none", Device{Current: c("", Confirmed)}, ""},
		{"current", Device{Current: c("m2", Pending), History: []Credentials{c("m1", Confirmed)}}, "m2"},
		{"carried past AMT-only sets", Device{Current: c("", Confirmed), History: []Credentials{c("", Confirmed), c("m1", Confirmed)}}, "m1"},
		{"abandoned skipped", Device{Current: c("m2", Abandoned), History: []Credentials{c("m1", Confirmed)}}, "m1"},
	} {
		if got := tt.dev.MEBxPassword(); got != tt.want {
			t.Errorf("%s: MEBxPassword() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestHolds(t *testing.T) {
	d := Device{Current: Credentials{AMTPassword: "b", State: Pending}, History: []Credentials{{AMTPassword: "a", State: Abandoned}}}
	if !d.Holds("b") || !d.Holds("a") || d.Holds("c") || (Device{}).Holds("x") {
		t.Fatal("Holds does not answer for exactly the device's current and older sets")
	}
}
