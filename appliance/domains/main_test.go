package domains

import (
	"flag"
	"os"
	"testing"
)

// TestMain shortens the fuzzer's minimisation of new inputs from 60 s to 5 s unless -fuzzminimizetime is given.
// An execution of a near-valid PFX costs milliseconds (PBKDF2 for the MAC, RSA key validation), so minimising a
// 2-3 KB input used the whole default budget and a 60 s `go test -fuzz=FuzzImport` ran only a few hundred inputs;
// finding more inputs matters more here than having them minimal.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.fuzzminimizetime" })
	if f := flag.Lookup("test.fuzzminimizetime"); f != nil && !set {
		if err := f.Value.Set("5s"); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
